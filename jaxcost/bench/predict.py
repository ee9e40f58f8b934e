"""Analyses meet benchmarks: the roofline of a compiled program, the predicted latency
next to the measured one, and ``compare`` for any two functions or modules
(``benchmark`` is :func:`jaxcost.bench.timing.benchmark`, re-exported)."""

from __future__ import annotations

import dataclasses
from typing import Any

from jaxcost.bench.kernels import NO_KERNEL, class_work, kernel_rate
from jaxcost.bench.peaks import DevicePeaks, get_peaks
from jaxcost.bench.roofline import Roofline, roofline
from jaxcost.bench.timing import BenchmarkResult, benchmark
from jaxcost.compiler.corrections import trip_count

# Per-kernel dispatch cost used for GPU predictions (typical CUDA launch latency).
GPU_LAUNCH_OVERHEAD_S = 4e-6


def _dtype_of(analysis) -> str:
    shapes = " ".join(analysis.input_shapes)
    for dt in ("bfloat16", "float16", "float64"):
        if dt in shapes:
            return dt
    return "float32"


def program_roofline(analysis, peaks: DevicePeaks | None = None, dtype: str | None = None) -> Roofline:
    """Roofline of every top-level kernel of the optimized module: predicted time
    = sum of max(compute, bytes / bandwidth) + a fixed cost per kernel, where compute
    prices each convolution and dot at the measured rate of the calibration kernel of
    its class nearest in size (``peaks.kernel_table``, else the class rate
    ``peaks.kernel_flops_per_s``; see :mod:`jaxcost.bench.kernels`) and the rest at
    the dtype's peak -- or flops / peak when the peaks carry no class rates
    (published peaks, other dtypes). The fixed cost is the measured
    ``peaks.kernel_overhead_s``, else a typical launch latency on GPU, else 0.
    A while loop counts its body trip-count times (XLA's ``known_trip_count``), each
    kernel of the body launched each time. Transcendentals count as flops here. A
    custom call XLA could not price counts zero flops (warned in the analysis)."""
    if not analysis.compiled:
        raise ValueError("a roofline needs the compiled module: analyze(..., compile=True)")
    peaks = peaks or get_peaks(analysis.backend, measure=analysis.backend == "cpu")
    dtype = dtype or _dtype_of(analysis)
    if dtype not in peaks.flops_per_s:
        dtype = next(iter(peaks.flops_per_s))
    peak = peaks.peak_flops(dtype)
    rates = peaks.kernel_flops_per_s if dtype == "float32" else {}
    kernels = []
    table = peaks.kernel_table if dtype == "float32" else []
    for op in analysis.ops:
        work = class_work(op)
        compute_s = sum(f / kernel_rate(cls, mkn, table, rates, peak) for cls, f, mkn in work)
        # XLA prices a while loop's body once: it runs trip-count times, each kernel of it
        n, launches = 1, 1
        if op.opcode == "while" and op.instruction is not None:
            n = trip_count(op.instruction)
            body = op.instruction.called_by("body")
            launches = n * max(1, sum(i.opcode not in NO_KERNEL for i in body.instructions) if body else 1)
        kernels.append((op.name, n * sum(f for _, f, _ in work), n * max(op.bytes_accessed, 0.0), n * compute_s,
                        launches))
    overhead = peaks.kernel_overhead_s
    if overhead is None:
        overhead = GPU_LAUNCH_OVERHEAD_S if analysis.backend == "gpu" else 0.0
    return roofline(kernels, peaks, dtype=dtype, launch_overhead_s=overhead)


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Predicted vs measured latency of one compiled program."""

    predicted_s: float
    measured_s: float
    roofline: Roofline

    @property
    def ratio(self) -> float:
        """predicted / measured (1.0 = perfect; < 1 means the roofline is optimistic)."""
        return self.predicted_s / self.measured_s if self.measured_s else float("nan")


@dataclasses.dataclass
class Comparison:
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

    def summary(self, print_: bool = True) -> str | None:
        """Print the side-by-side table; with ``print_=False`` return it as text instead."""
        from rich.console import Console

        if print_:
            Console(width=140).print(self.table())
            return None
        console = Console(width=140)
        with console.capture() as cap:
            console.print(self.table())
        return cap.get()


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
