"""The roofline of a compiled program: each top-level kernel priced at the rate this device
reaches on its kind and size of work, summed into a predicted latency."""

from __future__ import annotations

import dataclasses
import graphlib

from jaxcost.hardware import parse_target
from jaxcost.perf.peaks import DevicePeaks, chip_peaks, get_peaks
from jaxcost.perf.pricing import KernelCost, paging_s, price_op
from jaxcost.perf.roofline import Roofline, roofline

# Per-kernel dispatch cost used for GPU predictions (typical CUDA launch latency).
GPU_LAUNCH_OVERHEAD_S = 4e-6


def _dtype_of(analysis) -> str:
    shapes = " ".join(analysis.input_shapes)
    for dt in ("bfloat16", "float16", "float64"):
        if dt in shapes:
            return dt
    return "float32"


FIRST_TOUCH = "(paging in the program's fresh buffers)"


def program_roofline(analysis, peaks: DevicePeaks | None = None, dtype: str | None = None) -> Roofline:
    """Roofline of every top-level kernel of the optimized module: predicted time
    = sum of max(compute, bytes / bandwidth) + a fixed cost per kernel.

    Each kernel is priced by :func:`jaxcost.perf.pricing.price_op`: compute prices each
    convolution, dot and pool at the rate this device reaches on its class, size and kind of
    kernel (``peaks.rates()``: the rate model fitted to the calibration kernels,
    :mod:`jaxcost.perf.rates`), and the rest at the dtype's peak -- or flops / peak when the
    peaks carry no calibration (published peaks, other dtypes). Bytes move at the bandwidth
    an elementwise kernel of that size reaches. Both are scaled by ``peaks.program_factor``
    (float32, measured peaks: how much slower kernels run inside a program than alone,
    :mod:`jaxcost.perf.programs`; 1 elsewhere). The fixed cost is the measured
    ``peaks.kernel_overhead_s``, else a typical launch latency on GPU, else 0. One more row,
    :data:`FIRST_TOUCH`, charges the paging-in of the buffers the program allocates afresh
    on every call (its temporaries and outputs), where the calibration measured it.
    A while loop counts its body trip-count times (XLA's ``known_trip_count``), each
    kernel of the body launched each time. The sum assumes kernels run one after another;
    ``critical_path_s`` is the longest chain of dependent kernels (:func:`critical_path`), the
    time if independent ones ran alongside each other -- XLA:CPU's runtime overlaps some.
    Transcendentals count as flops here. A custom call XLA could not price counts zero flops
    (warned in the analysis)."""
    if not analysis.compiled:
        raise ValueError("a roofline needs the compiled module: analyze(..., compile=True)")
    if peaks is None and analysis.target:  # compiled for a TPU slice: its chip's published peaks
        chip = parse_target(analysis.target).chip
        peaks = chip_peaks(chip, share=chip.devices_per_chip)
    peaks = peaks or get_peaks(analysis.backend, measure=analysis.backend == "cpu")
    dtype = dtype or _dtype_of(analysis)
    if dtype not in peaks.flops_per_s:
        dtype = next(iter(peaks.flops_per_s))
    rates = peaks.rates(dtype)
    factor = peaks.program_factor if dtype == "float32" else 1.0  # measured where the kernels were
    # collectives of a partitioned program: their time over the interconnect (TPU: the chip's ICI)
    network = {c.name: c.seconds * c.count for c in analysis.collectives()
               if c.seconds is not None} if analysis.partitioning.partitioned else {}
    kernels = [price_op(op, rates, factor, network.get(op.name, 0.0)) for op in analysis.ops]
    paging = paging_s(rates, analysis.memory)
    if paging > 0:
        kernels.append(KernelCost(FIRST_TOUCH, 0.0, 0.0, 0.0, 0, 0.0, paging))
    overhead = peaks.kernel_overhead_s
    if overhead is None:
        overhead = GPU_LAUNCH_OVERHEAD_S if analysis.backend == "gpu" else 0.0
    roof = roofline(kernels, peaks, dtype=dtype, launch_overhead_s=overhead)
    times = {p.name: p.time_s for p in roof.points}
    path = None if analysis.module is None else (
        critical_path(analysis.module.module.entry, times) + times.get(FIRST_TOUCH, 0.0))
    return dataclasses.replace(roof, program_factor=factor, critical_path_s=path)


def critical_path(entry, seconds: dict[str, float]) -> float:
    """The longest chain of data dependencies through the computation ``entry`` (a parsed HLO
    computation), each instruction taking ``seconds[name]`` (0 when absent: parameters,
    tuples, bitcasts): the time of the program if every kernel started as soon as its operands
    were ready, however many ran at once. A loop is one step of the chain (its whole price)."""
    operands = {i.name: i.operand_names for i in entry.instructions}
    done: dict[str, float] = {}
    for name in graphlib.TopologicalSorter(operands).static_order():
        ready = max((done[o] for o in operands.get(name, ())), default=0.0)
        done[name] = ready + seconds.get(name, 0.0)
    return max(done.values(), default=0.0)
