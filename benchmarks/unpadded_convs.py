"""Dense convolutions that pad no side ("VALID", patchify): how much slower than padded ones they
run, and how well jaxcost prices them -- on random convs that are not calibration kernels.

    python benchmarks/unpadded_convs.py [--convs 60] [--seed 11] [--budget 0.05]

XLA:CPU's YNNPACK (jax 0.10) runs an unpadded conv on another path than a padded one: some at
the same rate, others (many input channels, few output channels, large maps) several times
slower. jaxcost calibrates them as a kind of kernel of their own (``jaxcost.perf.kernels
.is_unpadded``; ``jaxcost.perf.calibrate.UNPADDED_GRID``). Each random conv here (batch 1-8,
output side 7-110, 3-512 input and 32-512 output channels, windows 2-7, strides 1-2: drawn
afresh, not from the calibration grid) is timed unpadded and, for the slowdown, with one pixel
of padding on each side; the unpadded one is predicted by ``jaxcost.program_roofline`` with the
cached peaks (``jaxcost peaks``), and again with the peaks' unpadded calibration kernels left
out -- priced as padded ones, as before they had a kind of their own. Median runs
(``jaxcost.benchmark``). Writes benchmarks/results/unpadded_convs.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import random

import jax
import jax.numpy as jnp
import numpy as np
from _results import machine, save
from rich.progress import track

import jaxcost
from jaxcost.perf import get_peaks
from jaxcost.perf.kernels import UNPADDED
from jaxcost.perf.rates import Rates, fit_rates


def conv(stride: int, padding):
    def fn(x, w):
        return jax.lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    return fn


def draw(rnd: random.Random, n: int) -> list[tuple[int, ...]]:
    """``n`` random convs ``(batch, input side, input channels, output channels, window, stride)``
    of 1e7 to 2e9 flops."""
    out = []
    while len(out) < n:
        b, side = rnd.choice((1, 2, 4, 8)), rnd.choice((7, 12, 17, 26, 35, 54, 71, 110))
        ci, co = rnd.choice((3, 16, 32, 64, 128, 256, 512)), rnd.choice((32, 64, 128, 256, 512))
        k, s = rnd.choice((2, 3, 3, 5, 7)), rnd.choice((1, 1, 2))
        if 1e7 < 2 * b * side * side * k * k * ci * co < 2e9:
            out.append((b, (side - 1) * s + k, ci, co, k, s))
    return out


def padded_peaks(peaks):
    """``peaks`` without its unpadded calibration kernels (their convs priced as padded ones)."""
    table = [r for r in peaks.kernel_table if not (len(r) >= 11 and r[9].endswith(UNPADDED))]
    stripped = dataclasses.replace(peaks, kernel_table=table)
    stripped.__dict__["_rates"] = {"float32": Rates(table, fit_rates(table), peaks.kernel_flops_per_s,
                                                    peaks.peak_flops(), peaks.bandwidth_bytes_per_s)}
    return stripped


def summary(ratios, seconds) -> dict:
    r, t = np.array(ratios), np.array(seconds)
    e = np.abs(r - 1)
    return {"median_ratio": float(np.median(r)), "median_error": float(np.median(e)),
            "within_10": float(np.mean(e <= 0.10)), "within_25": float(np.mean(e <= 0.25)),
            "time_weighted": float(np.sum(r * t) / t.sum())}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--convs", type=int, default=60)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--budget", type=float, default=0.05)
    args = p.parse_args()
    peaks = get_peaks(jax.default_backend(), measure=True)
    if not any(len(r) >= 11 and r[9].endswith(UNPADDED) for r in peaks.kernel_table):
        raise SystemExit("the cached peaks have no unpadded calibration kernels: run `jaxcost peaks --refresh`")
    as_padded = padded_peaks(peaks)
    rows = []
    for b, side, ci, co, k, s in track(draw(random.Random(args.seed), args.convs), description="convs"):
        x, w = jnp.full((b, side, side, ci), 0.5), jnp.full((k, k, ci, co), 0.01)
        row = {"batch": b, "side": side, "cin": ci, "cout": co, "window": k, "stride": s}
        for label, pad in (("unpadded", "VALID"), ("padded", ((1, 1), (1, 1)))):
            fn = conv(s, pad)
            row[f"{label}_s"] = jaxcost.benchmark(fn, x, w, time_budget_s=args.budget, min_repeats=5).stats.median
            row[f"{label}_side"] = jax.eval_shape(fn, x, w).shape[1]
        a = jaxcost.analyze(conv(s, "VALID"), x, w, theory=False)
        row["predicted_s"] = jaxcost.program_roofline(a, peaks).predicted_s
        row["predicted_as_padded_s"] = jaxcost.program_roofline(a, as_padded).predicted_s
        # the padded conv's time scaled to the unpadded one's outputs: what padding alone changes
        row["slowdown"] = row["unpadded_s"] / (row["padded_s"] * (row["unpadded_side"] / row["padded_side"]) ** 2)
        rows.append(row)
    t = [r["unpadded_s"] for r in rows]
    own = summary([r["predicted_s"] / r["unpadded_s"] for r in rows], t)
    before = summary([r["predicted_as_padded_s"] / r["unpadded_s"] for r in rows], t)
    slow = sorted(r["slowdown"] for r in rows)
    lines = [f"# Unpadded convolutions (random, not calibration kernels; {machine()})", "",
             (f"{len(rows)} dense convs drawn with seed {args.seed} (benchmarks/unpadded_convs.py). Slowdown: the "
              "unpadded conv's median run over the same conv's with one pixel of padding a side, per output "
              f"pixel: median {np.median(slow):.2f}x, {np.mean(np.array(slow) > 1.25):.0%} over 1.25x, up to "
              f"{slow[-1]:.1f}x. Predicted: `jaxcost.program_roofline` with the cached peaks "
              f"({len(peaks.kernel_table)} calibration rows), as its own kind of kernel and as before, priced as a "
              "padded conv (the peaks' unpadded kernels left out). Time-weighted: sum of predicted over sum of "
              "measured."), "",
             "| priced as | median pred/meas | median error | within ±10 % | within ±25 % | time-weighted |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, s in (("unpadded kind (interpolated)", own), ("padded conv (before)", before)):
        lines.append(f"| {label} | {s['median_ratio']:.2f} | {s['median_error']:.0%} | {s['within_10']:.0%} | "
                     f"{s['within_25']:.0%} | {s['time_weighted']:.2f} |")
    lines += ["", ("| batch | input | window / stride | unpadded | padded | slowdown | predicted | pred/meas | "
                   "as padded |"), "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['side']}x{r['side']}x{r['cin']} -> {r['cout']} | {r['window']} / "
                     f"{r['stride']} | {r['unpadded_s'] * 1e3:.2f} ms | {r['padded_s'] * 1e3:.2f} ms | "
                     f"{r['slowdown']:.2f} | {r['predicted_s'] * 1e3:.2f} ms | "
                     f"{r['predicted_s'] / r['unpadded_s']:.2f} | {r['predicted_as_padded_s'] / r['unpadded_s']:.2f} |")
    save("unpadded_convs", {"machine": machine(), "seed": args.seed, "summary": {"own": own, "as_padded": before},
                            "rows": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
