"""Small shape helpers shared by the rules."""

from __future__ import annotations

import math


def size(v) -> int:
    aval = v.aval
    return int(math.prod(aval.shape)) if hasattr(aval, "shape") else 1


def nbytes(v) -> int:
    aval = v.aval
    shape = getattr(aval, "shape", None)
    if shape is None:
        return 0
    return int(math.prod(shape)) * aval.dtype.itemsize


def in_elems(eqn) -> int:
    return sum(size(v) for v in eqn.invars)


def out_elems(eqn) -> int:
    return sum(size(v) for v in eqn.outvars)
