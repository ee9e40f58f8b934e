"""The roofline of a compiled program: each top-level kernel priced at the rate this device
reaches on its kind and size of work, summed into a predicted latency."""

from __future__ import annotations

from jaxcost.compiler.loops import trip_count
from jaxcost.hardware import parse_target
from jaxcost.perf.kernels import NO_KERNEL, class_work
from jaxcost.perf.peaks import DevicePeaks, chip_peaks, get_peaks
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

    Compute prices each convolution and dot at the rate this device reaches on its class,
    size and kind of kernel (``peaks.rates()``: the rate model fitted to the calibration
    kernels, :mod:`jaxcost.perf.rates`), and the rest at the dtype's peak -- or flops / peak
    when the peaks carry no calibration (published peaks, other dtypes). Bytes move at the
    bandwidth an elementwise kernel of that size reaches. The fixed cost is the measured
    ``peaks.kernel_overhead_s``, else a typical launch latency on GPU, else 0. One more row,
    :data:`FIRST_TOUCH`, charges the paging-in of the buffers the program allocates afresh
    on every call (its temporaries and outputs), where the calibration measured it.
    A while loop counts its body trip-count times (XLA's ``known_trip_count``), each
    kernel of the body launched each time. Transcendentals count as flops here. A
    custom call XLA could not price counts zero flops (warned in the analysis)."""
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
    kernels = []
    # collectives of a partitioned program: their time over the interconnect (TPU: the chip's ICI)
    network = {c.name: c.seconds * c.count for c in analysis.collectives()
               if c.seconds is not None} if analysis.partitioning.partitioned else {}
    for op in analysis.ops:
        work = class_work(op)
        compute_s = sum(w.flops / rates.flops_per_s(w.cls, w.features, w.impl) for w in work)
        # XLA prices a while loop's body once: it runs trip-count times, each kernel of it
        n, launches = 1, 1
        if op.opcode == "while" and op.instruction is not None:
            n = trip_count(op.instruction)
            n = 1 if n is None else n  # unknown: once, as XLA counts it
            body = op.instruction.called_by("body")
            launches = n * max(1, sum(i.opcode not in NO_KERNEL for i in body.instructions) if body else 1)
        nbytes = max(op.bytes_accessed, 0.0)
        memory_s = nbytes / rates.bandwidth(nbytes)
        kernels.append((op.name, n * sum(w.flops for w in work), n * nbytes, n * compute_s,
                        launches, network.get(op.name, 0.0), n * memory_s))
    mem = analysis.memory
    paging = sum(rates.first_touch(b or 0) for b in (mem.temp_bytes, mem.output_bytes))
    if paging > 0:
        kernels.append((FIRST_TOUCH, 0.0, 0.0, 0.0, 0, 0.0, paging))
    overhead = peaks.kernel_overhead_s
    if overhead is None:
        overhead = GPU_LAUNCH_OVERHEAD_S if analysis.backend == "gpu" else 0.0
    return roofline(kernels, peaks, dtype=dtype, launch_overhead_s=overhead)
