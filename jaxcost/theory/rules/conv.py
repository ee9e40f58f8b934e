"""conv_general_dilated: dense (textbook) and valid-tap (XLA) MACs.

Dense MACs = output elements × Cin/g × kernel taps (padded taps counted).
Valid taps: per spatial dim, the (kernel k, output o) pairs whose input index
``o·stride − pad_lo + k·rhs_dil`` hits a real element of the lhs-dilated input
(in bounds and a multiple of lhs_dil); product over dims × batch_out × Cout × Cin/g.
XLA flops = 2 × valid MACs.
"""

from __future__ import annotations

import functools
import math

from jaxcost.theory.registry import Cost, rule
from jaxcost.theory.rules._avals import size


@functools.lru_cache(maxsize=4096)
def valid_pairs(n_in: int, k: int, n_out: int, stride: int, pad_lo: int, lhs_dil: int, rhs_dil: int) -> int:
    """Number of (output, kernel) index pairs landing on a real input element."""
    span = (n_in - 1) * lhs_dil
    count = 0
    for o in range(n_out):
        base = o * stride - pad_lo
        for j in range(k):
            i = base + j * rhs_dil
            if 0 <= i <= span and i % lhs_dil == 0:
                count += 1
    return count


@rule("conv_general_dilated")
def conv(eqn) -> Cost:
    p = eqn.params
    dn = p["dimension_numbers"]
    lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    lhs, rhs, out = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape, eqn.outvars[0].aval.shape
    nsp = len(lhs_spec) - 2
    strides = p["window_strides"]
    lhs_dil = p.get("lhs_dilation") or (1,) * nsp
    rhs_dil = p.get("rhs_dilation") or (1,) * nsp
    pads = p["padding"]
    cin_g = rhs[rhs_spec[1]]
    cout = rhs[rhs_spec[0]]
    ktaps = math.prod(rhs[d] for d in rhs_spec[2:])
    out_e = size(eqn.outvars[0])
    macs = out_e * cin_g * ktaps
    valid = 1
    for i in range(nsp):
        valid *= valid_pairs(lhs[lhs_spec[2 + i]], rhs[rhs_spec[2 + i]], out[out_spec[2 + i]],
                             strides[i], pads[i][0], lhs_dil[i], rhs_dil[i])
    macs_valid = out[out_spec[0]] * cout * cin_g * valid
    groups = p.get("feature_group_count", 1)
    lhs_e, rhs_e = size(eqn.invars[0]), size(eqn.invars[1])
    # seed 002: every input element read K-taps × Cout/g times, output and weights once.
    naive = lhs_e * ktaps * (cout // groups) + out_e + rhs_e
    return Cost(macs=macs, macs_valid=macs_valid, flops_textbook=(2 * cin_g * ktaps - 1) * out_e,
                flops_xla=2 * macs_valid, accesses_naive=naive, accesses_ideal=lhs_e + rhs_e + out_e,
                padding_taps=macs - macs_valid)
