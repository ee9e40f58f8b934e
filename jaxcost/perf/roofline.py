"""Roofline arithmetic on (name, flops, bytes) costs.

Pure arithmetic, independent of where the costs came from (theory rules,
XLA's cost analysis, a profiler). For one kernel on a device with peak
``P`` FLOP/s and bandwidth ``B`` bytes/s::

    intensity = flops / bytes                       (FLOP per byte)
    time      = max(flops / P, bytes / B) + launch_overhead
    bound     = 'compute' if flops / P >= bytes / B else 'memory'
    ridge     = P / B   (intensity at which both roofs meet)

``predicted_s`` of a Roofline is the sum over kernels (kernels run one after
the other, each at its own roof). A kernel may bring its own compute time
(``(name, flops, bytes, compute_s)``): its flops at the rates of its kernel
classes (:mod:`jaxcost.perf.kernels`) rather than at the one peak; and the
number of launches it stands for (``(name, flops, bytes, compute_s, launches)``,
a loop: each pays the launch overhead).

``critical_path_s`` (where the program's dependency graph is known:
:func:`jaxcost.perf.predict.program_roofline`) is the other end: the longest chain of kernels
each waiting on the previous one's output, each at its own roof -- the time if every
independent kernel ran alongside the others at its solo speed. A runtime that runs
independent kernels on several threads (XLA:CPU does) lands between the two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from jaxcost.perf.peaks import DevicePeaks
from jaxcost.report.show import Shown


@dataclasses.dataclass(frozen=True)
class RooflinePoint:
    name: str
    flops: float
    bytes: float
    time_s: float
    intensity: float
    bound: str  # 'compute' | 'memory' | 'collective'
    note: str = ""  # why the time may be off (a caveat of the pricing)


@dataclasses.dataclass(frozen=True)
class Roofline(Shown):
    points: tuple[RooflinePoint, ...]
    peak_flops_per_s: float
    bandwidth_bytes_per_s: float
    ridge_intensity: float
    predicted_s: float
    dtype: str
    launch_overhead_s: float = 0.0
    device_kind: str = ""
    program_factor: float = 1.0  # kernels' times scaled by it (jaxcost.perf.programs)
    critical_path_s: float | None = None  # longest chain of dependent kernels (None: graph unknown)

    def __repr__(self) -> str:
        bound = sum(p.bound == "memory" for p in self.points)
        noted = f", {len(self.notes)} with caveats" if self.notes else ""
        path = f" (critical path {self.critical_path_s:.3e} s)" if self.critical_path_s is not None else ""
        return (f"Roofline({self.device_kind or '?'}, {self.dtype}, predicted {self.predicted_s:.3e} s{path}, "
                f"{len(self.points)} kernels, {bound} memory-bound{noted})")

    def __rich__(self, top: int = 15):
        from rich.table import Table

        from jaxcost.report.format import footnotes, secs, si

        extra = f", in-program factor {self.program_factor:.2f}" if self.program_factor != 1.0 else ""
        if self.critical_path_s is not None:
            extra += f"; critical path {secs(self.critical_path_s)} (independent kernels run alongside)"
        t = Table(title=f"Roofline ({self.device_kind}, {self.dtype}): predicted {secs(self.predicted_s)}, "
                        f"{len(self.points)} kernels; peak {si(self.peak_flops_per_s, 'FLOP/s')}, "
                        f"{si(self.bandwidth_bytes_per_s, 'B/s')}, ridge {self.ridge_intensity:.1f} flop/B{extra}")
        for col in ("kernel", "flops", "bytes", "flop/B", "predicted", "share", "bound"):
            t.add_column(col, justify="left" if col in ("kernel", "bound") else "right", no_wrap=True)
        for p in sorted(self.points, key=lambda p: -p.time_s)[:top]:
            t.add_row(p.name + (" *" if p.note else ""), si(p.flops), si(p.bytes, "B"), f"{p.intensity:.1f}",
                      secs(p.time_s), f"{p.time_s / self.predicted_s:.1%}" if self.predicted_s else "-", p.bound)
        if self.notes:
            t.caption = footnotes(self.notes)
        return t

    @property
    def notes(self) -> dict[str, str]:
        """Kernels whose predicted time carries a caveat, and the caveat."""
        return {p.name: p.note for p in self.points if p.note}

    @property
    def total_flops(self) -> float:
        return sum(p.flops for p in self.points)

    @property
    def total_bytes(self) -> float:
        return sum(p.bytes for p in self.points)


def roofline(kernels: Iterable[tuple], peaks: DevicePeaks,
             dtype: str = "float32", launch_overhead_s: float = 0.0) -> Roofline:
    """Predict per-kernel and total time of ``(name, flops, bytes)`` kernels, or of
    ``(name, flops, bytes, compute_s[, launches[, network_s[, memory_s[, note]]]])`` kernels
    whose compute time (and launch count, interconnect time of a collective, memory time at
    the bandwidth a kernel of its size reaches, a caveat on its price) is known: each kernel
    takes the longest of its compute, memory and network times."""
    peak = peaks.peak_flops(dtype)
    bw = peaks.bandwidth_bytes_per_s
    if peak <= 0 or bw <= 0:
        raise ValueError(f"peaks must be positive, got {peak} FLOP/s and {bw} B/s")
    points = []
    for name, flops, nbytes, *extra in kernels:
        t_c = extra[0] if extra and extra[0] is not None else flops / peak
        launches = extra[1] if len(extra) > 1 else 1
        t_n = extra[2] if len(extra) > 2 else 0.0
        t_m = extra[3] if len(extra) > 3 else nbytes / bw
        note = extra[4] if len(extra) > 4 else ""
        bound = "collective" if t_n > max(t_c, t_m) else "compute" if t_c >= t_m else "memory"
        points.append(RooflinePoint(
            name=name, flops=float(flops), bytes=float(nbytes),
            time_s=max(t_c, t_m, t_n) + launches * launch_overhead_s,
            intensity=flops / nbytes if nbytes else float("inf"),
            bound=bound, note=note,
        ))
    return Roofline(
        points=tuple(points), peak_flops_per_s=peak, bandwidth_bytes_per_s=bw,
        ridge_intensity=peak / bw, predicted_s=sum(p.time_s for p in points),
        dtype=dtype, launch_overhead_s=launch_overhead_s, device_kind=peaks.device_kind,
    )


def achieved(flops: float, seconds: float) -> float:
    """Achieved FLOP/s."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    return flops / seconds


def mfu(model_flops: float, seconds: float, peaks: DevicePeaks, dtype: str = "float32") -> float:
    """Model FLOPs utilization: theoretical model FLOPs / time / peak."""
    return achieved(model_flops, seconds) / peaks.peak_flops(dtype)


def hfu(compiler_flops: float, seconds: float, peaks: DevicePeaks, dtype: str = "float32") -> float:
    """Hardware FLOPs utilization: FLOPs the compiled program executes
    (rematerialization included) / time / peak."""
    return achieved(compiler_flops, seconds) / peaks.peak_flops(dtype)


def plot_roofline(roofline: Roofline, path: str | None = None,
                  measured: Sequence[tuple[str, float, float]] | dict[str, float] | None = None,
                  label_top: int = 8) -> Any:
    """Log-log roofline plot; returns the matplotlib Figure, saves a PNG if ``path``.

    Kernels are drawn at (intensity, the FLOP/s the prediction assumes for them:
    flops / predicted time) -- on the roof, or below it when their kernel class
    runs slower than the peak -- with marker area proportional to their predicted
    time; the ``label_top`` slowest are named. ``measured`` optionally gives
    seconds per kernel name (a dict) or ``(name, flops, seconds)`` triples; those
    are drawn at their achieved FLOP/s. The pyplot backend is left as it is.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    peak, bw = roofline.peak_flops_per_s, roofline.bandwidth_bytes_per_s
    finite = [p.intensity for p in roofline.points if np.isfinite(p.intensity) and p.intensity > 0]
    lo = min([roofline.ridge_intensity / 100, *finite]) / 2
    hi = max([roofline.ridge_intensity * 100, *finite]) * 2
    xs = np.geomspace(lo, hi, 200)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.loglog(xs, np.minimum(peak, bw * xs), "k-", lw=2, label="roof")
    ax.axvline(roofline.ridge_intensity, color="grey", ls=":", lw=1,
               label=f"ridge {roofline.ridge_intensity:.1f} FLOP/B")
    if roofline.points:
        tmax = max(p.time_s for p in roofline.points) or 1.0
        named = {id(p) for p in sorted(roofline.points, key=lambda p: -p.time_s)[:label_top]}
        for p in roofline.points:
            x = p.intensity if np.isfinite(p.intensity) else hi
            busy = p.time_s - roofline.launch_overhead_s
            y = p.flops / busy if p.flops > 0 and busy > 0 else min(peak, bw * x)
            ax.scatter([x], [y], s=20 + 400 * p.time_s / tmax, alpha=0.6,
                       color="tab:red" if p.bound == "memory" else "tab:blue")
            if id(p) in named:
                ax.annotate(p.name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.scatter([], [], color="tab:blue", alpha=0.6, label="compute-bound kernel (predicted)")
    ax.scatter([], [], color="tab:red", alpha=0.6, label="memory-bound kernel (predicted)")
    if measured:
        by_name = {p.name: p for p in roofline.points}
        triples = ([(n, by_name[n].flops, s) for n, s in measured.items() if n in by_name]
                   if isinstance(measured, dict) else list(measured))
        for name, flops, seconds in triples:
            pt = by_name.get(name)
            if pt is None or seconds <= 0:
                continue
            x = pt.intensity if np.isfinite(pt.intensity) else hi
            ax.scatter([x], [flops / seconds], marker="x", color="k")
        ax.scatter([], [], marker="x", color="k", label="measured")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("FLOP/s")
    ax.set_title(f"Roofline {roofline.device_kind} ({roofline.dtype})")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
