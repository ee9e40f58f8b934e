"""Grouped convolutions past a cache: where they slow down by a step, and how well jaxcost prices
them -- on random grouped convs that are not calibration kernels.

    python benchmarks/grouped_spill.py [--convs 24] [--seed 7]

XLA:CPU's YNNPACK (jax 0.10) runs a grouped conv on one core; once its input outgrows a cache,
at about half its rate. Part one finds the step: four families of 3x3 grouped convs, groups
added a few at a time, each timed in place (``jaxcost.perf.calibrate.prepare_kernel``, median
run); the time per group jumps where the input passes the step. Part two draws random grouped
convs (batch 1-8, side 7-56, 4-32 channels a group, 4-64 groups, 3x3 and 5x5 windows: drawn
afresh, not from the calibration grid), times each, and prices it with the cached peaks
(``jaxcost peaks``; ``Rates.seconds``) -- with the step the calibration found
(``jaxcost.perf.rates.SPILL_CLASSES``), and with the rate law fitted to the same calibration
kernels as if no class had a step (``fit_rates(table, spill_classes=())``). Writes
benchmarks/results/grouped_spill.json and .md.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics

import jax
from _results import errors, machine, save
from rich.progress import track

from jaxcost.perf import get_peaks
from jaxcost.perf.calibrate import conv_kernel, grid_flops, grid_input_bytes, prepare_kernel
from jaxcost.perf.rates import Rates, fit_rates
from jaxcost.perf.stats import time_runs

FAMILIES = ((1, 56, 16), (1, 28, 64), (8, 28, 8), (8, 14, 32))  # (batch, side, channels a group)
GROUPS = (12, 16, 18, 20, 22, 24, 28)


def timed(point: tuple, device) -> tuple[float, list]:
    """Median seconds of the grouped conv ``point`` (a calibration grid entry) run in place, and
    its calibration row (features at 1:4, 7:9, 10; kind at 9)."""
    cls, fn, xs, ws = conv_kernel("grouped", point)
    run, row = prepare_kernel(cls, fn, xs, ws, device)
    run()
    return statistics.median(time_runs(run, 5, 0.02)), row


def input_mib(point: tuple) -> float:
    return grid_input_bytes(point) / 2 ** 20


def draw(rnd: random.Random, n: int) -> list[tuple[int, ...]]:
    """``n`` random grouped convs (calibration grid entries) of 2e7 to 6e8 flops."""
    out: list[tuple[int, ...]] = []
    while len(out) < n:
        b, hw, cg = rnd.choice((1, 2, 4, 8)), rnd.choice((7, 14, 28, 56)), rnd.choice((4, 8, 16, 24, 32))
        p = (b, hw, cg, cg, rnd.choice((3, 3, 5)), rnd.choice((4, 16, 32, 64)))
        if 2e7 < grid_flops("grouped", p) < 6e8 and p not in out:
            out.append(p)
    return out


def summary(ratios: list[float], seconds: list[float]) -> dict:
    return {**errors([abs(r - 1) for r in ratios]),
            "geomean": math.exp(statistics.mean(math.log(r) for r in ratios)),
            "total": sum(r * s for r, s in zip(ratios, seconds)) / sum(seconds)}


def markdown(scan: list[dict], rows: list[dict], fit, summaries: dict) -> str:
    step = (f"x{fit.spill:.2f} past {fit.spill_bytes / 2 ** 20:.2f} MiB of input" if fit and fit.spill_bytes
            else "none")
    lines = [f"# Grouped convolutions past a cache ({machine()})", "",
             "## The step", "",
             "3x3 grouped convs, groups added a few at a time; median runs, in place.", "",
             "| batch | side | channels a group | groups | input | time | per group |", "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['point'][0]} | {r['point'][1]} | {r['point'][2]} | {r['point'][5]} | {r['input_mib']:.2f} MiB | "
              f"{1e3 * r['seconds']:.2f} ms | {1e3 * r['seconds'] / r['point'][5]:.3f} ms |" for r in scan]
    lines += ["", f"The step the calibration found (`jaxcost peaks`, {fit!r}): {step}.", "",
              "## Random grouped convs, predicted / measured", "",
              "| convs | priced | n | within ±10 % | within ±25 % | median error | geometric mean | total time |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for (label, past), s in summaries.items():
        for key in ("spill", "no_spill"):
            t = s[key]
            lines.append(f"| {label} | {'with' if key == 'spill' else 'without'} | {t['n']} | {t['within_10']:.0%} | "
                         f"{t['within_25']:.0%} | {t['median_abs_error']:.0%} | {t['geomean']:.2f} | {t['total']:.2f} |")
    lines += ["", "| batch | side | channels a group | window | groups | kind | input | measured | with the step | without |",
              "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {p[0]} | {p[1]} | {p[2]} | {p[4]}x{p[4]} | {p[5]} | {r['kind']} | {r['input_mib']:.1f} MiB | "
              f"{1e3 * r['seconds']:.2f} ms | {r['spill']:.2f} | {r['no_spill']:.2f} |" for r in rows for p in [r["point"]]]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--convs", type=int, default=40)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    device = jax.devices()[0]
    rates = get_peaks(device.platform).rates()
    fits = [f for f in rates.fits.values() if f.cls == "grouped"]
    fit = max(fits, key=lambda f: f.rows, default=None)
    no_spill = Rates(rates.table, fit_rates(rates.table, spill_classes=()), rates.class_rates, rates.peak,
                     rates.default_bandwidth)
    scan = []
    for b, hw, cg in track(FAMILIES, description="the step"):
        for g in GROUPS:
            point = (b, hw, cg, cg, 3, g)
            scan.append({"point": point, "input_mib": input_mib(point), "seconds": timed(point, device)[0]})
    rows = []
    for point in track(draw(random.Random(args.seed), args.convs), description="random grouped convs"):
        seconds, row = timed(point, device)
        features = (*row[1:4], *row[7:9], row[10])
        price = {name: r.seconds("grouped", features, row[5], row[9]) / seconds
                 for name, r in (("spill", rates), ("no_spill", no_spill))}
        rows.append({"point": point, "kind": row[9], "input_mib": input_mib(point), "seconds": seconds, **price,
                     "past": bool(fit and fit.spill_bytes and point[4] > 1 and grid_input_bytes(point) > fit.spill_bytes)})
    summaries = {}
    for label, past in (("all", None), ("past the step", True), ("below it", False)):
        sel = [r for r in rows if past is None or r["past"] == past]
        if sel:
            summaries[(label, past)] = {k: summary([r[k] for r in sel], [r["seconds"] for r in sel])
                                        for k in ("spill", "no_spill")}
    save("grouped_spill", {"machine": machine(), "fit": repr(fit), "spill_bytes": fit.spill_bytes if fit else None,
                           "spill": fit.spill if fit else None, "scan": scan, "rows": rows,
                           "summary": {label: s for (label, _), s in summaries.items()}},
         markdown(scan, rows, fit, summaries))


if __name__ == "__main__":
    main()
