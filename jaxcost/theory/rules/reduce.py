"""Reductions: in − out elements; reduce-window (pooling): (window − 1) × out; cumulative: n."""

from __future__ import annotations

import math

from jaxcost.theory.registry import Cost, rule
from jaxcost.theory.rules._avals import in_elems, out_elems, size

# argmax/argmin lower to a variadic reduce whose body has 9 elementwise ops (compare value,
# NaN checks, index select): XLA counts 9 per reduced element.
_ARG_BODY_OPS = 9


@rule("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or", "reduce_xor",
      "argmax", "argmin", "reduce_precision")
def reduce(eqn) -> Cost:
    name = eqn.primitive.name
    i, o = size(eqn.invars[0]), out_elems(eqn)
    n = o if name == "reduce_precision" else i - o
    xla = _ARG_BODY_OPS * n if name in ("argmax", "argmin") else n
    return Cost(flops_textbook=n, flops_xla=xla, accesses_naive=i + o, accesses_ideal=i + o)


@rule("reduce_window_sum", "reduce_window_max", "reduce_window_min", "reduce_window")
def reduce_window(eqn) -> Cost:
    w = math.prod(eqn.params["window_dimensions"])
    o = out_elems(eqn)
    n = (w - 1) * o
    i = in_elems(eqn)
    return Cost(flops_textbook=n, flops_xla=n, accesses_naive=w * o + o, accesses_ideal=i + o)


@rule("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
def cumulative(eqn) -> Cost:
    """Textbook: L − 1 ops per row of length L. XLA (CPU lowering): a reduce-window of
    window L with padding L − 1, i.e. (L − 1) per output element."""
    n = size(eqn.invars[0])
    length = eqn.invars[0].aval.shape[eqn.params["axis"]] if n else 0
    rows = n // length if length else 0
    return Cost(flops_textbook=(length - 1) * rows, flops_xla=(length - 1) * n,
                accesses_naive=length * n + n, accesses_ideal=2 * n)


@rule("select_and_scatter_add", "select_and_gather_add")
def select_scatter(eqn) -> Cost:
    i, o = in_elems(eqn), out_elems(eqn)
    return Cost(flops_textbook=i, flops_xla=i, accesses_naive=i + o, accesses_ideal=i + o)
