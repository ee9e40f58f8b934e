"""1x1 convolutions on a map of one pixel: priced by the 1x1-conv law or as the matmuls they are?

    python benchmarks/matmul_convs.py [--convs 24] [--seed 2026] [--rounds 2]

A dense 1x1 conv whose output map is one pixel (squeeze-and-excitation blocks, heads after a
global pool, Keras's 96-pixel images deep in a network) is the batch's rows times the weights.
The calibration's 1x1 convs have maps of 3x3 pixels and more; extrapolated to one pixel their law
over-priced such convs in held-out models (InceptionResNetV2 at batch 1: 2080 -> 1536 channels
predicted 2.4 ms, measured 0.57 ms). Random convs drawn here (batch 1-8, 32-2900 input and
8-2300 output channels, log-uniform; no calibration kernel) are timed exactly as the
calibration times its kernels (in place, median run, lowest of two passes, geometric mean over
``--rounds`` rounds, less the call overhead) and priced alone -- max(compute, bytes at the
bandwidth of their size), as ``jaxcost.perf.pricing.price_op`` does before the in-program factor --
with the cached calibration's ``conv1x1`` law and with its ``dot`` law
(``jaxcost.perf.kernels.is_matmul_conv``: what jaxcost does). Writes
benchmarks/results/matmul_convs.json and .md.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics

import jax
from _results import errors, machine, save

from jaxcost.perf import get_peaks
from jaxcost.perf.calibrate import BUDGET_S, LONG_S, REPEATS, _conv, call_overhead, prepare_kernel
from jaxcost.perf.stats import median_over_passes


def draw(rnd: random.Random, n: int) -> list[tuple[int, int, int]]:
    """``n`` random ``(batch, input channels, output channels)``."""
    return [(rnd.choice((1, 1, 2, 4, 8)), int(2 ** rnd.uniform(5, 11.5)), int(2 ** rnd.uniform(3, 11.2)))
            for _ in range(n)]


def summary(ratios: list[float]) -> dict:
    return {**errors([abs(r - 1) for r in ratios]), "geo_mean": math.exp(statistics.mean(map(math.log, ratios)))}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--convs", type=int, default=24)
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    peaks = get_peaks("cpu", measure=True)
    rates, device = peaks.rates(), jax.devices("cpu")[0]
    convs = draw(random.Random(args.seed), args.convs)
    prepared = [prepare_kernel("conv1x1", lambda x, w: _conv(x, w, 1), (b, 1, 1, k), (1, 1, k, n), device)
                for b, k, n in convs]
    overhead = call_overhead(device)
    times = median_over_passes([run for run, _ in prepared], 2, REPEATS, BUDGET_S, LONG_S, args.rounds)
    rows = []
    for (b, k, n), (_, row), t in zip(convs, prepared, times):
        t = max(t - overhead, 0.5 * t)
        m, kk, nn, impl, flops = row[1], row[2], row[3], row[9], row[5]
        nbytes = 4 * (b * k + k * n + b * n)
        memory = nbytes / rates.bandwidth(nbytes)
        as_conv = max(rates.seconds("conv1x1", (m, kk, nn, 1, 1, 1), flops, impl), memory)
        as_dot = max(rates.seconds("dot", (m, kk, nn, 1, 1, m), flops, impl), memory)
        rows.append({"batch": b, "in": k, "out": n, "impl": impl, "measured_s": t, "conv1x1_law": as_conv / t,
                     "dot_law": as_dot / t, "outside_dot_range": list(rates.outside("dot", (m, kk, nn, 1, 1, m), impl))})
    result = {"machine": machine(), "seed": args.seed, "rounds": args.rounds, "rows": rows,
              "conv1x1_law": summary([r["conv1x1_law"] for r in rows]), "dot_law": summary([r["dot_law"] for r in rows])}
    lines = [f"# 1x1 convs on a one-pixel map ({machine()})", "", __doc__.split("\n\n")[2].replace("\n", " "), "",
             "| priced by | convs | geo mean pred/meas | median error | within ±10 % | within ±25 % |",
             "|---|---:|---:|---:|---:|---:|"]
    for label in ("conv1x1_law", "dot_law"):
        s = result[label]
        lines.append(f"| {label.replace('_', ' ')} | {len(rows)} | {s['geo_mean']:.2f}x | {s['median_abs_error']:.0%} | "
                     f"{s['within_10']:.0%} | {s['within_25']:.0%} |")
    lines += ["", "| batch | in | out | measured | conv1x1 law | dot law |", "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['batch']} | {r['in']} | {r['out']} | {1e6 * r['measured_s']:.0f} us | {r['conv1x1_law']:.2f} | "
              f"{r['dot_law']:.2f} |" for r in rows]
    save("matmul_convs", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
