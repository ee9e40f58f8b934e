"""What the command line analyses: a zoo model name or ``package.module:callable``, with
its abstract inputs; and the one error type of the CLI."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp


class UsageError(Exception):
    """A bad command-line argument: one line on stderr, exit code 2."""


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise UsageError(f"--input-shape must be integers separated by commas, got {text!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise UsageError(f"--input-shape must be positive integers, got {text!r}")
    return dims


def _dtype(text: str):
    try:
        return jnp.dtype(text)
    except TypeError:
        raise UsageError(f"unknown --dtype {text!r} (try float32, bfloat16, float16)") from None


def resolve(target: str, *, batch: int, input_shape: str | None, dtype: str):
    """``(fn, args, name)`` for a zoo model name or ``package.module:callable``."""
    dt = _dtype(dtype)
    if ":" in target:
        mod_name, _, attr = target.partition(":")
        try:
            obj = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as e:
            raise UsageError(f"cannot load {target!r}: {e}") from None
        if input_shape is None:
            raise UsageError(f"{target} needs --input-shape (with the batch dimension)")
        return obj, (jax.ShapeDtypeStruct(_shape(input_shape), dt),), target

    import models

    if target not in models.names():
        raise UsageError(f"unknown model {target!r}; run 'jaxcost models' for the list, "
                         "or give package.module:callable")
    shape = _shape(input_shape) if input_shape else models.input_shape(target)
    model = models.build_abstract(target)
    return model, (jax.ShapeDtypeStruct((batch, *shape), dt),), target


def parse_options(items) -> dict:
    """``KEY=VALUE`` XLA options from repeated ``--xla-option`` arguments."""
    options = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--xla-option must be KEY=VALUE, got {item!r}")
        options[key] = value
    return options


def parse_batches(text: str) -> list[int]:
    """``--batch 1,8,32``."""
    try:
        out = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise UsageError(f"--batch must be integers separated by commas, got {text!r}") from None
    if not out or min(out) <= 0:
        raise UsageError(f"--batch must be positive, got {text!r}")
    return out
