"""The theory rules, one module per op family; importing this package registers them all."""

from jaxcost.theory.rules import (  # noqa: F401
    collective,
    conv,
    dot,
    elementwise,
    linalg,
    movement,
    random,
    reduce,
    spectral,
)
