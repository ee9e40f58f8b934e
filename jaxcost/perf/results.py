"""A benchmarked point (:class:`BenchmarkResult`) and its files: JSON, CSV, a rich table."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jaxcost.perf.stats import TimingStats
from jaxcost.report.format import secs
from jaxcost.report.show import Shown


@dataclasses.dataclass(frozen=True)
class BenchmarkResult(Shown):
    """One benchmarked point. ``error`` is set (and ``stats`` None) on failure."""

    backend: str
    device_kind: str
    batch_size: int | None
    compile_s: float | None
    lower_s: float | None
    stats: TimingStats | None
    latency_s: float | None
    throughput: float | None
    compiler_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    options_name: str | None = None
    error: str | None = None

    def __rich__(self):
        return results_table([self])

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stats"] = self.stats.to_dict() if self.stats is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BenchmarkResult:
        d = dict(d)
        if d.get("stats") is not None:
            d["stats"] = TimingStats(**d["stats"])
        d["compiler_options"] = dict(d.get("compiler_options") or {})
        return cls(**d)


_STAT_FIELDS = [f.name for f in dataclasses.fields(TimingStats)]
CSV_COLUMNS = [
    "backend", "device_kind", "batch_size", "options_name", "compiler_options",
    "compile_s", "lower_s", "latency_s", "throughput",
    *[f"stats_{f}" for f in _STAT_FIELDS], "error",
]


def results_to_json(results: Iterable[BenchmarkResult], path: str) -> None:
    """Write ``[r.to_dict() ...]`` as a JSON list."""
    with open(path, "w") as f:
        json.dump([r.to_dict() for r in results], f, indent=2)


def results_from_json(path: str) -> list[BenchmarkResult]:
    with open(path) as f:
        return [BenchmarkResult.from_dict(d) for d in json.load(f)]


def results_to_csv(results: Iterable[BenchmarkResult], path: str) -> None:
    """One row per result, columns ``CSV_COLUMNS``; stats flattened as ``stats_*``,
    compiler options as a JSON string, missing values as empty cells."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for r in results:
            d = r.to_dict()
            stats = d.pop("stats") or {}
            d["compiler_options"] = json.dumps(d["compiler_options"], sort_keys=True)
            for k in _STAT_FIELDS:
                d[f"stats_{k}"] = stats.get(k)
            w.writerow({k: ("" if d.get(k) is None else d[k]) for k in CSV_COLUMNS})


def results_from_csv(path: str) -> list[BenchmarkResult]:
    def num(s: str, cast: Callable = float):
        return None if s == "" else cast(s)

    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            stats = None
            if row["stats_n"] != "":
                stats = TimingStats(**{k: num(row[f"stats_{k}"], int if k == "n" else float)
                                       for k in _STAT_FIELDS})
            out.append(BenchmarkResult(
                backend=row["backend"], device_kind=row["device_kind"],
                batch_size=num(row["batch_size"], int),
                compile_s=num(row["compile_s"]), lower_s=num(row["lower_s"]),
                stats=stats, latency_s=num(row["latency_s"]), throughput=num(row["throughput"]),
                compiler_options=json.loads(row["compiler_options"] or "{}"),
                options_name=row["options_name"] or None, error=row["error"] or None,
            ))
    return out


def results_table(results: Iterable[BenchmarkResult]):
    """A ``rich.table.Table`` of the results, one row each."""
    from rich.table import Table

    table = Table(title="jaxcost benchmark")
    for col in ("backend", "device", "options", "batch", "median", "min", "IQR", "CV",
                "items/s", "lower", "compile", "error"):
        table.add_column(col, justify="left" if col in ("backend", "device", "options", "error") else "right")
    for r in results:
        s = r.stats
        table.add_row(
            r.backend, r.device_kind, r.options_name or json.dumps(r.compiler_options),
            "-" if r.batch_size is None else str(r.batch_size),
            secs(r.latency_s), secs(s.min if s else None), secs(s.iqr if s else None),
            f"{s.cv:.1%}" if s else "-",
            f"{r.throughput:,.1f}" if r.throughput else "-",
            secs(r.lower_s), secs(r.compile_s), (r.error or "")[:80],
        )
    return table
