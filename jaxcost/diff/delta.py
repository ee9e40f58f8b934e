"""What changed between two analyses: ``jaxcost.delta(a, b)`` and ``jaxcost diff a.json b.json``.

Either side is an :class:`~jaxcost.analysis.Analysis`, a JSON report written by
``Analysis.to_json`` (or ``jaxcost analyze --json``), or its dict: both go through the JSON form
(:func:`jaxcost.report.export.to_dict`), so a committed report compares with today's program.

- **Totals**: parameters, XLA's flops and bytes accessed of the optimized and of the lowered
  module, the theory's flops (XLA convention) and MACs when both reports have them, and a
  top-level ``latency_s`` (seconds) when a report carries one (put there from
  :func:`jaxcost.benchmark`; analyses do not measure time).
- **Layers**, keyed by ``(path, direction)``: flops, bytes accessed and parameters of each row
  that changed, was added or was removed. Figures are the optimized module's when both sides
  were compiled, else the lowered module's (``Delta.basis``).
- **Kernels**: fused kernels whose composition (the layers whose instructions they hold)
  changed. XLA renames kernels from one compile to the next (``add_maximum_fusion.27``), so
  they are matched by the layer of their root instruction and direction, whose name the
  kernel carries (``op_name``), and compared by the layers they hold.

A relative change is ``(after - before) / |before|``; growth from zero is ``inf``. A regression
(:meth:`Delta.regressions`, ``--fail-above``) is a cost total that grew by more than the
threshold; latency is shown but never gates, being measured with noise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from collections.abc import Callable

from jaxcost.report.format import secs, si
from jaxcost.report.show import Shown


def _xla(side: str, key: str) -> Callable[[dict], float | None]:
    """XLA's figure of one module; None when that module's cost analysis was not available."""
    return lambda d: d[side][key] if d[side]["available"] else None


def _theory(key: str) -> Callable[[dict], float | None]:
    return lambda d: d["theory"][key] if d["theory"] is not None else None


#: The totals compared: key -> (label, getter on the JSON form).
TOTALS: dict[str, tuple[str, Callable[[dict], float | None]]] = {
    "params": ("parameters", lambda d: d["params"]),
    "flops": ("XLA flops (optimized)", _xla("compiler", "flops")),
    "flops_unoptimized": ("XLA flops (lowered)", _xla("compiler_unoptimized", "flops")),
    "bytes_accessed": ("bytes accessed (optimized)", _xla("compiler", "bytes_accessed")),
    "bytes_unoptimized": ("bytes accessed (lowered)", _xla("compiler_unoptimized", "bytes_accessed")),
    "theory_flops": ("theory flops (XLA convention)", _theory("flops_xla")),
    "theory_macs": ("theory MACs", _theory("macs")),
    "latency_s": ("latency", lambda d: d.get("latency_s")),
}

#: Totals that are costs: a growth beyond the threshold is a regression (latency is measured).
COSTS = ("params", "flops", "flops_unoptimized", "bytes_accessed", "bytes_unoptimized", "theory_flops",
         "theory_macs")


def _name(path: str, direction: str = "forward") -> str:
    return (path or "(top level)") + ("" if direction == "forward" else f" [{direction}]")


@dataclasses.dataclass(frozen=True)
class Change:
    """One figure (``what``, a key of :data:`TOTALS` or ``flops``/``bytes_accessed``/``params``
    of a layer) before and after; None where a side does not have it."""

    what: str
    before: float | None
    after: float | None

    @property
    def diff(self) -> float:
        """``after - before``, an absent side counting zero."""
        return (self.after or 0) - (self.before or 0)

    @property
    def rel(self) -> float | None:
        """``(after - before) / |before|``; ``inf`` for growth from zero; None if a side is absent."""
        if self.before is None or self.after is None:
            return None
        if self.before == 0:
            return 0.0 if self.after == 0 else math.copysign(math.inf, self.after)
        return (self.after - self.before) / abs(self.before)

    @property
    def label(self) -> str:
        return TOTALS[self.what][0] if self.what in TOTALS else self.what

    def fmt(self, x: float | None) -> str:
        return secs(x) if self.what == "latency_s" else ("-" if x is None else si(x))

    def rel_text(self) -> str:
        rel = self.rel
        return "-" if rel is None else ("new" if math.isinf(rel) else f"{rel:+.2%}")

    def __repr__(self) -> str:
        return f"{self.label}: {self.fmt(self.before)} -> {self.fmt(self.after)} ({self.rel_text()})"


@dataclasses.dataclass(frozen=True)
class LayerChange:
    """One layer row, ``(path, direction)``, on both sides; ``status``: "added", "removed" or
    "changed"."""

    path: str
    direction: str
    flops: Change
    bytes_accessed: Change
    params: Change

    @property
    def key(self) -> tuple[str, str]:
        return self.path, self.direction

    @property
    def status(self) -> str:
        if self.flops.before is None:
            return "added"
        return "removed" if self.flops.after is None else "changed"

    @property
    def name(self) -> str:
        return _name(self.path, self.direction)

    def __repr__(self) -> str:
        return (f"LayerChange({self.name!r}, {self.status}, flops {self.flops.diff:+,.0f}, "
                f"bytes {self.bytes_accessed.diff:+,.0f}, params {self.params.diff:+,.0f})")


@dataclasses.dataclass(frozen=True)
class KernelChange:
    """A fused kernel rooted in layer ``layer`` (``direction``) whose composition changed:
    ``before`` / ``after`` the layers it holds (``()``: no such kernel on that side)."""

    layer: str
    direction: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def absorbed(self) -> tuple[str, ...]:
        """Layers the kernel holds after and not before."""
        return tuple(p for p in self.after if p not in self.before)

    @property
    def released(self) -> tuple[str, ...]:
        """Layers the kernel held before and no longer does."""
        return tuple(p for p in self.before if p not in self.after)

    def __repr__(self) -> str:
        return f"KernelChange({_name(self.layer, self.direction)!r}, {list(self.before)} -> {list(self.after)})"


@dataclasses.dataclass(frozen=True)
class Delta(Shown):
    """What changed from ``names[0]`` to ``names[1]`` (see :mod:`jaxcost.diff.delta`).

    ``totals``: one :class:`Change` per total either side has; ``layers``: one
    :class:`LayerChange` per row that changed, was added or removed, in (direction, path) order;
    ``kernels``: :class:`KernelChange` per fused kernel whose composition changed; ``basis``: the
    module the per-layer figures come from ("optimized" or "lowered")."""

    names: tuple[str, str]
    basis: str
    totals: list[Change]
    layers: list[LayerChange]
    kernels: list[KernelChange]

    def total(self, what: str) -> Change:
        """The change of one total by key (``"flops"``, ``"bytes_accessed"``, ``"params"``, ...)."""
        for c in self.totals:
            if c.what == what:
                return c
        raise KeyError(f"no total {what!r} in both reports; totals: {[c.what for c in self.totals]}")

    def layer(self, path: str, direction: str = "forward") -> LayerChange:
        for row in self.layers:
            if row.key == (path, direction):
                return row
        raise KeyError(f"layer {path!r} ({direction}) did not change")

    @property
    def added(self) -> list[tuple[str, str]]:
        return [r.key for r in self.layers if r.status == "added"]

    @property
    def removed(self) -> list[tuple[str, str]]:
        return [r.key for r in self.layers if r.status == "removed"]

    @property
    def changed(self) -> list[tuple[str, str]]:
        return [r.key for r in self.layers if r.status == "changed"]

    def _size(self, what: str) -> float:
        """The larger side of a total (1 when absent): the scale a layer's change is weighed on."""
        c = next((c for c in self.totals if c.what == what), None)
        return max(abs(c.before or 0), abs(c.after or 0), 1) if c is not None else 1

    def regressions(self, threshold: float) -> list[Change]:
        """Cost totals (not latency) that grew by more than ``threshold`` (0.02 = 2 %)."""
        return [c for c in self.totals if c.what in COSTS and c.rel is not None and c.rel > threshold]

    def to_dict(self) -> dict:
        """A plain, JSON-ready form (``jaxcost diff --json``)."""

        def change(c: Change) -> dict:
            rel = c.rel
            return {"before": c.before, "after": c.after,
                    "rel": None if rel is None or math.isinf(rel) else rel}

        return {"names": list(self.names), "basis": self.basis,
                "totals": {c.what: change(c) for c in self.totals},
                "layers": [{"path": r.path, "direction": r.direction, "status": r.status,
                            **{c.what: change(c) for c in (r.flops, r.bytes_accessed, r.params)}}
                           for r in self.layers],
                "kernels": [{"layer": k.layer, "direction": k.direction, "before": list(k.before),
                             "after": list(k.after)} for k in self.kernels]}

    def __repr__(self) -> str:
        totals = ", ".join(f"{c.what} {c.rel_text()}" for c in self.totals if c.what in ("flops", "bytes_accessed",
                                                                                          "params"))
        return (f"Delta({self.names[0]!r} -> {self.names[1]!r}: {totals}; layers +{len(self.added)} "
                f"-{len(self.removed)} ~{len(self.changed)}, {len(self.kernels)} kernels changed)")

    def __rich__(self):
        from rich.console import Group
        from rich.text import Text

        parts = [_totals_table(self)]
        if self.layers:
            parts.append(_layers_table(self))
        if self.kernels:
            parts.append(_kernels_table(self))
        if not self.layers and not self.kernels:
            parts.append(Text("no layer and no fused kernel changed"))
        return Group(*parts)


def _totals_table(d: Delta):
    from rich.table import Table

    t = Table(title=f"{d.names[0]} -> {d.names[1]}")
    for col in ("total", "before", "after", "change", "relative"):
        t.add_column(col, justify="left" if col == "total" else "right", no_wrap=True)
    for c in d.totals:
        diff = secs(c.diff) if c.what == "latency_s" else si(c.diff)
        t.add_row(c.label, c.fmt(c.before), c.fmt(c.after), ("+" if c.diff > 0 else "") + diff, c.rel_text())
    return t


def _layers_table(d: Delta, limit: int = 25):
    """The layers that moved most first: each change weighed as a share of its total."""
    from rich.table import Table

    opt = d.basis == "optimized"
    s_flops, s_bytes, s_params = (d._size(k) for k in ("flops" if opt else "flops_unoptimized",
                                                        "bytes_accessed" if opt else "bytes_unoptimized", "params"))

    def weight(r: LayerChange) -> float:
        return abs(r.flops.diff) / s_flops + abs(r.bytes_accessed.diff) / s_bytes + abs(r.params.diff) / s_params

    t = Table(title=f"Layers: {len(d.changed)} changed, {len(d.added)} added, {len(d.removed)} removed "
                    f"(largest first; {d.basis} module)")
    for col in ("", "layer", "flops", "change", "bytes", "change", "params", "change"):
        t.add_column(col, justify="left" if col in ("", "layer") else "right", no_wrap=True)
    rows = sorted(d.layers, key=weight, reverse=True)
    mark = {"added": "+", "removed": "-", "changed": "~"}
    for r in rows[:limit]:
        cells = []
        for c in (r.flops, r.bytes_accessed, r.params):
            cells += [f"{c.fmt(c.before)} -> {c.fmt(c.after)}", ("+" if c.diff > 0 else "") + si(c.diff)]
        t.add_row(mark[r.status], r.name, *cells)
    if len(rows) > limit:
        t.caption = f"... and {len(rows) - limit} more (Delta.layers)"
    return t


def _kernels_table(d: Delta, limit: int = 15):
    from rich.table import Table

    t = Table(title=f"Fused kernels whose composition changed ({len(d.kernels)}; by the layer of their root "
                    "instruction)")
    for col in ("rooted in", "layers held", "absorbed", "released"):
        t.add_column(col, no_wrap=col in ("rooted in", "layers held"), overflow="fold")

    def held(layers: tuple[str, ...]) -> str:
        return str(len(layers)) if layers else "no kernel"

    for k in d.kernels[:limit]:
        t.add_row(_name(k.layer, k.direction), f"{held(k.before)} -> {held(k.after)}",
                  ", ".join(map(_name, k.absorbed)), ", ".join(map(_name, k.released)))
    if len(d.kernels) > limit:
        t.caption = f"... and {len(d.kernels) - limit} more (Delta.kernels)"
    return t


def as_report(x) -> tuple[str, dict]:
    """``(name, JSON form)`` of an Analysis, a path to a JSON report, or such a dict; a
    ValueError in one line for anything else."""
    if isinstance(x, (str, os.PathLike)):
        try:
            with open(x) as f:
                d = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read the JSON report {os.fspath(x)}: {e}") from None
        name = os.path.basename(os.fspath(x))
    elif isinstance(x, dict):
        d, name = x, None
    elif hasattr(x, "to_dict"):
        d, name = x.to_dict(), None
    else:
        raise TypeError(f"delta() compares Analysis objects or JSON reports (a path or a dict), "
                        f"not {type(x).__name__}")
    missing = [k for k in ("schema_version", "params", "compiler", "compiler_unoptimized", "layers", "ops")
               if k not in d] if isinstance(d, dict) else ["schema_version"]
    if missing:
        raise ValueError(f"{name or 'the dict'} is not a jaxcost JSON report (no {', '.join(missing)}); "
                         "write one with Analysis.to_json or 'jaxcost analyze ... --json PATH'")
    return name or d.get("name") or "?", d


def _layer_figures(d: dict, optimized: bool) -> dict[tuple[str, str], tuple[float, float, int]]:
    flops, nbytes = ("flops", "bytes_accessed") if optimized else ("flops_unoptimized", "bytes_unoptimized")
    return {(r["path"], r["direction"]): (r[flops], r[nbytes], r["params"]) for r in d["layers"]}


def _kernels(d: dict) -> dict[tuple[str, str], Counter]:
    """Fused kernels by (root layer, direction): how many hold each composition."""
    out: dict[tuple[str, str], Counter] = {}
    for op in d["ops"]:
        if op["opcode"] == "fusion":
            out.setdefault((op["layer"], op["direction"]), Counter())[tuple(sorted(op["layers"]))] += 1
    return out


def _kernel_changes(a: dict, b: dict) -> list[KernelChange]:
    """Per root, the compositions found on one side only, paired by the most layers in common."""
    ka, kb = _kernels(a), _kernels(b)
    out = []
    for root in sorted(ka.keys() | kb.keys()):
        ca, cb = ka.get(root, Counter()), kb.get(root, Counter())
        before, after = list((ca - cb).elements()), list((cb - ca).elements())
        while before or after:
            if before and after:
                i, j = max(((i, j) for i in range(len(before)) for j in range(len(after))),
                           key=lambda ij: len(set(before[ij[0]]) & set(after[ij[1]])))
                pair = before.pop(i), after.pop(j)
            else:
                pair = (before.pop(0), ()) if before else ((), after.pop(0))
            out.append(KernelChange(root[0], root[1], *pair))
    return out


def delta(a, b) -> Delta:
    """What changed from ``a`` to ``b``, each an Analysis, a JSON report's path or its dict
    (see :mod:`jaxcost.diff.delta`)."""
    (name_a, da), (name_b, db) = as_report(a), as_report(b)
    totals = [Change(k, get(da), get(db)) for k, (_, get) in TOTALS.items()]
    totals = [c for c in totals if c.before is not None or c.after is not None]
    optimized = bool(da["compiled"] and db["compiled"])
    rows_a, rows_b = _layer_figures(da, optimized), _layer_figures(db, optimized)
    layers = []
    for key in sorted(rows_a.keys() | rows_b.keys(), key=lambda k: (k[1] != "forward", k[1], k[0])):
        fa, fb = rows_a.get(key, (None,) * 3), rows_b.get(key, (None,) * 3)
        if fa != fb:
            layers.append(LayerChange(*key, *(Change(w, x, y) for w, x, y in
                                              zip(("flops", "bytes_accessed", "params"), fa, fb))))
    return Delta((name_a, name_b), "optimized" if optimized else "lowered", totals, layers,
                 _kernel_changes(da, db))
