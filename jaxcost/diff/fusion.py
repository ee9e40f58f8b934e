"""What fusion did: each fused kernel, the ops it absorbed, and the bytes it saved.

The unoptimized (lowered) module is the "unfused" program: every op reads its
operands from memory and writes its result back. The optimized module's fusions
keep intermediates in registers. Matching the two by ``op_name`` (XLA keeps the
JAX name stack on every instruction, fused or not) gives, for each kernel of the
optimized program, the bytes its ops moved before fusion. Ops whose name is
absent from the optimized program were removed by the optimizer (reshapes,
broadcasts, transposes folded into layouts, constants folded). The accounting
is exact by construction::

    unfused bytes - fused bytes = sum(kernel.saved) + eliminated
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from jaxcost.compiler.hlo import Computation, Instruction
from jaxcost.compiler.model import CostModel
from jaxcost.compiler.ops import ModuleCost, Op
from jaxcost.names import split_op_name
from jaxcost.report.show import Shown


@dataclasses.dataclass(frozen=True)
class KernelFusion:
    """One top-level op of the optimized module (a fusion or a lone instruction)."""

    name: str
    opcode: str
    kind: str
    layers: tuple[str, ...]
    absorbed: dict[str, tuple[str, ...]]  # layer -> primitives it holds (conv_general_dilated, max, ...)
    bytes_fused: float
    bytes_unfused: float
    consumers: tuple[str, ...] = ()  # kernels that read this kernel's output

    @property
    def saved(self) -> float:
        return self.bytes_unfused - self.bytes_fused

    @property
    def is_fusion(self) -> bool:
        return self.opcode == "fusion"

    def describe(self) -> str:
        return "; ".join(f"{layer or '(top)'}: {', '.join(prims)}" for layer, prims in self.absorbed.items())


@dataclasses.dataclass(frozen=True)
class FusionReport(Shown):
    kernels: list[KernelFusion]
    bytes_unfused: float
    bytes_fused: float
    eliminated: float  # bytes of unoptimized ops with no counterpart after optimization
    layers: dict[str, tuple[float, float]]  # layer -> (unfused bytes, fused bytes)

    def __rich__(self):
        return fusion_table(self)

    def __repr__(self) -> str:
        return (f"FusionReport({len(self.fusions)} fusions of {len(self.kernels)} kernels, "
                f"{self.bytes_unfused:,.0f} -> {self.bytes_fused:,.0f} bytes, "
                f"eliminated {self.eliminated:,.0f})")

    @property
    def saved(self) -> float:
        return self.bytes_unfused - self.bytes_fused

    @property
    def fusions(self) -> list[KernelFusion]:
        return [k for k in self.kernels if k.is_fusion]

    def kernels_of(self, layer: str) -> list[KernelFusion]:
        return [k for k in self.kernels if layer in k.absorbed]

    def kernel(self, name: str) -> KernelFusion:
        return next(k for k in self.kernels if k.name == name)

    def fused_with(self, layer: str) -> dict[str, tuple[str, ...]]:
        """Ops of other layers that run in the same kernel as ``layer``'s ops or in a kernel
        reading its output directly (e.g. a conv's BatchNorm and ReLU): layer -> primitives."""
        out: dict[str, list[str]] = {}
        for k in self.kernels_of(layer):
            for other in [k] + [self.kernel(c) for c in k.consumers]:
                for path, prims in other.absorbed.items():
                    if path != layer:
                        acc = out.setdefault(path, [])
                        acc.extend(p for p in prims if p not in acc)
        return {k: tuple(v) for k, v in out.items()}


def _leaf_bytes(comp: Computation, model: CostModel, out: list[tuple[str, float]]) -> None:
    """(op_name, bytes) of every instruction whose bytes the module total counts,
    looking through calls and loop bodies (whose bytes XLA attributes to the caller)."""
    for inst in comp.instructions:
        if inst.opcode in ("call", "while", "conditional") and inst.called:
            for sub in inst.called:
                _leaf_bytes(sub, model, out)
            continue
        b = model.instruction_cost(inst).bytes_accessed
        if b:
            out.append((inst.op_name, float(b)))


def _names(inst: Instruction, acc: list[Instruction]) -> list[Instruction]:
    acc.append(inst)
    for comp in inst.called:
        for sub in comp.instructions:
            _names(sub, acc)
    return acc


def fusion_report(optimized: ModuleCost, unoptimized: ModuleCost) -> FusionReport:
    """Match the optimized module's kernels to the unoptimized ops they replaced."""
    leaves: list[tuple[str, float]] = []
    _leaf_bytes(unoptimized.module.entry, CostModel(), leaves)
    unfused_by_name: dict[str, float] = defaultdict(float)
    for name, b in leaves:
        unfused_by_name[name] += b

    holders: dict[str, list[int]] = defaultdict(list)
    members: list[list[Instruction]] = []
    for i, op in enumerate(optimized.ops):
        insts = _names(op.instruction, []) if op.instruction is not None else []
        members.append(insts)
        for name in dict.fromkeys(x.op_name for x in insts if x.op_name):
            holders[name].append(i)

    unfused = [0.0] * len(optimized.ops)
    eliminated = 0.0
    for name, b in unfused_by_name.items():
        owners = holders.get(name)
        if not owners:
            eliminated += b
            continue
        for i in owners:
            unfused[i] += b / len(owners)

    by_inst = {id(op.instruction): op.name for op in optimized.ops if op.instruction is not None}
    consumers: dict[str, list[str]] = defaultdict(list)
    for op in optimized.ops:
        if op.instruction is None:
            continue
        for operand in op.instruction.operands:
            source = operand
            while source.opcode in ("bitcast", "get-tuple-element", "copy", "reshape") and source.operands \
                    and id(source) not in by_inst:
                source = source.operands[0]
            if id(source) in by_inst and op.name not in consumers[by_inst[id(source)]]:
                consumers[by_inst[id(source)]].append(op.name)

    kernels = []
    for op, insts, before in zip(optimized.ops, members, unfused):
        absorbed: dict[str, list[str]] = {}
        for x in insts:
            if not x.op_name or x.opcode in ("parameter", "constant", "fusion", "bitcast"):
                continue
            parts = split_op_name(x.op_name)
            prims = absorbed.setdefault(parts.path, [])
            if parts.primitive and parts.primitive not in prims:
                prims.append(parts.primitive)
        kernels.append(KernelFusion(op.name, op.opcode, op.fusion_kind, op.layers,
                                    {k: tuple(v) for k, v in absorbed.items()},
                                    max(op.bytes_accessed, 0.0), before, tuple(consumers[op.name])))

    layers: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for name, b in unfused_by_name.items():
        layers[split_op_name(name).path][0] += b
    for op in optimized.ops:
        for path, b in op.layer_bytes:
            layers[path][1] += max(b, 0.0)
    return FusionReport(kernels, sum(unfused_by_name.values()),
                        sum(max(op.bytes_accessed, 0.0) for op in optimized.ops), eliminated,
                        {k: (v[0], v[1]) for k, v in sorted(layers.items())})


def fusion_table(report: FusionReport, max_rows: int = 15):
    """A rich table of the kernels that saved the most bytes."""
    from rich.table import Table

    from jaxcost.report.format import si

    rows = sorted(report.fusions, key=lambda k: -k.saved)[:max_rows]
    t = Table(title=f"Fusion: {si(report.bytes_unfused, 'B')} unfused -> {si(report.bytes_fused, 'B')} "
                    f"fused, {si(report.saved, 'B')} saved ({si(report.eliminated, 'B')} by ops the "
                    "optimizer removed)")
    for col, j in (("kernel", "left"), ("kind", "left"), ("unfused", "right"), ("fused", "right"),
                   ("saved", "right"), ("absorbed (layer: ops)", "left")):
        t.add_column(col, justify=j)
    for k in rows:
        text = k.describe()
        t.add_row(k.name, k.kind, si(k.bytes_unfused, "B"), si(k.bytes_fused, "B"), si(k.saved, "B"),
                  text if len(text) < 140 else text[:137] + "...")
    return t


__all__ = ["FusionReport", "KernelFusion", "Op", "fusion_report", "fusion_table"]
