"""Where the time goes on this machine: ``jaxcost.profile`` of zoo models, the profiled step
against the wall-clock step of ``jaxcost.benchmark``, and the measured time by kernel kind.

    python benchmarks/profile_cpu.py [--models resnet50,mobilenet_v1,mobilenet_v2] [--batch 8]

Writes benchmarks/results/profile_<backend>.json and .md. The profiled step is the span from the
first kernel's start to the last kernel's end of one run (jaxcost.perf.profile); the wall-clock
step is the median of timed runs, dispatch included.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import jax
import jax.numpy as jnp
from _results import machine, save

import jaxcost
import models
from jaxcost.perf.profile import CONCURRENT, GAPS


def kind(op) -> str:
    """A coarse kernel kind for the split of measured time."""
    if op is None:
        return "other"
    ops = [i.opcode for i in op.inner] or [op.opcode]
    if "convolution" in ops:
        inst = next(i for i in (op.instruction.called[0].instructions if op.instruction.called else [op.instruction])
                    if i.opcode == "convolution")
        return "depthwise conv" if inst.feature_group_count > 1 else "conv"
    if "dot" in ops:
        return "dot"
    if "reduce-window" in ops or "select-and-scatter" in ops:
        return "pooling"
    if "reduce" in ops:
        return "reduce"
    return "elementwise / copy"


def run(names, batch, steps):
    rows = []
    for name in names:
        model = models.build_abstract(name)
        x = jax.ShapeDtypeStruct((batch, *models.input_shape(name)), jnp.float32)
        a = jaxcost.analyze(model, x, theory=False)
        wall = jaxcost.benchmark(model, x, time_budget_s=5.0).latency_s
        p = jaxcost.profile(model, x, steps=steps, analysis=a)
        ops = {op.name: op for op in a.ops}
        by_kind: dict[str, float] = defaultdict(float)
        for k in p.kernels:
            if k.name not in (GAPS, CONCURRENT):
                by_kind[kind(ops.get(k.name))] += k.measured_s
        kernels_only = sum(k.measured_s for k in p.kernels if k.name not in (GAPS, CONCURRENT))
        rows.append({"model": name, "batch": batch, "step_s": p.step_s, "wall_s": wall,
                     "kernels_s": kernels_only, "gaps_s": p.kernel(GAPS).measured_s,
                     "concurrent_s": p.kernel(CONCURRENT).measured_s, "predicted_s": p.predicted_s,
                     "by_kind": dict(by_kind),
                     "top": [{"kernel": k.name, "ms": 1e3 * k.measured_s, "share": k.share, "bound": k.bound,
                              "layers": list(k.layers[:2])} for k in p.kernels[:8]]})
    return rows


def markdown(rows, machine) -> str:
    kinds = sorted({k for r in rows for k in r["by_kind"]} - {GAPS, CONCURRENT})
    lines = [f"# Where the time goes ({machine})", "",
             ("Profiled step: first kernel start to last kernel end of the median run; its rows add up to it exactly "
             "(kernels − concurrency + gaps). Wall: `jaxcost.benchmark` median, dispatch included."), "",
             "| model | batch | wall | profiled step | kernels | concurrent | gaps | predicted | "
             + " | ".join(kinds) + " |",
             "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(kinds)]
    for r in rows:
        split = " | ".join(f"{r['by_kind'].get(k, 0.0) / r['step_s']:.0%}" for k in kinds)
        lines.append(f"| {r['model']} | {r['batch']} | {1e3 * r['wall_s']:.1f} ms | {1e3 * r['step_s']:.1f} ms | "
                     f"{r['kernels_s'] / r['step_s']:.0%} | {r['concurrent_s'] / r['step_s']:.1%} | "
                     f"{r['gaps_s'] / r['step_s']:.1%} | "
                     f"{1e3 * (r['predicted_s'] or 0):.1f} ms | {split} |")
    for r in rows:
        lines += ["", f"## {r['model']} batch {r['batch']}: heaviest kernels", "",
                  "| kernel | ms | share | bound | layers |", "|---|---:|---:|---|---|"]
        lines += [f"| {t['kernel']} | {t['ms']:.2f} | {t['share']:.1%} | {t['bound']} | {', '.join(t['layers'])} |"
                  for t in r["top"]]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,mobilenet_v1,mobilenet_v2")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args()
    rows = run(args.models.split(","), args.batch, args.steps)
    save(f"profile_{jax.default_backend()}", {"machine": machine(), "rows": rows}, markdown(rows, machine()))


if __name__ == "__main__":
    main()
