"""conv_general_dilated: dense (textbook) and valid-tap (XLA) MACs, via the closed forms.

Dense MACs = output elements × Cin/g × kernel taps (:func:`formulas.conv_macs`, padded taps
counted). Valid MACs: per spatial dim, :func:`formulas.valid_taps` (output, tap) pairs land on
a real input element; their product × batch_out × Cout × Cin/g. XLA flops = 2 × valid MACs.
Textbook FLOPs: (2·Cin/g·K² − 1) per output (:func:`formulas.conv_flops`). Memory accesses:
Hollemans' naive per-layer model (:func:`formulas.memory_access_naive`; each input element read
K²·Cout/g times) and the read-once model. A bias add after the conv is priced by the engine.
"""

from __future__ import annotations

import math

from jaxcost.theory import formulas as F
from jaxcost.theory.registry import TheoryCost, register
from jaxcost.theory.rules._avals import size


@register("conv_general_dilated")
def conv(eqn) -> TheoryCost:
    p = eqn.params
    dn = p["dimension_numbers"]
    lhs_spec, rhs_spec, out_spec = dn.lhs_spec, dn.rhs_spec, dn.out_spec
    lhs, rhs, out = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape, eqn.outvars[0].aval.shape
    nsp = len(lhs_spec) - 2
    lhs_dil = p.get("lhs_dilation") or (1,) * nsp
    rhs_dil = p.get("rhs_dilation") or (1,) * nsp
    groups = p.get("feature_group_count", 1) * p.get("batch_group_count", 1)
    kernel = tuple(rhs[d] for d in rhs_spec[2:])
    cin_g, cout = rhs[rhs_spec[1]], rhs[rhs_spec[0]]
    positions = out[out_spec[0]] * math.prod(out[d] for d in out_spec[2:])
    macs = F.conv_macs(kernel, cin_g, cout, positions)
    valid = math.prod(F.valid_taps(lhs[lhs_spec[2 + i]], rhs[rhs_spec[2 + i]], out[out_spec[2 + i]],
                                   p["window_strides"][i], p["padding"][i][0], lhs_dil[i], rhs_dil[i])
                      for i in range(nsp))
    macs_valid = out[out_spec[0]] * cout * cin_g * valid
    lhs_e, rhs_e, out_e = size(eqn.invars[0]), size(eqn.invars[1]), size(eqn.outvars[0])
    naive = F.memory_access_naive(lhs_e, F.taps(kernel) * (cout // groups), out_e, rhs_e)
    return TheoryCost(macs=macs, macs_valid=macs_valid, flops_textbook=F.conv_flops(kernel, cin_g, cout, positions),
                      flops_xla=2 * macs_valid, accesses_naive=naive.total,
                      accesses_ideal=F.memory_access_ideal(lhs_e, out_e, rhs_e).total, padding_taps=macs - macs_valid)
