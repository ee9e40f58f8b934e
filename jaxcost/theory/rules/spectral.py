"""fft: XLA's count and the radix-2 textbook count.

XLA (HloCostAnalysis::HandleFft): 8 flops (4 complex multiply-adds of 2 flops) × Π⌊log2 L⌋
over the transformed lengths × the elements of the operand. Textbook (Cooley–Tukey): the
usual 5·N·log2 N real flops per complex transform of N points, half that for a real
(rfft/irfft) transform.
"""

from __future__ import annotations

import math

import numpy as np

from jaxcost.theory.registry import TheoryCost, register
from jaxcost.theory.rules._avals import in_elems, out_elems, size


def _is_complex(v) -> bool:
    return np.issubdtype(v.aval.dtype, np.complexfloating)


@register("fft")
def fft(eqn) -> TheoryCost:
    lengths = tuple(eqn.params["fft_lengths"])
    logs = math.prod(max(n, 1).bit_length() - 1 for n in lengths)
    x, y = eqn.invars[0], eqn.outvars[0]
    real = next((v for v in (x, y) if not _is_complex(v)), None)
    points = math.prod(lengths)
    transforms = size(real if real is not None else x) // points if points else 0
    per = 5 * points * math.log2(points) if points > 1 else 0
    textbook = int(transforms * per / (2 if real is not None else 1))
    io = in_elems(eqn) + out_elems(eqn)
    return TheoryCost(flops_textbook=textbook, flops_xla=8 * logs * size(x), accesses_naive=io, accesses_ideal=io)
