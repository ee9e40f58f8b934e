"""Two programs side by side: costs from :func:`jaxcost.analyze` and, optionally, measured
latency from :func:`jaxcost.benchmark`, on the same inputs."""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxcost.perf.results import BenchmarkResult
from jaxcost.perf.timing import benchmark
from jaxcost.report.show import Shown


@dataclasses.dataclass
class Comparison(Shown):
    names: tuple[str, str]
    analyses: tuple[Any, Any]
    timings: tuple[BenchmarkResult | None, BenchmarkResult | None]

    def table(self):
        from rich.table import Table

        from jaxcost.report.format import secs, si

        t = Table(title=f"{self.names[0]} vs {self.names[1]}")
        t.add_column("")
        for n in self.names:
            t.add_column(n, justify="right")
        t.add_column("B / A", justify="right")

        def row(label, values, unit=""):
            a, b = values
            ratio = f"{b / a:.2f}" if a else "-"
            fmt = secs if unit == "s" else (lambda v: si(v, unit))
            t.add_row(label, fmt(a), fmt(b), ratio)

        a, b = self.analyses
        row("params", (a.params, b.params))
        if a.theory is not None and b.theory is not None:
            row("MACs (theory, dense)", (a.theory.totals.macs, b.theory.totals.macs))
        row("XLA flops (optimized)", (a.compiler.flops or 0, b.compiler.flops or 0))
        row("XLA bytes (unoptimized)", (a.compiler_unoptimized.bytes_accessed or 0,
                                        b.compiler_unoptimized.bytes_accessed or 0), "B")
        row("XLA bytes (optimized)", (a.compiler.bytes_accessed or 0, b.compiler.bytes_accessed or 0), "B")
        row("temp memory", (a.memory.temp_bytes or 0, b.memory.temp_bytes or 0), "B")
        if all(self.timings):
            row("latency (median)", (self.timings[0].latency_s, self.timings[1].latency_s), "s")
            t.caption = (f"timings: n={self.timings[0].stats.n}/{self.timings[1].stats.n}, "
                         f"CV {self.timings[0].stats.cv:.1%}/{self.timings[1].stats.cv:.1%}")
        return t

    def __rich__(self):
        return self.table()


def compare(model_a, model_b, *args, names: tuple[str, str] | None = None, measure: bool = True,
            compiler_options: tuple[dict | None, dict | None] = (None, None),
            time_budget_s: float = 2.0, **analyze_kwargs) -> Comparison:
    """Analyze (and time) two programs on the same inputs and put them side by side.
    ``compiler_options`` compiles each with its own XLA options, e.g.
    ``(None, {"xla_disable_hlo_passes": "fusion"})`` for fused vs unfused."""
    from jaxcost.analysis import analyze

    names = names or (getattr(model_a, "__name__", type(model_a).__name__),
                      getattr(model_b, "__name__", type(model_b).__name__))
    if names[0] == names[1]:
        names = (names[0] + " (A)", names[1] + " (B)")
    analyses = tuple(analyze(m, *args, compiler_options=o, **analyze_kwargs)
                     for m, o in zip((model_a, model_b), compiler_options))
    timings = (None, None)
    if measure:
        timings = tuple(benchmark(m, *args, compiler_options=o, time_budget_s=time_budget_s)
                        for m, o in zip((model_a, model_b), compiler_options))
    return Comparison(names, analyses, timings)
