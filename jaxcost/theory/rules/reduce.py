"""Reductions, windows, scans, sorts: one reducer application per element folded in.

reduce: n_in − n_out applications (:func:`formulas.reduce_flops`; never negative);
reduce-window (pooling): (window − 1) × n_out; a generic ``reduce``/``reduce_window`` multiplies
by its reducer body's flops. argmax/argmin lower to a variadic reduce whose body holds 9
elementwise ops (compare, NaN checks, index select): XLA counts 9 per reduced element.
cumsum & co.: XLA:CPU lowers them to a reduce-window of window L, (L − 1) per element
(``cumlogsumexp``: jax's logaddexp body, 8 flops + 2 transcendentals per application);
the textbook count is L − 1 per row. Sort: XLA charges n·⌈log2 n⌉ over ALL elements of the
first operand (HloCostAnalysis::HandleSort), the textbook n·⌈log2 n⌉ per row.
"""

from __future__ import annotations

import math

from jaxcost.theory import formulas as F
from jaxcost.theory.registry import TheoryCost, get_rule, register
from jaxcost.theory.rules._avals import in_elems, out_elems, size

_ARG_BODY_OPS = 9


def body_cost(jaxpr) -> TheoryCost:
    """Cost of one application of a scalar reducer body (e.g. ``lax.reduce``'s computation)."""
    j = getattr(jaxpr, "jaxpr", jaxpr)
    total = TheoryCost()
    for e in j.eqns:
        rule = get_rule(e.primitive.name)
        if rule is not None:
            total = total + rule(e)
    return total


def _io(eqn) -> int:
    return in_elems(eqn) + out_elems(eqn)


@register("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or", "reduce_xor",
          "argmax", "argmin")
def reduce(eqn) -> TheoryCost:
    n = F.reduce_flops(size(eqn.invars[0]), out_elems(eqn))
    xla = _ARG_BODY_OPS * n if eqn.primitive.name in ("argmax", "argmin") else n
    return TheoryCost(flops_textbook=n, flops_xla=xla, accesses_naive=_io(eqn), accesses_ideal=_io(eqn))


@register("reduce")
def reduce_generic(eqn) -> TheoryCost:
    """``lax.reduce`` with any (variadic) reducer: applications × the body's cost."""
    n = F.reduce_flops(size(eqn.invars[0]), size(eqn.outvars[0]))
    b = body_cost(eqn.params["jaxpr"])
    return TheoryCost(flops_textbook=n * b.flops_textbook, flops_xla=n * b.flops_xla,
                      transcendentals=n * b.transcendentals, accesses_naive=_io(eqn), accesses_ideal=_io(eqn))


def _window(eqn) -> tuple[int, int]:
    return math.prod(eqn.params["window_dimensions"]), size(eqn.outvars[0])


@register("reduce_window_sum", "reduce_window_max", "reduce_window_min")
def reduce_window(eqn) -> TheoryCost:
    w, o = _window(eqn)
    n = F.pooling_flops(tuple(eqn.params["window_dimensions"]), 1, o)
    return TheoryCost(flops_textbook=n, flops_xla=n, accesses_naive=w * o + o, accesses_ideal=_io(eqn))


@register("reduce_window")
def reduce_window_generic(eqn) -> TheoryCost:
    w, o = _window(eqn)
    n = (w - 1) * o
    b = body_cost(eqn.params["jaxpr"])
    return TheoryCost(flops_textbook=n * b.flops_textbook, flops_xla=n * b.flops_xla,
                      transcendentals=n * b.transcendentals, accesses_naive=w * o + o, accesses_ideal=_io(eqn))


# cumlogsumexp's reduce-window body (jax's logaddexp): 8 flops and 2 transcendentals.
_LOGADDEXP = TheoryCost(flops_textbook=5, flops_xla=8, transcendentals=2)


@register("cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp")
def cumulative(eqn) -> TheoryCost:
    """Textbook: L − 1 ops per row of length L. XLA:CPU: (L − 1) per output element."""
    n = size(eqn.invars[0])
    length = eqn.invars[0].aval.shape[eqn.params["axis"]] if n else 0
    rows = n // length if length else 0
    body = _LOGADDEXP if eqn.primitive.name == "cumlogsumexp" else TheoryCost(flops_textbook=1, flops_xla=1)
    k_text, k_xla = max(length - 1, 0) * rows, max(length - 1, 0) * n
    return TheoryCost(flops_textbook=k_text * body.flops_textbook, flops_xla=k_xla * body.flops_xla,
                      transcendentals=k_xla * body.transcendentals, accesses_naive=length * n + n,
                      accesses_ideal=2 * n)


@register("select_and_scatter_add")
def select_and_scatter_add(eqn) -> TheoryCost:
    """Max-pool gradient: per source (cotangent) element, window − 1 compares to find the
    selected input and one add to scatter into it (HloCostAnalysis::HandleSelectAndScatter)."""
    source = size(eqn.invars[0])
    w = math.prod(eqn.params["window_dimensions"])
    n = source * w
    return TheoryCost(flops_textbook=n, flops_xla=n, accesses_naive=_io(eqn), accesses_ideal=_io(eqn))


@register("select_and_scatter")
def select_and_scatter(eqn) -> TheoryCost:
    """General select-and-scatter: window − 1 applications of the select body and one of
    the scatter body per source element."""
    source = size(eqn.invars[1])
    w = math.prod(eqn.params["window_dimensions"])
    sel, sca = body_cost(eqn.params["select_jaxpr"]), body_cost(eqn.params["scatter_jaxpr"])
    k = source * (w - 1)
    return TheoryCost(flops_textbook=k * sel.flops_textbook + source * sca.flops_textbook,
                      flops_xla=k * sel.flops_xla + source * sca.flops_xla,
                      transcendentals=k * sel.transcendentals + source * sca.transcendentals,
                      accesses_naive=_io(eqn), accesses_ideal=_io(eqn))


@register("select_and_gather_add")
def select_and_gather_add(eqn) -> TheoryCost:
    """Max-pool JVP: a reduce-window over (value, tangent) pairs, window − 1 applications per
    output of a body that compares and selects both halves (3 XLA flops; textbook: the compare)."""
    w, o = _window(eqn)
    n = (w - 1) * o
    return TheoryCost(flops_textbook=n, flops_xla=3 * n, accesses_naive=w * o + o, accesses_ideal=_io(eqn))


def _rows(eqn, dim: int) -> tuple[int, int]:
    shape = eqn.invars[0].aval.shape
    n = size(eqn.invars[0])
    length = shape[dim] if shape else 1
    return length, (n // length if length else 0)


@register("sort")
def sort(eqn) -> TheoryCost:
    length, rows = _rows(eqn, eqn.params["dimension"])
    return TheoryCost(flops_textbook=F.sort_compares(length, rows), flops_xla=F.sort_compares(size(eqn.invars[0])),
                      accesses_naive=_io(eqn), accesses_ideal=_io(eqn))


@register("top_k", note="XLA's cost analysis counts top_k (a TopK op) as 0 flops; the textbook "
          "count is a sort of each row")
def top_k(eqn) -> TheoryCost:
    length, rows = _rows(eqn, -1)
    return TheoryCost(flops_textbook=F.sort_compares(length, rows), accesses_naive=_io(eqn), accesses_ideal=_io(eqn))


@register("approx_top_k")
def approx_top_k(eqn) -> TheoryCost:
    """XLA:CPU lowers approx_top_k to a sort of the whole operand (counted as one sort)."""
    length, rows = _rows(eqn, eqn.params.get("reduction_dimension", -1))
    return TheoryCost(flops_textbook=F.sort_compares(length, rows), flops_xla=F.sort_compares(size(eqn.invars[0])),
                      accesses_naive=_io(eqn), accesses_ideal=_io(eqn))
