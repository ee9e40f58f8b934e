"""Timing a training step in steady state, and its MFU and HFU.

The step runs as a training loop runs it: one state pytree (parameters, optimizer state,
batch statistics) donated to each step and replaced by the one it returns, after warm-up
steps; the median step time is the figure. MFU and HFU divide the step's model and hardware
FLOPs (:class:`jaxcost.StepCost`) by the time and the device's peak FLOP/s: measured on this
device (``jaxcost peaks``, cached) or published for the chip.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from jaxcost.perf.roofline import achieved
from jaxcost.report.format import secs, si
from jaxcost.report.show import Shown

if TYPE_CHECKING:
    from jaxcost.perf.peaks import DevicePeaks
    from jaxcost.perf.results import BenchmarkResult


@dataclasses.dataclass(frozen=True)
class TrainBenchmark(Shown):
    """One training step timed: ``step_s`` (median), model and hardware FLOPs of one step,
    the peak FLOP/s they are divided by (``peak_source``: measured / published), MFU, HFU."""

    name: str
    device_kind: str
    batch_size: int | None
    step_s: float
    model_flops: int
    hardware_flops: float
    peak_flops_per_s: float
    peak_source: str
    timing: BenchmarkResult = dataclasses.field(repr=False)

    @property
    def mfu(self) -> float:
        """Model FLOPs utilisation: model FLOPs / step time / peak."""
        return achieved(self.model_flops, self.step_s) / self.peak_flops_per_s

    @property
    def hfu(self) -> float:
        """Hardware FLOPs utilisation: hardware FLOPs (recompute included) / step time / peak."""
        return achieved(self.hardware_flops, self.step_s) / self.peak_flops_per_s

    def __repr__(self) -> str:
        return (f"TrainBenchmark({self.name!r}, {self.device_kind}, step {secs(self.step_s)}, "
                f"MFU {self.mfu:.1%}, HFU {self.hfu:.1%} of {si(self.peak_flops_per_s, 'FLOP/s')} "
                f"({self.peak_source}))")

    def __rich__(self):
        from rich.table import Table

        t = Table(title=f"{self.name} on {self.device_kind}: steady-state training step")
        for col in ("batch", "step (median)", "IQR", "model FLOPs", "hardware FLOPs", "peak", "MFU", "HFU"):
            t.add_column(col, justify="right", no_wrap=True)
        t.add_row(str(self.batch_size), secs(self.step_s), secs(self.timing.stats.iqr), si(self.model_flops),
                  si(self.hardware_flops), f"{si(self.peak_flops_per_s, 'FLOP/s')} ({self.peak_source})",
                  f"{self.mfu:.1%}", f"{self.hfu:.1%}")
        return t

    def to_dict(self) -> dict:
        return {"name": self.name, "device_kind": self.device_kind, "batch_size": self.batch_size,
                "step_s": self.step_s, "model_flops": self.model_flops, "hardware_flops": self.hardware_flops,
                "peak_flops_per_s": self.peak_flops_per_s, "peak_source": self.peak_source,
                "mfu": self.mfu, "hfu": self.hfu, "timing": self.timing.to_dict()}


def benchmark_step(step, analysis=None, *, peaks: DevicePeaks | None = None,
                   dtype: str = "float32", backend: str | None = None, **timing) -> TrainBenchmark:
    """Time ``step`` (a :class:`jaxcost.TrainStep`) in steady state (donated state, see the module docstring) and divide its
    FLOPs by the time and ``peaks`` (default: this device's, measured once and cached).
    ``analysis``: of the same step (computed when not given); ``timing`` goes to
    :func:`jaxcost.benchmark` (``time_budget_s``, ``min_repeats``, ...)."""
    from jaxcost.perf.peaks import get_peaks
    from jaxcost.perf.timing import benchmark

    if analysis is None:
        analysis = step.analyze(backend=backend)
    cost = analysis.training()
    pure, state = step.functional()
    x, labels = step.args[-2:]
    batch = x.shape[0] if getattr(x, "shape", ()) else None
    result = benchmark(pure, state, x, labels, backend=backend, donate_argnums=(0,), carry=True,
                       batch_size=batch, **{"warmup": 2, "min_repeats": 3, "time_budget_s": 5.0, **timing})
    peaks = peaks or get_peaks(backend)
    return TrainBenchmark(step.name, result.device_kind, batch, result.latency_s, cost.model_flops,
                          cost.hardware_flops, peaks.peak_flops(dtype), peaks.source, result)
