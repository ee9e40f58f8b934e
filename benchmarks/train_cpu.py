"""One training step of zoo models on this machine's default backend: the step's FLOPs by
direction, steady-state step time (donated state), MFU and HFU.

    python benchmarks/train_cpu.py [--models resnet18,resnet50,vit_b_16,transformer_base]
                                   [--batch 8] [--optimizer adam] [--budget 10]

Writes benchmarks/results/train_<backend>.json and .md. Model FLOPs: the theory's forward +
backward contractions (what MFU counts, PaLM arXiv 2204.02311 appendix B); hardware FLOPs:
XLA's compiled program, every op (what HFU counts); peak: this device's float32 matmul peak,
measured by ``jaxcost peaks`` (cached).
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import jax
import jax.numpy as jnp
from rich.progress import track

import jaxcost
import models
from jaxcost.perf import get_peaks

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODELS = ["resnet18", "resnet50", "vit_b_16", "transformer_base"]


def run(names, batch, optimizer, budget):
    backend = jax.default_backend()
    peaks = get_peaks(backend, measure=True)
    rows = []
    for name in track(names, description="train steps"):
        dtype = jnp.int32 if models.family(name) == "transformer" else jnp.float32
        x = jax.ShapeDtypeStruct((batch, *models.input_shape(name)), dtype)
        step = jaxcost.train_step(models.build_abstract(name), x, optimizer=optimizer)
        a = step.analyze(backend=backend)
        c = a.training()
        b = step.benchmark(a, peaks=peaks, time_budget_s=budget, min_repeats=3, warmup=1)
        rows.append({
            "model": name, "batch": batch, "optimizer": optimizer, "params": a.params,
            "optimizer_state": a.optimizer_state, "model_flops": c.model_flops, "hardware_flops": c.hardware_flops,
            "xla_by_direction": {d: v.xla_flops for d, v in c.directions.items()},
            "theory_by_direction": {d: v.theory_flops for d, v in c.directions.items()},
            "input_grad_flops": c.input_grad_flops, "weight_grad_flops": c.weight_grad_flops,
            "backward_ratio": c.backward_ratio, "compile_s": a.timings.compile_s,
            "step_s": b.step_s, "iqr_s": b.timing.stats.iqr, "n": b.timing.stats.n, "mfu": b.mfu, "hfu": b.hfu,
        })
    return backend, peaks, rows


def markdown(backend, peaks, rows, machine) -> str:
    peak = peaks.peak_flops("float32")
    lines = [f"# One training step on {backend} ({machine})", "",
             (f"Peak: {peak / 1e9:.1f} GFLOP/s float32 ({peaks.source}, `jaxcost peaks`). "
             "Model FLOPs = forward + backward contractions (theory); hardware FLOPs = XLA's compiled "
             "program (every op). Steady state: the state is donated and fed back each step."), "",
             ("| model | batch | optimizer | params | model GFLOP | hardware GFLOP | fwd / bwd / opt GFLOP (XLA) | "
             "bwd/fwd | step (median) | IQR | MFU | HFU |"),
             "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        d = r["xla_by_direction"]
        split = " / ".join(f"{(d.get(k) or 0) / 1e9:.2f}" for k in ("forward", "backward", "optimizer"))
        lines.append(f"| {r['model']} | {r['batch']} | {r['optimizer']} | {r['params']:,} | "
                     f"{r['model_flops'] / 1e9:.1f} | {r['hardware_flops'] / 1e9:.1f} | {split} | "
                     f"{r['backward_ratio']:.2f} | {r['step_s']:.2f} s | {r['iqr_s']:.3f} s | "
                     f"{r['mfu']:.1%} | {r['hfu']:.1%} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--budget", type=float, default=10.0, help="seconds of timed steps per model")
    args = p.parse_args()
    backend, peaks, rows = run(args.models.split(","), args.batch, args.optimizer, args.budget)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}"
    out = os.path.join(HERE, "results", f"train_{backend}")
    with open(out + ".json", "w") as f:
        json.dump({"backend": backend, "machine": machine, "peak_flops_per_s": peaks.peak_flops("float32"),
                   "peak_source": peaks.source, "rows": rows}, f, indent=2)
    with open(out + ".md", "w") as f:
        f.write(markdown(backend, peaks, rows, machine))
    print(markdown(backend, peaks, rows, machine))


if __name__ == "__main__":
    main()
