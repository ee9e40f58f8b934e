"""How much a latency prediction moves from one calibration to the next, by timing rounds.

    python benchmarks/calibration_stability.py [--calibrations 3] [--rounds 1,3]

For each number of rounds, ``--calibrations`` calibrations are measured one after the other
(``jaxcost.perf.measure_peaks(rounds=...)``, the user's cache untouched), and the held-out
models of ``benchmarks/predict_heldout.py`` (zoo and Keras applications, batch 1 and 8) are
predicted from each (``jaxcost.program_roofline``: nothing is run, no model is measured). Two
calibrations of the same code on the same machine should predict the same; what they do not
is noise the held-out figures carry on top of the predictor's own error. Reported per number of
rounds: the calibration's wall time and in-program factor, and over every pair of calibrations
the |log| ratio of their predictions (median, 90th percentile and maximum over the models).
Writes benchmarks/results/calibration_stability.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import time

import jax
import numpy as np
from _results import machine, save
from predict_heldout import KERAS, ZOO, program
from rich.progress import track

import jaxcost
from jaxcost.perf.peaks import measure_peaks
from jaxcost.perf.predict import program_roofline


def analyses() -> tuple[list[str], list]:
    jobs = [("zoo", n, b) for n in ZOO for b in (1, 8)] + [("keras", n, b) for n in KERAS for b in (1, 8)]
    out = []
    for source, name, batch in track(jobs, description="compiling the held-out models"):
        fn, args = program(source, name, batch)
        out.append(jaxcost.analyze(fn, *args, theory=False))
    return [f"{name} b{batch}" for _, name, batch in jobs], out


def pair_spread(predictions: np.ndarray) -> dict[str, float]:
    """Over every pair of calibrations (rows), the |log ratio| of their predictions of each model
    (columns): median, 90th percentile and maximum, as a ratio minus one."""
    d = np.concatenate([np.abs(np.log(a / b)) for a, b in itertools.combinations(predictions, 2)])
    return {"median": float(np.expm1(np.median(d))), "p90": float(np.expm1(np.quantile(d, 0.9))),
            "max": float(np.expm1(d.max()))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibrations", type=int, default=3)
    p.add_argument("--rounds", default="1,3")
    args = p.parse_args()
    labels, programs = analyses()
    results = []
    for rounds in (int(r) for r in args.rounds.split(",")):
        seconds, factors, predictions = [], [], []
        for _ in range(args.calibrations):
            t = time.perf_counter()
            peaks = measure_peaks(jax.default_backend(), rounds=rounds)
            seconds.append(time.perf_counter() - t)
            factors.append(peaks.program_factor)
            predictions.append([program_roofline(a, peaks).predicted_s for a in programs])
        predictions = np.array(predictions)
        results.append({"rounds": rounds, "calibration_s": seconds, "program_factors": factors,
                        "spread": pair_spread(predictions), "predictions_s": predictions.tolist()})
    lines = [f"# Prediction spread between calibrations ({machine()})", "",
             (f"{args.calibrations} calibrations per row, one after the other; {len(labels)} held-out models "
              "(benchmarks/predict_heldout.py) predicted from each, none run. Spread: |predicted by one "
              "calibration / predicted by another - 1| over every pair of calibrations and every model."), "",
             "| rounds | calibration time | in-program factors | spread: median | 90th percentile | max |",
             "|---:|---|---|---:|---:|---:|"]
    for r in results:
        s = r["spread"]
        lines.append(f"| {r['rounds']} | {', '.join(f'{t:.0f} s' for t in r['calibration_s'])} | "
                     f"{', '.join(f'{f:.3f}' for f in r['program_factors'])} | {s['median']:.1%} | {s['p90']:.1%} | "
                     f"{s['max']:.1%} |")
    save("calibration_stability", {"machine": machine(), "models": labels, "results": results}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
