"""The collectives of a compiled program: what crosses the interconnect, and how long it takes.

Each all-reduce / all-gather / reduce-scatter / all-to-all / collective-permute of the
optimized (per-device) module (an async ``*-start`` / ``*-done`` pair counts once, at its
start; loop bodies x trip count) becomes a :class:`Collective`: the buffer it works on per
device, the size ``n`` of its replica groups, the mesh axes a group spans, and the bytes each
device sends under the standard bandwidth-optimal algorithms:

- all-gather, reduce-scatter (ring): ``(n − 1)/n × B``, B the full (gathered / unscattered)
  buffer (Thakur, Rabenseifner, Gropp, "Optimization of Collective Communication Operations in
  MPICH", IJHPCA 19(1), 2005, §4; Patarasuk and Yuan, "Bandwidth optimal all-reduce algorithms
  for clusters of workstations", JPDC 69(2), 2009);
- all-reduce: a reduce-scatter then an all-gather, ``2 (n − 1)/n × B`` (same sources);
- all-to-all (bisection): each device keeps 1/n of its buffer and sends the rest; over a ring
  with wrap-around, half of all ``n × B`` bytes cross a bisection of 2 links (1 link for n = 2):
  ``n B / 4`` per link (Dally and Towles, "Principles and Practices of Interconnection
  Networks", 2004, §3.3);
- collective-permute: each device sends its buffer to one peer, ``B``.

The time is those bytes over one direction of one link (``link_bandwidth``): the chip's
published ICI bandwidth per link for a TPU target (:mod:`jaxcost.hardware`), the host's memory
bandwidth for CPU devices. Latency per hop is not modelled.

``jax.experimental.roofline`` counts the same per-device bytes from the jaxpr (``ici_bytes`` per
mesh axis); where XLA rewrites a collective (an all-reduce split into a reduce-scatter and an
all-gather, collectives combined, one moved out of a loop) the two differ, and jaxcost's figures
are those of the program XLA compiled.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from jaxcost.compiler.hlo import Computation, Instruction
from jaxcost.compiler.loops import trip_count
from jaxcost.names import split_op_name
from jaxcost.sharding import Partitioning

KINDS = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
_MODELS = {"all-reduce": "2x ring", "all-gather": "ring", "reduce-scatter": "ring", "all-to-all": "bisection",
           "collective-permute": "point to point"}
_IOTA = re.compile(r"^\[([\d,]+)\]<=\[([\d,]+)\](?:T\(([\d,]+)\))?$")


@dataclasses.dataclass(frozen=True)
class Collective:
    """One collective of the per-device program. ``buffer_bytes``: B of the module docstring;
    ``group_size``: n; ``axes``: the mesh axes its groups span; ``link_bytes``: bytes each
    device sends under ``model``; ``seconds``: their time over one link direction (None without
    a bandwidth); ``count``: executions (loop trips)."""

    name: str
    kind: str
    layer: str
    buffer_bytes: int
    group_size: int
    groups: int
    axes: tuple[str, ...]
    link_bytes: float
    model: str
    seconds: float | None = None
    count: int = 1

    def __repr__(self) -> str:
        axes = ",".join(self.axes) or "?"
        times = f" x{self.count}" if self.count != 1 else ""
        return (f"Collective({self.kind} {self.name}{times}: {self.buffer_bytes:,} B per device, n={self.group_size} "
                f"over {axes}, sends {self.link_bytes:,.0f} B ({self.model}))")


def replica_groups(inst: Instruction) -> list[list[int]]:
    """The replica groups of a collective: ``{{0,1},{2,3}}``, or XLA's iota form
    ``[2,4]<=[8]`` / ``[4,2]<=[2,4]T(1,0)``; collective-permute's source-target pairs."""
    text = inst.attrs.get("replica_groups") or inst.attrs.get("source_target_pairs") or ""
    text = text.strip()
    m = _IOTA.match(text)
    if m:
        shape = [int(v) for v in m.group(1).split(",")]
        dims = [int(v) for v in m.group(2).split(",")]
        ids = np.arange(int(np.prod(dims))).reshape(dims)
        if m.group(3):
            ids = ids.transpose([int(v) for v in m.group(3).split(",")])
        return ids.reshape(shape).tolist()
    return [[int(v) for v in g.split(",") if v.strip()] for g in re.findall(r"\{([\d,\s]*)\}", text)
            if g.strip()]


def _kind(inst: Instruction) -> str | None:
    op = inst.opcode
    if op.endswith("-done"):
        return None
    base = op.removesuffix("-start")
    if base in KINDS:
        return base
    if op == "async-start" and inst.called:
        root = inst.called[0].root.opcode
        return root if root in KINDS else None
    return None


def link_bytes(kind: str, buffer_bytes: int, n: int) -> float:
    """Bytes each device sends for one collective of ``buffer_bytes`` over groups of ``n``."""
    if n <= 1:
        return 0.0
    if kind == "all-reduce":
        return 2.0 * (n - 1) / n * buffer_bytes
    if kind in ("all-gather", "reduce-scatter"):
        return (n - 1) / n * buffer_bytes
    if kind == "all-to-all":
        return n * buffer_bytes / 4.0 if n > 2 else buffer_bytes / 2.0
    return float(buffer_bytes)


def _buffer(inst: Instruction, kind: str) -> int:
    """B: the gathered output of an all-gather, the operands of the others."""
    body = inst.called[0].root if inst.opcode == "async-start" and inst.called else inst
    if kind == "all-gather":
        shape = body.shape
        leaves = shape.leaves() if shape.is_tuple else [shape]
        if inst.opcode.endswith("-start"):  # (operands, outputs) tuple: the outputs
            leaves = leaves[len(body.operands):]
        return sum(s.bytes for s in leaves)
    return sum(o.shape.bytes for o in body.operands)


def _walk(comp: Computation, count: int, out: list[tuple[Instruction, int]]) -> None:
    for inst in comp.instructions:
        if _kind(inst) is not None:
            out.append((inst, count))
        elif inst.opcode == "while":
            trips = trip_count(inst) or 1
            _walk(inst.called_by("body"), count * trips, out)
        elif inst.opcode in ("call", "conditional"):
            for sub in inst.called:
                _walk(sub, count, out)


def collectives(entry: Computation, partitioning: Partitioning | None = None,
                link_bandwidth: float | None = None) -> list[Collective]:
    """Every collective under ``entry`` (see the module docstring); ``link_bandwidth`` in
    bytes/s, one direction of one link."""
    found: list[tuple[Instruction, int]] = []
    _walk(entry, 1, found)
    out = []
    for inst, count in found:
        kind = _kind(inst)
        groups = replica_groups(inst)
        if kind == "collective-permute":
            n = 2 if groups else 1
            axes = tuple(dict.fromkeys(a for g in groups for a in (partitioning.axes_of(g) if partitioning else ())))
            n_groups = len(groups)
        else:
            if not groups:  # empty replica groups: all devices in one group
                total = partitioning.devices if partitioning else 1
                groups = [list(range(total))]
            n = len(groups[0])
            axes = partitioning.axes_of(groups[0]) if partitioning else ()
            n_groups = len(groups)
        b = _buffer(inst, kind)
        sent = link_bytes(kind, b, n)
        out.append(Collective(inst.name, kind, split_op_name(inst.op_name).path, b, n, n_groups, axes, sent,
                              _MODELS[kind], sent / link_bandwidth if link_bandwidth else None, count))
    return out
