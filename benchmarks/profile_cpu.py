"""Where the time goes on this machine: ``jaxcost.profile`` of zoo models, the profiled step
against the wall-clock step of ``jaxcost.benchmark``, and the measured and predicted time by kernel
class (``Profile.by_class``).

    python benchmarks/profile_cpu.py [--models resnet50,mobilenet_v1,mobilenet_v2] [--batch 8]

Writes benchmarks/results/profile_<backend>.json and .md. The profiled step is the span from the
first kernel's start to the last kernel's end of one run (jaxcost.perf.profile); the wall-clock
step is the median of timed runs, dispatch included.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from _results import machine, save

import jaxcost
import models
from jaxcost.perf.profile import CONCURRENT, GAPS


def run(names, batch, steps):
    rows = []
    for name in names:
        model = models.build_abstract(name)
        x = jax.ShapeDtypeStruct((batch, *models.input_shape(name)), jnp.float32)
        a = jaxcost.analyze(model, x, theory=False)
        wall = jaxcost.benchmark(model, x, time_budget_s=5.0).latency_s
        p = jaxcost.profile(model, x, steps=steps, analysis=a)
        kernels_only = sum(k.measured_s for k in p.kernels if k.name not in (GAPS, CONCURRENT))
        rows.append({"model": name, "batch": batch, "step_s": p.step_s, "wall_s": wall,
                     "kernels_s": kernels_only, "gaps_s": p.kernel(GAPS).measured_s,
                     "concurrent_s": p.kernel(CONCURRENT).measured_s, "predicted_s": p.predicted_s,
                     "classes": {c: v._asdict() for c, v in p.by_class().items()},
                     "top": [{"kernel": k.name, "ms": 1e3 * k.measured_s, "share": k.share, "bound": k.bound,
                              "layers": list(k.layers[:2])} for k in p.kernels[:8]]})
    return rows


def markdown(rows, machine) -> str:
    kinds = sorted({k for r in rows for k in r["classes"]})
    lines = [f"# Where the time goes ({machine})", "",
             ("Profiled step: first kernel start to last kernel end of the median run; its rows add up to it exactly "
             "(kernels − concurrency + gaps). Wall: `jaxcost.benchmark` median, dispatch included."), "",
             "| model | batch | wall | profiled step | kernels | concurrent | gaps | predicted | "
             + " | ".join(kinds) + " |",
             "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(kinds)]
    for r in rows:
        split = " | ".join(f"{r['classes'][k]['measured_s'] / r['step_s']:.0%}" if k in r["classes"] else ""
                           for k in kinds)
        lines.append(f"| {r['model']} | {r['batch']} | {1e3 * r['wall_s']:.1f} ms | {1e3 * r['step_s']:.1f} ms | "
                     f"{r['kernels_s'] / r['step_s']:.0%} | {r['concurrent_s'] / r['step_s']:.1%} | "
                     f"{r['gaps_s'] / r['step_s']:.1%} | "
                     f"{1e3 * (r['predicted_s'] or 0):.1f} ms | {split} |")
    lines += ["", ("Predicted / measured time per kernel class (`Profile.by_class`; `other`: the memory-bound "
              "elementwise kernels, copies and reductions):"), "",
              "| model | batch | " + " | ".join(kinds) + " |", "|---|---:|" + "---:|" * len(kinds)]
    for r in rows:
        ratio = lambda v: f"{v['predicted_s'] / v['measured_s']:.2f}" if v["predicted_s"] and v["measured_s"] > 0 else ""
        lines.append(f"| {r['model']} | {r['batch']} | "
                     + " | ".join(ratio(r["classes"][k]) if k in r["classes"] else "" for k in kinds) + " |")
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
