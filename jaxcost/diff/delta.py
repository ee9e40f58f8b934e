"""What changed between two analyses: ``jaxcost.delta(a, b)`` and ``jaxcost diff a.json b.json``.

Either side is an :class:`~jaxcost.analysis.Analysis`, a JSON file written by
``Analysis.to_json`` or its dict; both go through the JSON form, so a committed report can be
compared with today's. The result holds the totals' changes (parameters, XLA flops optimized and
lowered, bytes accessed, theory flops), per-layer changes keyed by ``(path, direction)``, layers
added and removed, and fused kernels whose composition changed (kernels are matched by the layers
they hold, since XLA renames kernels from one compile to the next).
"""

from __future__ import annotations

import dataclasses
import json
import os

from jaxcost.report.format import si
from jaxcost.report.show import Shown

#: The totals compared, as (label, getter on the JSON form).
TOTALS = (
    ("params", lambda d: d["params"]),
    ("XLA flops (optimized)", lambda d: d["compiler"]["flops"]),
    ("XLA flops (lowered)", lambda d: d["compiler_unoptimized"]["flops"]),
    ("bytes accessed (optimized)", lambda d: d["compiler"]["bytes_accessed"]),
    ("bytes accessed (lowered)", lambda d: d["compiler_unoptimized"]["bytes_accessed"]),
    ("theory flops (XLA convention)", lambda d: (d.get("theory") or {}).get("flops_xla")),
)


@dataclasses.dataclass(frozen=True)
class Change:
    """One figure before and after; ``rel`` the relative change (None from zero or unknown)."""

    what: str
    before: float | None
    after: float | None

    @property
    def rel(self) -> float | None:
        if self.before in (None, 0) or self.after is None:
            return None
        return (self.after - self.before) / abs(self.before)

    def __repr__(self) -> str:
        rel = f" ({self.rel:+.1%})" if self.rel is not None else ""
        return f"{self.what}: {si(self.before)} -> {si(self.after)}{rel}"


@dataclasses.dataclass(frozen=True)
class Delta(Shown):
    """``totals``: :class:`Change` per total; ``layers``: per changed ``(path, direction)``, the
    changes of flops, bytes and params; ``added`` / ``removed`` layer keys; ``kernels_added`` /
    ``kernels_removed``: fused-kernel compositions (the layers a kernel holds) found on one side
    only."""

    names: tuple[str, str]
    totals: list[Change]
    layers: dict[tuple[str, str], list[Change]]
    added: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    kernels_added: list[tuple[str, ...]]
    kernels_removed: list[tuple[str, ...]]

    def total(self, what: str) -> Change:
        return next(c for c in self.totals if c.what == what)

    def regressions(self, threshold: float) -> list[Change]:
        """Totals that grew by more than ``threshold`` (0.02 = 2 %)."""
        return [c for c in self.totals if c.rel is not None and c.rel > threshold]

    def __repr__(self) -> str:
        flops = self.total("XLA flops (optimized)")
        return (f"Delta({self.names[0]!r} -> {self.names[1]!r}: {flops}, {len(self.layers)} layers changed, "
                f"+{len(self.added)}/-{len(self.removed)} layers)")

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        t = Table(title=f"{self.names[0]} -> {self.names[1]}")
        for col in ("", "before", "after", "change"):
            t.add_column(col, justify="left" if not col else "right", no_wrap=True)
        for c in self.totals:
            t.add_row(c.what, si(c.before), si(c.after), f"{c.rel:+.2%}" if c.rel is not None else "-")
        lt = Table(title=f"Layers changed ({len(self.layers)}), added ({len(self.added)}), removed ({len(self.removed)})")
        for col in ("layer", "flops", "bytes", "params"):
            lt.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
        rows = sorted(self.layers.items(), key=lambda kv: -abs((kv[1][1].after or 0) - (kv[1][1].before or 0)))
        for (path, direction), (f, b, p) in rows[:25]:
            name = (path or "(top level)") + ("" if direction == "forward" else f" [{direction}]")
            lt.add_row(name, *(f"{si(c.before)} -> {si(c.after)}" for c in (f, b, p)))
        for key in self.added[:10]:
            lt.add_row(f"+ {key[0] or '(top level)'} [{key[1]}]", "", "", "")
        for key in self.removed[:10]:
            lt.add_row(f"- {key[0] or '(top level)'} [{key[1]}]", "", "", "")
        return Group(t, lt)


def as_report(x) -> dict:
    """The JSON form of an Analysis, a path to a JSON report, or such a dict."""
    if isinstance(x, dict):
        return x
    if isinstance(x, (str, os.PathLike)):
        with open(x) as f:
            return json.load(f)
    if hasattr(x, "to_dict"):
        return x.to_dict()
    raise TypeError(f"delta() compares Analysis objects or JSON reports, not {type(x).__name__}")


def _kernels(d: dict) -> set[tuple[str, ...]]:
    return {tuple(sorted(op["layers"])) for op in d.get("ops", []) if op.get("opcode") == "fusion"}


def delta(a, b) -> Delta:
    """What changed from ``a`` to ``b`` (see the module docstring)."""
    da, db = as_report(a), as_report(b)
    totals = [Change(what, get(da), get(db)) for what, get in TOTALS]
    rows_a = {(r["path"], r["direction"]): r for r in da.get("layers", [])}
    rows_b = {(r["path"], r["direction"]): r for r in db.get("layers", [])}
    layers = {}
    for key in rows_a.keys() & rows_b.keys():
        ra, rb = rows_a[key], rows_b[key]
        changes = [Change(k, ra[k], rb[k]) for k in ("flops", "bytes_accessed", "params")]
        if any(c.before != c.after for c in changes):
            layers[key] = changes
    ka, kb = _kernels(da), _kernels(db)
    return Delta((da.get("name", "a"), db.get("name", "b")), totals, layers, sorted(rows_b.keys() - rows_a.keys()),
                 sorted(rows_a.keys() - rows_b.keys()), sorted(kb - ka), sorted(ka - kb))
