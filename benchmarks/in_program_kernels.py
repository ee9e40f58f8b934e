"""What a kernel timed on its own pays that the same kernel inside a program does not.

    python benchmarks/in_program_kernels.py [--trips 16] [--rounds 2]

The calibration (``jaxcost.perf.calibrate``) times each kernel alone: one call of a program
holding that kernel, its result written into a donated buffer. Inside a model the kernel is one
of hundreds run back to back. This script times the same kernels both ways: alone, and as the
body of a ``fori_loop`` of ``--trips`` trips (one kernel per trip, its result fed to the next
trip in the loop's buffer), per trip. Kernels: the calibration's elementwise kernel
(``max(x * a + b, 0)``) at every size of ``MEMORY_SIZES``, and dense 3x3 and 1x1 convolutions of
equal input and output channels (so that a trip can feed the next) from 25 us to a few ms.
Both ways are timed in the same passes (``median_over_passes``, as the calibration).

``per call`` is alone less one trip: the program's dispatch and, for kernels XLA:CPU splits over
threads (an elementwise kernel whose HLO carries ``outer_dimension_partitions``, YNNPACK's
convolutions), waking those threads. A loop keeps its carry in one buffer, in place and in the
caches, so large elementwise trips also run faster than a kernel writing a fresh buffer: there
the difference is not a per-call cost. (A chain of kernels separated by
``lax.optimization_barrier`` does not measure this: XLA:CPU drops the barriers and fuses the
elementwise chain into one kernel.) Writes benchmarks/results/in_program_kernels.json and .md.
"""

from __future__ import annotations

import argparse

import jax
from _results import machine, save

from jaxcost.perf.calibrate import (
    BUDGET_S,
    LONG_S,
    MEMORY_SIZES,
    REPEATS,
    _elementwise,
    call_overhead,
    constant,
    in_place,
)
from jaxcost.perf.stats import median_over_passes

# (batch, map side, channels, window side) of convs whose output can feed the next trip
CONVS = [(1, 7, 128, 1), (1, 14, 64, 1), (1, 14, 128, 1), (1, 7, 256, 1), (1, 28, 64, 1), (1, 28, 128, 1),
         (1, 14, 256, 1), (1, 56, 64, 1), (8, 7, 128, 1), (1, 14, 64, 3), (1, 28, 64, 3), (1, 7, 256, 3),
         (1, 28, 128, 3), (1, 14, 256, 3), (1, 56, 64, 3), (1, 7, 512, 3), (8, 14, 256, 1)]


def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def kernels(device) -> list[tuple[str, dict, object, object]]:
    """``(kind, description, alone run, loop run)`` of every kernel, compiled on ``device``."""
    out = []
    w2 = constant((2,), 0.01, device)
    for n in MEMORY_SIZES:
        x = constant((n,), 0.5, device)
        run, compiled = in_place(_elementwise, x, w2)
        split = "outer_dimension_partitions" in compiled.as_text()
        out.append(("elementwise", {"bytes": 8 * n, "threads": split}, run, (_elementwise, x, w2)))
    for b, hw, c, k in CONVS:
        x, w = constant((b, hw, hw, c), 0.5, device), constant((k, k, c, c), 0.01, device)
        out.append(("conv", {"batch": b, "side": hw, "channels": c, "window": k,
                             "flops": 2 * b * hw * hw * k * k * c * c}, in_place(_conv, x, w)[0], (_conv, x, w)))
    return out


def looped(fn, x, w, trips: int):
    """``fn`` run ``trips`` times in a ``fori_loop``, each trip on the last one's result."""
    run, compiled = in_place(lambda x, w: jax.lax.fori_loop(0, trips, lambda _, y: fn(y, w), x), x, w)
    if "while" not in compiled.as_text():
        raise RuntimeError("XLA unrolled the loop: the trips are no longer separate kernels")
    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trips", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    device = jax.devices()[0]
    ks = kernels(device)
    loops = [looped(*spec, args.trips) for *_, spec in ks]
    times = median_over_passes([k[2] for k in ks] + loops, 2, REPEATS, BUDGET_S, LONG_S, args.rounds)
    n = len(ks)
    rows = []
    for (kind, desc, *_), alone, loop in zip(ks, times[:n], times[n:]):
        trip = loop / args.trips
        rows.append({"kind": kind, **desc, "alone_s": alone, "trip_s": trip, "per_call_s": alone - trip})
    overhead = call_overhead(device)
    small = [r for r in rows if r["kind"] == "elementwise" and r["bytes"] <= 2048]
    split = [r for r in rows if r["kind"] == "elementwise" and r["threads"]]
    lines = [f"# A kernel alone and inside a program ({machine()})", "",
             (f"Each kernel timed alone (one call, in place, as the calibration times it) and as one trip of a "
             f"{args.trips}-trip `fori_loop` (per trip), in the same passes ({args.rounds} round(s) of two). "
             f"`per call` = alone - one trip. The calibration already takes off the call of a program that adds two "
             f"scalars: {1e6 * overhead:.1f} us."), ""]
    if small and split:
        lines += [(f"Elementwise kernels of up to 2 KB: {1e6 * min(r['per_call_s'] for r in small):.1f}-"
                  f"{1e6 * max(r['per_call_s'] for r in small):.1f} us a call. The smallest one XLA splits over threads "
                  f"({split[0]['bytes']} B): {1e6 * split[0]['alone_s']:.1f} us alone, "
                  f"{1e6 * split[0]['trip_s']:.1f} us a trip."), ""]
    lines += ["| kernel | threads | alone | one trip | per call | trip / alone |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        name = (f"elementwise {r['bytes']} B" if r["kind"] == "elementwise" else
                f"conv b{r['batch']} {r['side']}x{r['side']}x{r['channels']} {r['window']}x{r['window']}")
        threads = ("yes" if r["threads"] else "no") if r["kind"] == "elementwise" else "YNNPACK"
        lines.append(f"| {name} | {threads} | {1e6 * r['alone_s']:.1f} us | {1e6 * r['trip_s']:.1f} us | "
                     f"{1e6 * r['per_call_s']:.1f} us | {r['trip_s'] / r['alone_s']:.2f} |")
    save("in_program_kernels", {"machine": machine(), "trips": args.trips, "rounds": args.rounds,
                                "call_overhead_s": overhead, "rows": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
