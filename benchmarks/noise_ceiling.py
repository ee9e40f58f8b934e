"""How well could any predictor do on this machine? Each held-out run's noise ceiling beside its figures.

    python benchmarks/noise_ceiling.py [--out noise_ceiling]

Reads every ``benchmarks/results/predict_heldout*.json`` whose models were timed in two or more
rounds and compares, per run: the predictor's fractions within ±10 % and ±25 % of the measured
time (raw; scaled by the drift re-check made before each round where the run has one; scaled by
the run's mean drift, a diagnostic) with the noise ceiling -- each model's round against the
geometric mean of its other rounds of the same run
(:func:`predict_heldout.noise_ceiling`): what a predictor reaches that had timed the model
itself 10-30 minutes earlier. No model is run; the measurements are the runs'.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

from _results import RESULTS, machine, save
from predict_heldout import noise_ceiling, stats


def summarize(path: str) -> dict | None:
    with open(path) as f:
        run = json.load(f)
    passes, rows = run.get("passes", 2), [r for r in run["rows"] if "ratio" in r]
    rounds = max((len(r.get("pass_medians_s", [])) // passes for r in rows), default=0)
    if rounds < 2:
        return None
    out = {"run": os.path.basename(path)[:-5], "rows": len(rows), "rounds": rounds, "raw": stats(rows),
           "ceiling": noise_ceiling(rows, passes), "drift": run.get("drift")}
    for key, label in (("ratio_rechecked", "rechecked"), ("ratio_drift_adjusted", "drift_scaled")):
        if any(key in r for r in rows):
            out[label] = stats(rows, key)
    return out


def markdown(runs: list[dict]) -> str:
    pct = lambda s, k: f"{s[k]:.0%}" if s and s.get(k) is not None else "-"
    lines = [f"# The noise ceiling of the held-out runs ({machine()})", "", __doc__.split("\n\n")[2].replace("\n", " "),
             "", ("| run | model-batches | rounds | drift | ±10 %: raw | re-checked | drift-scaled | ceiling | "
             "±25 %: raw | re-checked | ceiling | median error: raw | ceiling |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        drift = f"{r['drift']:.2f}" if r.get("drift") else "-"
        lines.append(
            f"| {r['run']} | {r['rows']} | {r['rounds']} | {drift} | {pct(r['raw'], 'within_10')} | "
            f"{pct(r.get('rechecked'), 'within_10')} | {pct(r.get('drift_scaled'), 'within_10')} | "
            f"{pct(r['ceiling'], 'within_10')} | {pct(r['raw'], 'within_25')} | {pct(r.get('rechecked'), 'within_25')} | "
            f"{pct(r['ceiling'], 'within_25')} | {r['raw']['median_abs_error']:.1%} | "
            f"{r['ceiling']['median_abs_error']:.1%} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="noise_ceiling")
    args = p.parse_args()
    number = lambda path: int("".join(c for c in os.path.basename(path) if c.isdigit()) or 0)  # run10 after run9
    paths = sorted(glob.glob(os.path.join(RESULTS, "predict_heldout*.json")), key=lambda p: (number(p), p))
    runs = [s for s in map(summarize, paths) if s is not None and "repriced" not in s["run"]]
    save(args.out, {"machine": machine(), "runs": runs}, markdown(runs))


if __name__ == "__main__":
    main()
