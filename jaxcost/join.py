"""The join: priced HLO ops, theory by layer and parameter counts -> one row per layer.

Both sides carry the same key, ``(path, direction)``: the compiler side reads it from each
instruction's ``op_name`` (a fused kernel is split back into the layers of its inner
instructions, its bytes by :attr:`~jaxcost.compiler.ops.Op.layer_bytes`), the theory side
from each equation's name stack (:mod:`jaxcost.names`). A pure function, run before the
:class:`~jaxcost.analysis.Analysis` exists; rows come out sorted forward first, then by path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from jaxcost.names import DIRECTIONS, FORWARD

if TYPE_CHECKING:
    from jaxcost.compiler.ops import ModuleCost, Op
    from jaxcost.theory.registry import TheoryCost, TheoryResult


@dataclasses.dataclass
class LayerRow:
    """One layer path in one direction (``forward`` / ``backward`` / ``recompute`` /
    ``optimizer``, see :mod:`jaxcost.names`).

    ``flops`` / ``transcendentals`` / ``bytes_accessed``: its share of the optimized module
    (XLA's convention, loop bodies once); ``flops_unoptimized`` / ``bytes_unoptimized``: of the
    lowered module; ``params``: parameter elements it owns; ``fusions``: the fused kernels
    holding its ops; ``theory``: the theory engine's cost of its equations (loops x trip
    count), None when the theory side was not run or saw no equation of this layer;
    ``input_grad`` / ``weight_grad``: of a backward row, the theory of its input- and
    weight-gradient contractions (:meth:`TheoryResult.by_grad`).
    """

    path: str
    direction: str
    flops: float = 0.0
    transcendentals: float = 0.0
    bytes_accessed: float = 0.0
    flops_unoptimized: float = 0.0
    bytes_unoptimized: float = 0.0
    params: int = 0
    fusions: list[str] = dataclasses.field(default_factory=list)
    theory: TheoryCost | None = None
    input_grad: TheoryCost | None = None
    weight_grad: TheoryCost | None = None

    def __repr__(self) -> str:
        name = f"{self.path or '(top level)'}" + ("" if self.direction == FORWARD else f" [{self.direction}]")
        return (f"LayerRow({name!r}, params={self.params:,}, flops={self.flops:,.0f}, "
                f"bytes={self.bytes_accessed:,.0f}, fusions={len(self.fusions)})")


def _parts(op: Op) -> list[tuple[str, str, float, float]]:
    """``(path, direction, flops, transcendentals)`` of the instructions an op holds."""
    if op.opcode == "custom-call":  # XLA's -1 means unknown, not negative work
        return [(op.layer, op.direction, 0.0, 0.0)]
    if op.inner:
        return [(i.layer, i.direction, 0.0, 0.0) if i.opcode == "custom-call" else
                (i.layer, i.direction, i.flops, i.transcendentals) for i in op.inner]
    return [(op.layer, op.direction, op.flops, op.transcendentals)]


def join(params_by_layer: Mapping[str, int], optimized: ModuleCost | None,
         unoptimized: ModuleCost | None, theory: TheoryResult | None = None) -> list[LayerRow]:
    """Layer rows from both sides. Sums over rows equal the modules' exact totals (custom
    calls XLA reports as -1 count zero here; bytes of -1 likewise)."""
    rows: dict[tuple[str, str], LayerRow] = {}

    def row(path: str, direction: str) -> LayerRow:
        key = (path, direction)
        if key not in rows:
            rows[key] = LayerRow(path, direction)
        return rows[key]

    for module, optimized_side in ((optimized, True), (unoptimized, False)):
        if module is None:
            continue
        for op in module.ops:
            for path, direction, flops, trans in _parts(op):
                r = row(path, direction)
                if optimized_side:
                    r.flops += flops
                    r.transcendentals += trans
                    if op.is_fusion and op.name not in r.fusions:
                        r.fusions.append(op.name)
                else:
                    r.flops_unoptimized += flops
            for path, b in op.layer_bytes:
                r = row(path, op.direction)
                if optimized_side:
                    r.bytes_accessed += max(b, 0.0)
                else:
                    r.bytes_unoptimized += max(b, 0.0)
    for path, n in params_by_layer.items():
        row(path, FORWARD).params += n
    if theory is not None:
        for (path, direction), cost in theory.by_layer().items():
            row(path, direction).theory = cost
        for (path, grad), cost in theory.by_grad().items():
            setattr(row(path, "backward"), f"{grad}_grad", cost)
    order = {d: i for i, d in enumerate(DIRECTIONS)}
    return sorted(rows.values(), key=lambda r: (order.get(r.direction, len(order)), r.path))
