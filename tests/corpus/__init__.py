"""A corpus of real programs nobody on this project wrote: models from Keras 3, equinox,
dm-haiku and Flax, optax training steps, and the JAX features real programs use (loops,
control flow, linear algebra, FFTs, random numbers, callbacks, shard_map).

Each builder returns a :class:`Program`: what to hand ``jaxcost.analyze`` and the parameter
count the framework itself reports. Weights are abstract (``jax.ShapeDtypeStruct``) and
configurations small, so nothing is downloaded and nothing large is allocated.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Program:
    """``analyze(fn, *args, params_argnums=params_argnums, **kwargs)``, the framework's own
    parameter count for it, and, where the framework compiles the program its own way (NNX's
    ``nnx.jit`` returns module state updates as outputs), ``lower()``: that program, lowered."""

    fn: Callable
    args: tuple
    params: int
    params_argnums: tuple[int, ...] = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    lower: Callable[[], Any] | None = None


@dataclasses.dataclass(frozen=True)
class Case:
    """One corpus entry: ``build()`` makes the program; ``needs`` is the package it comes
    from (the case is skipped without it)."""

    name: str
    build: Callable[[], Program]
    needs: str | None = None

    def __repr__(self) -> str:
        return f"Case({self.name})"


CASES: dict[str, Case] = {}


def case(name: str, *, needs: str | None = None):
    """Register a builder under ``name`` (``framework/model``)."""

    def register(build: Callable[[], Program]) -> Callable[[], Program]:
        if name in CASES:
            raise ValueError(f"corpus case {name!r} registered twice")
        CASES[name] = Case(name, build, needs)
        return build

    return register


def spec(shape, dtype="float32") -> jax.ShapeDtypeStruct:
    """An abstract array: what every corpus program is analysed with."""
    return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))


for _module in ("keras_apps", "equinox_models", "haiku_models", "flax_models", "jax_features"):
    importlib.import_module(f"{__name__}.{_module}")
