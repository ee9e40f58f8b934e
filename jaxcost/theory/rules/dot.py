"""dot_general and ragged_dot_general: output elements × contracted size MACs.

A dense layer is a 1×1 conv on a 1×1 map, so the naive memory model is the conv's:
every lhs element is read once per output column that uses it (rhs free size), the rhs
(weights) once, the output written once (:func:`formulas.memory_access_naive`).
"""

from __future__ import annotations

import math

from jaxcost.theory import formulas as F
from jaxcost.theory.registry import TheoryCost, register
from jaxcost.theory.rules._avals import size


def _dot_cost(n: int, out: int, lhs_e: int, rhs_e: int, columns: int) -> TheoryCost:
    macs = F.dense_macs(n, out)
    return TheoryCost(macs=macs, macs_valid=macs, flops_textbook=F.dense_flops(n, out), flops_xla=2 * macs,
                      accesses_naive=F.memory_access_naive(lhs_e, columns, out, rhs_e).total,
                      accesses_ideal=F.memory_access_ideal(lhs_e, out, rhs_e).total)


@register("dot_general")
def dot_general(eqn) -> TheoryCost:
    (lc, rc), (_lb, rb) = eqn.params["dimension_numbers"]
    lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    n = math.prod(lhs[d] for d in lc)
    columns = math.prod(s for d, s in enumerate(rhs) if d not in rc and d not in rb)
    return _dot_cost(n, size(eqn.outvars[0]), size(eqn.invars[0]), size(eqn.invars[1]), columns)


@register("ragged_dot_general", note="ragged_dot is priced as each row meeting its own group once; "
          "XLA:CPU lowers it to a dense dot over every group plus masks, which costs more")
def ragged_dot_general(eqn) -> TheoryCost:
    """lhs [m, k] rows split into groups, rhs [g, k, n]: each row meets one group, m·k·n MACs."""
    lhs, rhs = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    out = size(eqn.outvars[0])
    k = lhs[-1]
    return _dot_cost(k, out, size(eqn.invars[0]), size(eqn.invars[1]), rhs[-1])
