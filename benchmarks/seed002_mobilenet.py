"""Seed 002's MobileNet V1 vs V2 question (M. Hollemans, "How fast is my model?", 2018, §3), on
this machine: V1 1.0, V2 1.0 and V2 1.4 at 126x224 (the seed's 16:9 frame) and 224x224, batch 1.

    python benchmarks/seed002_mobilenet.py [--budget 3]

For each: parameters, MACCs, memory accesses under the seed's per-layer models (naive: input x
K^2 x Cout + output + weights; ideal: each input, output and weight once), XLA's bytes unfused
(lowered module) and fused (compiled), and the measured latency (median, with its IQR). Writes
benchmarks/results/seed002_mobilenet.json and .md, and states whether the seed's conclusion holds
here (V2 1.0 faster than V1; V2 1.4 about as fast as V1).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from _results import machine, save
from flax import nnx

import jaxcost
import models

MODELS = {"MobileNet V1 1.0": "mobilenet_v1", "MobileNet V2 1.0": "mobilenet_v2", "MobileNet V2 1.4": "mobilenet_v2_1_4"}
SIZES = ((126, 224), (224, 224))


def run(budget: float) -> list[dict]:
    rows = []
    for label, name in MODELS.items():
        model = models.build_abstract(name)
        params = sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
        for h, w in SIZES:
            x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
            a = jaxcost.analyze(model, x)
            t = a.theory.totals
            r = jaxcost.benchmark(model, x, time_budget_s=budget, min_repeats=10)
            rows.append({"model": label, "input": f"{h}x{w}", "params": params, "maccs": t.macs,
                         "accesses_naive": t.accesses_naive, "accesses_ideal": t.accesses_ideal,
                         "xla_bytes_unfused": a.compiler_unoptimized.bytes_accessed,
                         "xla_bytes_fused": a.compiler.bytes_accessed, "latency_s": r.latency_s,
                         "iqr_s": r.stats.iqr})
    return rows


def markdown(rows, machine) -> str:
    lines = [f"# Seed 002: MobileNet V1 vs V2 ({machine}, batch 1)", "",
             ("| model | input | params | MACCs | accesses naive | accesses ideal | XLA bytes unfused | "
             "XLA bytes fused | latency (median) | IQR |"), "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['input']} | {r['params'] / 1e6:.2f} M | {r['maccs'] / 1e6:.0f} M | "
                     f"{r['accesses_naive'] / 1e6:.0f} M | {r['accesses_ideal'] / 1e6:.1f} M | "
                     f"{r['xla_bytes_unfused'] / 1e6:.1f} MB | {r['xla_bytes_fused'] / 1e6:.1f} MB | "
                     f"{1e3 * r['latency_s']:.2f} ms | {1e3 * r['iqr_s']:.2f} ms |")
    lat = {(r["model"], r["input"]): r["latency_s"] for r in rows}
    lines += ["", ("The seed's conclusion (on the GPUs and phones it cites): V2 1.0 is faster than V1, V2 1.4 about "
              "as fast as V1. Here:"), ""]
    for _, size in ((h, f"{h}x{w}") for h, w in SIZES):
        v1, v2, v214 = (lat[(m, size)] for m in MODELS)
        lines.append(f"- {size}: V2 1.0 / V1 = {v2 / v1:.2f} ({'faster' if v2 < v1 else 'slower'}); "
                     f"V2 1.4 / V1 = {v214 / v1:.2f}.")
    faster = {f"{h}x{w}": lat[("MobileNet V2 1.0", f"{h}x{w}")] < lat[("MobileNet V1 1.0", f"{h}x{w}")]
              for h, w in SIZES}
    spread = max(r["iqr_s"] for r in rows)
    if all(faster.values()):
        verdict = "The seed's first claim holds here: V2 1.0 is faster than V1 at both sizes."
    elif not any(faster.values()):
        verdict = ("The seed's first claim does not hold here: on XLA:CPU a depthwise convolution runs at under 1 % "
                   "of the matmul peak (`jaxcost peaks`), so V2's extra depthwise work per image outweighs its "
                   "smaller MACCs; `jaxcost.profile` shows it per kernel (notebook 08).")
    else:
        verdict = (f"Mixed here: V2 1.0 is faster than V1 at {', '.join(k for k, v in faster.items() if v)} only; "
                   f"the measurements' IQRs (up to {1e3 * spread:.1f} ms) are of the order of the differences, "
                   "so on this shared 2-core machine the question is not settled by latency.")
    lines += ["", verdict]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=3.0)
    args = p.parse_args()
    rows = run(args.budget)
    save("seed002_mobilenet", {"machine": machine(), "rows": rows}, markdown(rows, machine()))


if __name__ == "__main__":
    main()
