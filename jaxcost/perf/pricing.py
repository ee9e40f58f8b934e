"""Each kernel of a compiled program priced on its own: the time the calibration says it takes.

A top-level op of the optimized module is one kernel. Its compute time is the time this device
takes for its convolutions and dots of their class, size and kind of kernel
(:meth:`jaxcost.perf.rates.Rates.seconds`: the fitted law's time of their features, else their
flops at the rate of the nearest calibration kernels), the rest's flops at the peak; its memory
time its bytes at the bandwidth an elementwise kernel of that size reaches::

    compute_s = sum(seconds(class_w, features_w, flops_w, impl_w))     over its Work items
    memory_s  = bytes / bandwidth(bytes)

both scaled by the device's in-program factor (:mod:`jaxcost.perf.programs`: kernels inside a
program run slower than alone, on cold caches). The roofline (:mod:`jaxcost.perf.roofline`)
takes the longer of the two, plus a fixed cost per launch.

A while loop is priced kernel by kernel (:func:`price_loop`): its body's kernels one after
another, each at its own roof, every trip -- from the calibration's loop trips where it has them
(inside a loop the kernels pay no call and read weights they left in the caches), else as timed
alone -- and carries :data:`LOOP_NOTE`, how far held-out loops were off.

A kernel that runs a chain of convolutions (one feeding the next) is priced as the longer of its
convs run alone and of reading their weights row by row (:func:`jaxcost.perf.kernels.streamed_weights`,
where a windowed conv takes another's output) at the rate the calibration's chain kernels read them
(:meth:`jaxcost.perf.rates.Rates.chain_bandwidth`)::

    compute_s = max(sum(seconds(...)), streamed_weights / chain_bandwidth)

and carries a note saying so (:data:`CHAIN_NOTE`): the library that runs the chain schedules it
in ways that law only outlines. (Attention's two dots in one kernel are calibrated as a class of
their own.) A kernel whose convolutions or dots lie
outside the range of the calibration kernels they are priced from, in any dimension or in flops,
carries a note naming them (:data:`RANGE_NOTE`): there the fitted law extrapolates.
"""

from __future__ import annotations

from typing import NamedTuple

from jaxcost.compiler.loops import trip_count
from jaxcost.compiler.ops import body_ops
from jaxcost.perf.kernels import LOOP, NO_KERNEL, chained_matmuls, class_work, streamed_weights
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
# attention aside: priced as its parts, or its weights read row by row if that is longer (price_op).
CHAIN_NOTE = ("{n} matmuls chained in one kernel, priced as the longer of each run alone and their weights read row "
              "by row at the calibration's chain rate: XLA:CPU's YNNPACK ran conv chains at 0.5-7x the time of "
              "the same convs apart (benchmarks/results/chain_fusions.md); so priced, held-out ResNet-18/34 at "
              "batch 1 came out 0.75-1.08x of their measured time, 0.47-0.82x priced as parts "
              "(benchmarks/results/predict_heldout_run15_alone.md, _run16_alone.md, _run17_alone.md, _run18_alone.md)")


# The caveat on a while loop priced from a calibration (price_loop): its body's kernels priced as
# loop trips where the calibration has such kernels (jaxcost.perf.calibrate.LOOP_CELLS), else as
# timed alone; on a 2-core VM the loop rows' batch-1 dots ran at 25 or 47 GB/s from one calibration
# to the next.
LOOP_NOTE = ("a loop of {n} trips, its body's kernels priced one after another as calibrated loop trips (else as "
             "timed alone): held-out recurrent networks on XLA:CPU were priced at 0.52-2.33x their measured time, "
             "median 1.03x, 55 % within ±25 % (benchmarks/results/rnn_loops.md)")


# The caveat on a kernel whose convolutions or dots lie outside the calibration kernels' range
# (jaxcost.perf.rates.Rates.outside): ``what`` lists each class with the dimensions outside.
RANGE_NOTE = ("outside the calibrated range ({what}): the rate law extrapolates (held-out models' kernels outside "
              "it were priced at 0.78-1.00x of their measured time in three runs, those inside at 0.89-1.07x: "
              "benchmarks/results/predict_heldout_run7.md)")


def price_op(op, rates: Rates, factor: float = 1.0, network_s: float = 0.0, in_loop: bool = False) -> KernelCost:
    """``op`` (a :class:`jaxcost.compiler.ops.Op`) priced as in the module docstring; a while
    loop by :func:`price_loop`. ``in_loop``: ``op`` runs in a loop's body, trip after trip: its
    convolutions, dots and bytes are priced from the calibration's loop kernels
    (:data:`jaxcost.perf.kernels.LOOP`) where it has some of their kind and they lie in their
    range, else as timed alone."""
    if op.opcode == "while" and (body := body_ops(op)):
        return price_loop(op, body, rates, factor, network_s)
    work = class_work(op)
    priced = [_in_loop(rates, w) if in_loop else (w.impl, w.features) for w in work]  # (kind, features)
    # a kernel priced from loop trips pays no launch of its own: the trips were timed with theirs
    trips = in_loop and rates.has_kind("memory", LOOP) and all(k.endswith(LOOP) for (k, _), w in zip(priced, work)
                                                                if w.cls != "other")
    compute_s = sum(rates.seconds(w.cls, f, w.flops, k) for w, (k, f) in zip(work, priced))
    nbytes = max(op.bytes_accessed, 0.0)
    memory_s = nbytes / rates.bandwidth(nbytes, LOOP if in_loop else "")
    attention = any(w.cls == "attention" for w in work)  # calibrated as a class of its own
    chained = chained_matmuls(op.instruction) if op.instruction is not None and not attention else 0
    if chained and (bandwidth := rates.chain_bandwidth()):  # weights read row by row, if slower
        compute_s = max(compute_s, streamed_weights(op.instruction) / bandwidth)
    outside: dict[str, set[str]] = {}
    for w, (k, f) in zip(work, priced):
        if dims := rates.outside(w.cls, f, k):
            outside.setdefault(w.cls, set()).update(dims)
    what = "; ".join(f"{cls} {', '.join(d for d in FEATURES if d in dims)}" for cls, dims in sorted(outside.items()))
    notes = [CHAIN_NOTE.format(n=chained + 1)] * bool(chained) + [RANGE_NOTE.format(what=what)] * bool(outside)
    return KernelCost(op.name, sum(w.flops for w in work), nbytes, factor * compute_s, int(not trips), network_s,
                      factor * memory_s, "; ".join(notes))


def price_loop(op, body: list, rates: Rates, factor: float = 1.0, network_s: float = 0.0) -> KernelCost:
    """A while loop ``op``: its ``body``'s kernels (:func:`jaxcost.compiler.ops.body_ops`: XLA
    prices the body once) priced one after another as in a loop (:func:`price_op` ``in_loop``),
    each at its own roof, times the trips (XLA's ``known_trip_count``; unknown: once, as XLA
    counts it), each launched every trip (those priced from loop trips with their launch in
    their price: ``launches`` counts the others)::

        time = n * sum(max(compute_k, memory_k))     over the body's kernels k

    The loop is compute- or memory-bound as the kernels that take most of that time are."""
    n = trip_count(op.instruction) or 1
    kernels = [price_op(b, rates, factor, in_loop=True) for b in body if b.opcode not in NO_KERNEL]
    compute = sum(k.compute_s for k in kernels if k.compute_s >= k.memory_s)
    memory = sum(k.memory_s for k in kernels if k.compute_s < k.memory_s)
    total = n * (compute + memory)
    compute_s, memory_s = (total, n * memory) if compute >= memory else (n * compute, total)
    notes = dict.fromkeys(k.note for k in kernels if k.note)
    if n > 1 and rates.table:
        notes[LOOP_NOTE.format(n=n)] = None
    return KernelCost(op.name, n * sum(w.flops for w in class_work(op)), n * max(op.bytes_accessed, 0.0), compute_s,
                      n * sum(k.launches for k in kernels), network_s, memory_s, "; ".join(notes))


def _in_loop(rates: Rates, w) -> tuple[str, tuple | None]:
    """The kind and features a :class:`jaxcost.perf.kernels.Work` item in a loop's body is priced
    as: its kernel's kind run as loop trips where the calibration has such kernels and ``w`` lies
    in their range, else its own. A dot with the weights on the left (``(N, K) @ (K, batch)``:
    more rows than columns, as a vmapped cell runs it) is looked up as the same product
    transposed, the loop rows' way round (an Equinox GRU cell's at batch 8: 76 us measured, 231 us
    priced as timed alone, 105 us so)."""
    f = w.features
    if w.cls == "dot" and f is not None and f[0] > f[2]:
        f = (f[2], f[1], f[0], f[3], f[4], f[5] * f[2] // f[0])
    kind = w.impl + LOOP
    return (kind, f) if rates.has_kind(w.cls, kind) and not rates.outside(w.cls, f, kind) else (w.impl, w.features)


def paging_s(rates: Rates, memory) -> float:
    """Seconds to page in the buffers a program allocates afresh on every call, its
    temporaries and outputs (``memory``: a :class:`jaxcost.compiler.totals.MemoryStats`), at
    the cost the calibration measured per allocation size."""
    return sum(rates.first_touch(b or 0) for b in (memory.temp_bytes, memory.output_bytes))
