"""Each kernel of a compiled program priced on its own: the time the calibration says it takes.

A top-level op of the optimized module is one kernel (a while loop: its body's kernels, each
trip). Its compute time is the time this device takes for its convolutions and dots of their
class, size and kind of kernel (:meth:`jaxcost.perf.rates.Rates.seconds`: the fitted law's time
of their features, else their flops at the rate of the nearest calibration kernels), the rest's
flops at the peak; its memory time its bytes at the bandwidth an elementwise kernel of that
size reaches::

    compute_s = n * sum(seconds(class_w, features_w, flops_w, impl_w))     over its Work items
    memory_s  = n * bytes / bandwidth(bytes)                               n = loop trips (else 1)

both scaled by the device's in-program factor (:mod:`jaxcost.perf.programs`: kernels inside a
program run slower than alone, on cold caches). The roofline (:mod:`jaxcost.perf.roofline`)
takes the longer of the two, plus a fixed cost per launch.

A kernel that runs a chain of convolutions (one feeding the next) is priced the same way, as if
each ran alone, and carries a note saying so (:data:`CHAIN_NOTE`): the library that runs the
chain schedules it in ways the calibration's single kernels do not show. (Attention's two dots
in one kernel are calibrated as a class of their own.) A kernel whose convolutions or dots lie
outside the range of the calibration kernels they are priced from, in any dimension or in flops,
carries a note naming them (:data:`RANGE_NOTE`): there the fitted law extrapolates. A while
loop priced from a calibration says that its price is its body's kernels timed alone, times the
trips (:data:`LOOP_NOTE`): inside the loop they run back to back on hot weights.
"""

from __future__ import annotations

from typing import NamedTuple

from jaxcost.compiler.loops import trip_count
from jaxcost.perf.kernels import NO_KERNEL, chained_matmuls, class_work
from jaxcost.perf.rates import FEATURES, Rates


class KernelCost(NamedTuple):
    """One op priced: the tuple :func:`jaxcost.perf.roofline.roofline` takes."""

    name: str
    flops: float
    bytes: float
    compute_s: float
    launches: int
    network_s: float
    memory_s: float
    note: str = ""  # why this price may be off (:data:`CHAIN_NOTE`, :data:`RANGE_NOTE`)


# The caveat on a kernel that runs a chain of convolutions or dots (kernels.chained_matmuls),
# attention aside.
CHAIN_NOTE = ("{n} matmuls chained in one kernel, priced as if each ran alone: XLA:CPU's YNNPACK ran conv chains "
              "at 0.6-6x the time of the same convs apart, slowest on maps up to 14x14 with 256+ channels "
              "(benchmarks/results/chain_fusions.md)")


# The caveat on a while loop priced from a calibration (kernels timed alone): inside the loop its
# body's kernels run back to back on the same weights every trip, without the per-call cost a kernel
# alone pays (benchmarks/results/in_program_kernels.md).
LOOP_NOTE = ("a loop of {n} trips priced as its body's kernels timed alone, times the trips: held-out recurrent "
             "networks on XLA:CPU were priced at 0.97-3.75x their measured time, most over at batch 1 "
             "(benchmarks/results/rnn_loops.md)")


# The caveat on a kernel whose convolutions or dots lie outside the calibration kernels' range
# (jaxcost.perf.rates.Rates.outside): ``what`` lists each class with the dimensions outside.
RANGE_NOTE = ("outside the calibrated range ({what}): the rate law extrapolates (held-out models' kernels outside "
              "it were priced at 0.78-1.00x of their measured time in three runs, those inside at 0.89-1.07x: "
              "benchmarks/results/predict_heldout_run7.md)")


def price_op(op, rates: Rates, factor: float = 1.0, network_s: float = 0.0) -> KernelCost:
    """``op`` (a :class:`jaxcost.compiler.ops.Op`) priced as in the module docstring. XLA
    prices a while loop's body once: it runs trip-count times (XLA's ``known_trip_count``;
    unknown: once, as XLA counts it), each kernel of the body launched each time."""
    work = class_work(op)
    compute_s = sum(rates.seconds(w.cls, w.features, w.flops, w.impl) for w in work)
    n, launches = 1, 1
    if op.opcode == "while" and op.instruction is not None:
        n = trip_count(op.instruction)
        n = 1 if n is None else n
        body = op.instruction.called_by("body")
        launches = n * max(1, sum(i.opcode not in NO_KERNEL for i in body.instructions) if body else 1)
    nbytes = max(op.bytes_accessed, 0.0)
    memory_s = nbytes / rates.bandwidth(nbytes)
    attention = any(w.cls == "attention" for w in work)  # calibrated as a class of its own
    chained = chained_matmuls(op.instruction) if op.instruction is not None and not attention else 0
    outside: dict[str, set[str]] = {}
    for w in work:
        if dims := rates.outside(w.cls, w.features, w.impl):
            outside.setdefault(w.cls, set()).update(dims)
    what = "; ".join(f"{cls} {', '.join(d for d in FEATURES if d in dims)}" for cls, dims in sorted(outside.items()))
    notes = ([CHAIN_NOTE.format(n=chained + 1)] * bool(chained) + [RANGE_NOTE.format(what=what)] * bool(outside)
             + [LOOP_NOTE.format(n=n)] * (n > 1 and bool(rates.table)))
    return KernelCost(op.name, n * sum(w.flops for w in work), n * nbytes, factor * n * compute_s, launches,
                      network_s, factor * n * memory_s, "; ".join(notes))


def paging_s(rates: Rates, memory) -> float:
    """Seconds to page in the buffers a program allocates afresh on every call, its
    temporaries and outputs (``memory``: a :class:`jaxcost.compiler.totals.MemoryStats`), at
    the cost the calibration measured per allocation size."""
    return sum(rates.first_touch(b or 0) for b in (memory.temp_bytes, memory.output_bytes))
