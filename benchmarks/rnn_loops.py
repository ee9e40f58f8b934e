"""Recurrent networks on CPU: a while loop's predicted time against its measured time.

    python benchmarks/rnn_loops.py [--budget 2.0]

Keras 3 LSTM and GRU networks (JAX backend: each recurrent layer is a ``lax.scan``, a while loop
in the optimized HLO; random weights, two stacked layers and a dense head) of four sizes, and the
zoo's word-level LSTM, at batch 1 and 8: the median of timed runs (``jaxcost.benchmark``) against
``jaxcost.program_roofline`` with the cached calibration (``jaxcost peaks``). None of these models
was used to calibrate or to choose the rate model. The roofline prices a loop as its body's
kernels, each at the time the calibration measured for it alone, times the trip count; inside
the loop those kernels run back to back on the same weights every trip. Writes
benchmarks/results/rnn_loops.json and .md.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
from _results import errors, machine, save
from predict_heldout import keras_stateless, program
from rich.progress import track

import jaxcost
from jaxcost.perf import get_peaks
from jaxcost.perf.predict import program_roofline

# (layer, units, time steps, input features)
KERAS_RNNS = [("LSTM", 650, 35, 650), ("GRU", 512, 50, 256), ("LSTM", 256, 100, 128), ("GRU", 1024, 20, 512)]


def keras_rnn(layer: str, units: int, steps: int, features: int, batch: int):
    """``(forward, abstract args)`` of a two-layer Keras ``layer`` network and a dense head."""
    import keras

    cell = getattr(keras.layers, layer)
    return keras_stateless(lambda: keras.Sequential([keras.Input((steps, features)), cell(units, return_sequences=True),
                                                     cell(units), keras.layers.Dense(10)]),
                           (batch, steps, features), f"{layer}{units}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timed runs per model")
    args = p.parse_args()
    peaks = get_peaks(jax.default_backend(), measure=True)
    jobs = [(f"keras {layer} {units} x {steps} steps", lambda b, c=(layer, units, steps, feat): keras_rnn(*c, b))
            for layer, units, steps, feat in KERAS_RNNS]
    jobs.append(("zoo lstm", lambda b: program("zoo", "lstm", b)))
    rows = []
    for (name, make), batch in track([(j, b) for j in jobs for b in (1, 8)], description="recurrent networks"):
        fn, fargs = make(batch)
        a = jaxcost.analyze(fn, *fargs, theory=False)
        roof = program_roofline(a, peaks)
        loops = [pt for pt in roof.points if pt.name in {op.name for op in a.ops if op.opcode == "while"}]
        measured = jaxcost.benchmark(fn, *fargs, time_budget_s=args.budget).stats.median
        rows.append({"model": name, "batch": batch, "measured_s": measured, "predicted_s": roof.predicted_s,
                     "loops": len(loops), "loops_predicted_s": sum(pt.time_s for pt in loops),
                     "ratio": roof.predicted_s / measured})
    summary = errors([abs(r["ratio"] - 1) for r in rows])
    ratios = [r["ratio"] for r in rows]
    lines = [f"# Recurrent networks: while loops predicted vs measured ({machine()})", "",
             (f"Calibration: {peaks.source}, version {peaks.calibration}. Predicted / measured median run over "
              f"{len(rows)} model-batches: {min(ratios):.2f}-{max(ratios):.2f}x, median {statistics.median(ratios):.2f}x; "
              f"{summary['within_25']:.0%} within ±25 %. A loop is priced as its body's kernels timed alone, "
              "times its trips: inside the loop they pay no per-call cost and read the same weights every trip "
              "(`benchmarks/results/in_program_kernels.md`)."), "",
             "| model | batch | measured | predicted | of it in loops | pred/meas |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['batch']} | {1e3 * r['measured_s']:.2f} ms | {1e3 * r['predicted_s']:.2f} ms | "
              f"{r['loops_predicted_s'] / r['predicted_s']:.0%} | {r['ratio']:.2f} |" for r in rows]
    save("rnn_loops", {"machine": machine(), "calibration": peaks.calibration, "summary": summary, "rows": rows},
         "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
