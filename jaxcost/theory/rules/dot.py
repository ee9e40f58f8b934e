"""dot_general: out elements × contracted size MACs."""

from __future__ import annotations

import math

from jaxcost.theory.registry import Cost, rule
from jaxcost.theory.rules._avals import size


@rule("dot_general")
def dot_general(eqn) -> Cost:
    (lc, _rc), _batch = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    n = int(math.prod(lhs[d] for d in lc))
    out = size(eqn.outvars[0])
    macs = out * n
    # naive: every MAC reads one lhs and one rhs element, output written once.
    lhs_e, rhs_e = size(eqn.invars[0]), size(eqn.invars[1])
    return Cost(macs=macs, macs_valid=macs, flops_textbook=(2 * n - 1) * out if n else 0,
                flops_xla=2 * macs, accesses_naive=2 * macs + out,
                accesses_ideal=lhs_e + rhs_e + out)
