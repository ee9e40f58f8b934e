"""The jaxcost model zoo: Flax NNX reference architectures.

Each family lives in its own module and registers its variants with
``models._registry.register``; every module of this package is imported here,
so adding a family is adding one file.
"""

import importlib
import pkgutil

from models._registry import (
    Reference,
    build,
    build_abstract,
    family,
    fast_abstract_tracing,
    input_shape,
    names,
    reference,
    register,
)

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Reference", "build", "build_abstract", "family", "fast_abstract_tracing", "input_shape",
           "names", "reference", "register"]
