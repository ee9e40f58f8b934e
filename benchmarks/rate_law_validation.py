"""The rate model on synthetic kernels it was not fitted to: how well it carries, kernel by kernel.

    python benchmarks/rate_law_validation.py [--within 12] [--beyond 6] [--seed 0] [--rounds 1]

Leave-one-out on the calibration kernels (``jaxcost peaks``) tells how well the rate model
(``jaxcost.perf.rates``) predicts one calibration kernel from the others; but those kernels are
spread evenly over their grids (``spread_subset``), so a left-out one always has neighbours.
Here, entries of the same grids that the calibration did not pick, drawn at random (``--seed``):
``--within`` per class inside the flops the calibration covers (``MIN_FLOPS`` up to the class's
``LARGE_FLOPS`` or ``MAX_FLOPS``), ``--beyond`` above that (up to 3x). They are timed in the same
passes as a fresh calibration (``measure_kernel_table``'s ``alongside`` callables: the machine's
drift hits both alike, the user's cache is not touched) and priced by the rate model fitted to
that calibration (``Rates.seconds``), which never sees them. Reported per class and range: the
kernels, the median |predicted / measured - 1|, the fractions within ±10 % and ±25 %, and the
geometric mean of predicted / measured (a bias), beside the class's leave-one-out error.
Writes benchmarks/results/rate_law_validation.json and .md.
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
import time
from collections import defaultdict

import jax
from _results import machine, save

from jaxcost.perf.calibrate import (
    CONV_GRID,
    DOT_GRID,
    LARGE_FLOPS,
    MAX_FLOPS,
    MIN_FLOPS,
    POOL_GRID,
    calibration_kernels,
    call_overhead,
    conv_kernel,
    dot_kernel,
    grid_flops,
    measure_kernel_table,
    pool_kernel,
    prepare_kernel,
)
from jaxcost.perf.peaks import measure_bandwidth, measure_matmul_flops
from jaxcost.perf.rates import Rates, class_rates, fit_rates

GRIDS = {**{cls: (grid, functools.partial(conv_kernel, cls)) for cls, grid in CONV_GRID.items()},
         "dot": (DOT_GRID, dot_kernel), "window": (POOL_GRID, pool_kernel)}


def draw(within: int, beyond: int, seed: int) -> list[tuple[str, tuple]]:
    """``(range, kernel)`` of the validation kernels: random grid entries not among the
    calibration kernels, per class ``within`` inside its calibrated flops and ``beyond`` above."""
    rnd = random.Random(seed)
    picked = {(k[0], tuple(k[2]), tuple(k[3])) for k in calibration_kernels()}
    out = []
    for cls, (grid, build) in GRIDS.items():
        top = max(MAX_FLOPS[cls], LARGE_FLOPS.get(cls, 0.0))
        fresh = [p for p in grid if (cls, *map(tuple, build(p)[2:])) not in picked]
        for label, lo, hi, n in (("within", MIN_FLOPS, top, within), ("beyond", top, 3 * top, beyond)):
            pool = [p for p in fresh if lo < grid_flops(cls, p) <= hi]
            out += [(label, build(p)) for p in rnd.sample(pool, min(n, len(pool)))]
    return out


def summary(ratios: list[float]) -> dict:
    err = [abs(r - 1) for r in ratios]
    return {"n": len(ratios), "median_abs_error": statistics.median(err), "within_10": sum(e <= 0.10 for e in err) / len(err),
            "within_25": sum(e <= 0.25 for e in err) / len(err),
            "geo_mean_ratio": math.exp(statistics.mean(math.log(r) for r in ratios))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--within", type=int, default=12)
    p.add_argument("--beyond", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=1, help="timing rounds (jaxcost peaks --rounds)")
    p.add_argument("--out", default="rate_law_validation")
    args = p.parse_args()
    device = jax.devices()[0]
    start = time.perf_counter()
    drawn = [(label, kernel, prepare_kernel(*kernel, device)) for label, kernel in draw(args.within, args.beyond, args.seed)]
    drawn = [d for d in drawn if d[2] is not None]
    flops, _ = measure_matmul_flops(device)
    bandwidth = measure_bandwidth(device)
    table, seconds = measure_kernel_table(device, alongside=[run for _, _, (run, _) in drawn], rounds=args.rounds)
    overhead = call_overhead(device)
    fits = fit_rates(table)
    rates = Rates(table, fits, class_rates(table), flops, bandwidth)
    rows, groups = [], defaultdict(list)
    for (label, (cls, _, xs, ws), (_, row)), t in zip(drawn, seconds):
        measured = max(t - overhead, 0.5 * t)  # as the calibration kernels' times (measure_kernel_table)
        predicted = rates.seconds(cls, (row[1], row[2], row[3], row[7], row[8], row[10]), row[5], row[9])
        rows.append({"class": cls, "range": label, "x": list(xs), "w": list(ws), "impl": row[9], "flops": row[5],
                     "measured_s": measured, "predicted_s": predicted, "ratio": predicted / measured})
        groups[(cls, label)].append(predicted / measured)
    results = {f"{cls}/{label}": summary(r) for (cls, label), r in sorted(groups.items())}
    loo = {cls: [f for f in fits if f.cls == cls] for cls in GRIDS}
    lines = [f"# The rate model on kernels it was not fitted to ({machine()})", "",
             (f"A fresh calibration ({len(table)} kernels, {args.rounds} round(s)) and {len(rows)} synthetic kernels "
              f"drawn at random (seed {args.seed}) from the same grids but not picked by it, timed in the same passes; "
              f"each priced by the rate model fitted to the calibration alone. Within: inside the flops the "
              "calibration covers; beyond: up to 3x above. Ratio: predicted / measured (median runs). "
              f"{time.perf_counter() - start:.0f} s in all."), "",
             "| class | range | kernels | median error | within ±10 % | within ±25 % | geo. mean ratio | LOO median (calibration) |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for key, s in results.items():
        cls, label = key.split("/")
        fit_loo = ", ".join(f"{f.loo_median:.0%} ({f.impl.split(':')[-1]})" for f in loo[cls]) or "interpolated"
        lines.append(f"| {cls} | {label} | {s['n']} | {s['median_abs_error']:.0%} | {s['within_10']:.0%} | "
                     f"{s['within_25']:.0%} | {s['geo_mean_ratio']:.2f} | {fit_loo} |")
    every = summary([r["ratio"] for r in rows if r["range"] == "within"])
    lines += ["", (f"Every class, within the calibrated range: median error {every['median_abs_error']:.0%}, "
                   f"{every['within_10']:.0%} within ±10 %, {every['within_25']:.0%} within ±25 % "
                   f"({every['n']} kernels)."), "", "## Kernels", "",
              "| class | range | x | w | kernel | measured | predicted | ratio |", "|---|---|---|---|---|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["class"], r["range"], r["ratio"])):
        lines.append(f"| {r['class']} | {r['range']} | {tuple(r['x'])} | {tuple(r['w'])} | {r['impl'].split(':')[-1]} | "
                     f"{1e3 * r['measured_s']:.3f} ms | {1e3 * r['predicted_s']:.3f} ms | {r['ratio']:.2f} |")
    save(args.out, {"machine": machine(), "seed": args.seed, "rounds": args.rounds, "summary": results,
                    "within_all": every, "rows": rows, "fits": [f.__dict__ for f in fits]}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
