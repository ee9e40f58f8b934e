"""The cost record of the compiler side: what XLA's ``HloCostAnalysis`` counts for an instruction."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class HloCost:
    """Flops, transcendentals and bytes accessed of one HLO instruction or computation.

    XLA writes −1 for what it cannot see (a custom call); the figures are kept as XLA
    counts them, in the arithmetic of the model that priced them (``float`` or
    ``numpy.float32``, see :class:`~jaxcost.compiler.model.CostModel`).
    """

    flops: float = 0.0
    transcendentals: float = 0.0
    bytes_accessed: float = 0.0

    def __add__(self, other: HloCost) -> HloCost:
        return HloCost(self.flops + other.flops, self.transcendentals + other.transcendentals,
                       self.bytes_accessed + other.bytes_accessed)

    def scaled(self, k: float) -> HloCost:
        """The cost of ``k`` executions."""
        return HloCost(self.flops * k, self.transcendentals * k, self.bytes_accessed * k)

    @staticmethod
    def branch_max(branches: Sequence[HloCost]) -> HloCost:
        """A conditional: the first branch, each property raised to the value of any later
        branch where that value is not zero (``HloCostAnalysis::HandleConditional``; its
        ``Properties::ForEach`` skips zeros). For costs ≥ 0 this is the plain maximum; an
        unknown custom call (−1) in the first branch survives an empty second branch.
        """
        if not branches:
            return HloCost()
        flops, trans, moved = branches[0].flops, branches[0].transcendentals, branches[0].bytes_accessed
        for b in branches[1:]:
            flops = max(flops, b.flops) if b.flops else flops
            trans = max(trans, b.transcendentals) if b.transcendentals else trans
            moved = max(moved, b.bytes_accessed) if b.bytes_accessed else moved
        return HloCost(flops, trans, moved)
