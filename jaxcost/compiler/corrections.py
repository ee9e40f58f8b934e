"""Where XLA's totals are wrong, and jaxcost's corrected totals.

* ``while`` (``lax.scan``, ``fori_loop``): XLA prices the body and the
  condition once. With ``backend_config.known_trip_count = n`` the truth is
  n bodies and n + 1 condition checks. An unknown trip count is flagged.
* ``custom-call``: XLA reports −1 flops and −1 bytes for what it cannot see.
  cuBLAS GEMMs and cuDNN convolutions are counted from their shapes; other
  targets are listed as unknown, counted as zero, and reported.
"""

from __future__ import annotations

import dataclasses
import math

from jaxcost.compiler.hlo import Computation, Instruction
from jaxcost.compiler.rules import FMA_FLOPS, Cost, CostModel, conv_macs_valid, default_bytes

GEMM_TARGETS = ("__cublas$gemm", "__cublas$lt$matmul", "__cublas$lt$matmul$f8")
CONV_TARGETS = ("__cudnn$conv",)


@dataclasses.dataclass(frozen=True)
class Corrected:
    """jaxcost's totals with the reasons they differ from XLA's."""

    flops: float
    transcendentals: float
    bytes_accessed: float
    reasons: tuple[str, ...] = ()


def custom_call_cost(inst: Instruction, model: CostModel) -> tuple[Cost, str | None]:
    """Cost of a custom call counted from its shapes, and a reason line (None if unknown)."""
    target = inst.custom_call_target
    out = inst.shape.tuple_shapes[0] if inst.shape.is_tuple else inst.shape
    bytes_ = default_bytes(inst, model)
    if inst.shape.is_tuple:  # the workspace buffer is not data
        bytes_ = model.total([out.bytes] + [o.shape.bytes for o in inst.operands])
    if target.startswith(GEMM_TARGETS):
        cfg = inst.backend_config.get("gemm_backend_config", inst.backend_config)
        dims = cfg.get("dot_dimension_numbers", {})
        lhs = inst.operands[0].shape
        contract = [int(d) for d in dims.get("lhs_contracting_dimensions", [len(lhs.dims) - 1])]
        flops = FMA_FLOPS * out.elements * math.prod(lhs.dims[d] for d in contract)
        return model.cost(flops, 0, bytes_), f"{inst.name}: {target} counted as a GEMM: {flops:,.0f} flops"
    if target.startswith(CONV_TARGETS) and inst.window:
        macs = conv_macs_valid(inst, inst.operands[0].shape, inst.operands[1].shape, out)
        flops = FMA_FLOPS * macs
        return model.cost(flops, 0, bytes_), f"{inst.name}: {target} counted as a convolution: {flops:,.0f} flops"
    return model.cost(0, 0, bytes_), None


class _Corrector:
    def __init__(self, model: CostModel | None = None) -> None:
        self.model = model or CostModel()
        self.reasons: list[str] = []
        self.memo: dict[str, Cost] = {}

    def computation(self, comp: Computation | None) -> Cost:
        if comp is None:
            return Cost()
        if comp.name not in self.memo:
            total = Cost()
            for inst in comp.instructions:
                total = total + self.instruction(inst)
            self.memo[comp.name] = total
        return self.memo[comp.name]

    def instruction(self, inst: Instruction) -> Cost:
        if inst.opcode == "while":
            body = self.computation(inst.called_by("body"))
            cond = self.computation(inst.called_by("condition"))
            n = inst.backend_config.get("known_trip_count", {}).get("n")
            if n is None:
                self.reasons.append(f"{inst.name}: while loop with unknown trip count: its body is "
                                    "counted once (as XLA does); the true cost is higher")
                return body + cond
            n = int(n)
            self.reasons.append(f"{inst.name}: while loop runs {n} times; XLA counts its body once "
                                f"({body.flops:,.0f} flops): x{n}")
            return body.scaled(n) + cond.scaled(n + 1)
        if inst.opcode == "custom-call":
            cost, why = custom_call_cost(inst, self.model)
            self.reasons.append(why or f"{inst.name}: custom call {inst.custom_call_target!r} "
                                       "reported -1 by XLA; its flops are unknown and counted as 0")
            return cost
        if inst.opcode in ("call", "conditional", "fusion") and _has_correctable(inst):
            subs = [self.computation(c) for c in inst.called]
            own = self.model.instruction_cost(inst)
            if inst.opcode == "conditional":
                return Cost(max(s.flops for s in subs), max(s.transcendentals for s in subs),
                            max(s.bytes_accessed for s in subs))
            inner = Cost()
            for s in subs:
                inner = inner + s
            bytes_ = own.bytes_accessed if inst.opcode == "fusion" else inner.bytes_accessed
            return Cost(inner.flops, inner.transcendentals, bytes_)
        return self.model.instruction_cost(inst)


def _has_correctable(inst: Instruction) -> bool:
    for comp in inst.called:
        for sub in comp.instructions:
            if sub.opcode in ("while", "custom-call") or (sub.called and _has_correctable(sub)):
                return True
    return False


def correct(entry: Computation, model: CostModel | None = None) -> Corrected:
    """Corrected totals of an entry computation (exact arithmetic); ``model`` reuses the
    instruction costs already computed for the module."""
    c = _Corrector(model)
    total = c.computation(entry)
    return Corrected(float(total.flops), float(total.transcendentals), float(total.bytes_accessed),
                     tuple(dict.fromkeys(c.reasons)))


def trip_count(inst) -> int:
    """A while loop's trip count: XLA's ``known_trip_count`` when the optimizer recorded it;
    in a lowered module, the bound of a ``counter < constant`` condition (scan and
    fori_loop count from 0 in steps of 1); else 1."""
    n = inst.backend_config.get("known_trip_count", {}).get("n")
    if n is not None:
        return int(n)
    cond = inst.called_by("condition")
    if cond is not None:
        root = cond.root
        if root.opcode == "compare" and "direction=LT" in ",".join(f"{k}={v}" for k, v in root.attrs.items()):
            bound = root.operands[1] if len(root.operands) > 1 else None
            if bound is not None and bound.opcode == "constant":
                try:
                    return int(bound.attrs.get("_literal", "1"))
                except ValueError:
                    pass
    return 1
