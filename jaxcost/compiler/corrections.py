"""Where XLA's totals are wrong, and jaxcost's corrected totals.

* ``while`` (``lax.scan``, ``fori_loop``): XLA prices the body and the
  condition once. With a trip count of n (see :mod:`.loops`) the truth is n
  bodies and n + 1 condition checks. An unknown trip count is flagged.
* ``custom-call``: XLA reports −1 flops and −1 bytes for what it cannot see;
  jaxcost prices each target it knows (see :mod:`.custom_calls`) and names the rest.
"""

from __future__ import annotations

import dataclasses

from jaxcost.compiler.cost import HloCost
from jaxcost.compiler.custom_calls import custom_call_cost
from jaxcost.compiler.hlo import Computation, Instruction
from jaxcost.compiler.loops import trip_count
from jaxcost.compiler.model import CostModel

CALLS = ("call", "async-start", "conditional", "fusion")


@dataclasses.dataclass(frozen=True)
class Corrected:
    """jaxcost's totals with the reasons they differ from XLA's."""

    flops: float
    transcendentals: float
    bytes_accessed: float
    reasons: tuple[str, ...] = ()


class _Corrector(CostModel):
    """Sums like XLA, but prices loops by their trip count and custom calls by their target;
    every other instruction costs what ``xla`` (a model in exact arithmetic) says."""

    def __init__(self, xla: CostModel) -> None:
        super().__init__(float)
        self.xla = xla
        self.reasons: list[str] = []

    def price(self, inst: Instruction) -> HloCost:
        if inst.opcode == "while":
            body = self.computation_cost(inst.called_by("body"))
            cond = self.computation_cost(inst.called_by("condition"))
            n = trip_count(inst)
            if n is None:
                self.reasons.append(f"{inst.name}: while loop with unknown trip count: its body is "
                                    "counted once (as XLA does); the true cost is higher")
                return body + cond
            self.reasons.append(f"{inst.name}: while loop runs {n} times; XLA counts its body once "
                                f"({body.flops:,.0f} flops): x{n}")
            return body.scaled(n) + cond.scaled(n + 1)
        if inst.opcode == "custom-call":
            cost, why = custom_call_cost(inst, self)
            if why:
                self.reasons.append(why)
            return cost
        if inst.opcode in CALLS and _has_correctable(inst):
            subs = [self.computation_cost(c) for c in inst.called]
            if inst.opcode == "conditional":
                return HloCost.branch_max(subs)
            inner = sum(subs, HloCost())
            moved = self.xla.instruction_cost(inst).bytes_accessed if inst.opcode == "fusion" else inner.bytes_accessed
            return HloCost(inner.flops, inner.transcendentals, moved)
        return self.xla.instruction_cost(inst)


def _has_correctable(inst: Instruction) -> bool:
    for comp in inst.called:
        for sub in comp.instructions:
            if sub.opcode in ("while", "custom-call") or (sub.called and _has_correctable(sub)):
                return True
    return False


def correct(entry: Computation, model: CostModel | None = None) -> Corrected:
    """Corrected totals of an entry computation (exact arithmetic); ``model`` reuses the
    instruction costs already computed for the module."""
    c = _Corrector(model or CostModel())
    total = c.computation_cost(entry)
    return Corrected(float(total.flops), float(total.transcendentals), float(total.bytes_accessed),
                     tuple(dict.fromkeys(c.reasons)))
