"""The zoo on this machine's default backend: latency, throughput, achieved GFLOP/s and the
roofline prediction next to the measurement.

    python benchmarks/zoo_cpu.py [--batch 1,8] [--models resnet50,mobilenet_v2] [--budget 1.0]

Writes benchmarks/results/zoo_<backend>.json and .md. Target: predicted vs measured
end-to-end latency within +-25 % for at least 80 % of zoo models at batch 8; the distribution
(median |error|, worst model) is recorded so the bar can be raised.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics

import jax
import jax.numpy as jnp
from rich.progress import track

import jaxcost
import models
from jaxcost.perf import get_peaks
from jaxcost.perf.predict import program_roofline
from jaxcost.perf.timing import benchmark

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODELS = [n for n in models.names()]


def run(names, batches, budget):
    backend = jax.default_backend()
    peaks = get_peaks(backend, measure=True)
    rows = []
    for name in track(names, description="zoo"):
        model = models.build_abstract(name)
        for batch in batches:
            dtype = jnp.int32 if models.family(name) == "transformer" else jnp.float32
            x = jax.ShapeDtypeStruct((batch, *models.input_shape(name)), dtype)
            row = {"model": name, "batch": batch}
            try:
                a = jaxcost.analyze(model, x, theory=False)
                r = benchmark(model, x, time_budget_s=budget, batch_size=batch)
                roof = program_roofline(a, peaks)
                row.update(latency_s=r.latency_s, cv=r.stats.cv, n=r.stats.n, throughput=r.throughput,
                           compile_s=r.compile_s, xla_flops=a.compiler.flops,
                           xla_bytes=a.compiler.bytes_accessed,
                           gflops_per_s=a.compiler.flops / r.latency_s / 1e9,
                           predicted_s=roof.predicted_s, ratio=roof.predicted_s / r.latency_s)
            except Exception as e:  # noqa: BLE001 - record the failure, go on
                row["error"] = f"{type(e).__name__}: {e}"[:300]
            rows.append(row)
    return backend, peaks, rows


def summarize(rows, batch):
    ok = [r for r in rows if r["batch"] == batch and "ratio" in r]
    if not ok:
        return {}
    errors = [abs(r["ratio"] - 1) for r in ok]
    worst = max(ok, key=lambda r: abs(r["ratio"] - 1))
    return {"batch": batch, "models": len(ok), "within_25pct": sum(e <= 0.25 for e in errors),
            "fraction_within_25pct": sum(e <= 0.25 for e in errors) / len(ok),
            "median_abs_error": statistics.median(errors), "worst_model": worst["model"],
            "worst_ratio": worst["ratio"]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", default="1,8")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--budget", type=float, default=1.0)
    args = p.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    backend, peaks, rows = run(args.models.split(","), batches, args.budget)
    summary = [summarize(rows, b) for b in batches]
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                       "backend": backend, "device_kind": jax.devices()[0].device_kind},
           "peaks": peaks.to_dict(), "summary": summary, "results": rows}
    base = os.path.join(HERE, "results", f"zoo_{backend}")
    with open(base + ".json", "w") as f:
        json.dump(out, f, indent=2)
    lines = [f"# Zoo on {backend} ({out['machine']['device_kind']}, {os.cpu_count()} cores, jax {jax.__version__})",
             "", (f"Peaks used ({peaks.source}): matmul "
                  + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.flops_per_s.items())
                  + f", bandwidth {peaks.bandwidth_bytes_per_s / 1e9:.1f} GB/s; kernel classes "
                  + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in peaks.kernel_flops_per_s.items())
                  + " GFLOP/s; "
                  + (f"{peaks.kernel_overhead_s * 1e6:.2f} us per kernel."
                     if peaks.kernel_overhead_s is not None else "no per-kernel overhead.")), "",
             "| model | batch | latency | items/s | GFLOP/s | XLA GFLOP | XLA MB | predicted | pred/meas |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['batch']} | error: {r['error'][:80]} | | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['batch']} | {r['latency_s'] * 1e3:.1f} ms | {r['throughput']:.1f} | "
                     f"{r['gflops_per_s']:.1f} | {r['xla_flops'] / 1e9:.2f} | {r['xla_bytes'] / 1e6:.1f} | "
                     f"{r['predicted_s'] * 1e3:.1f} ms | {r['ratio']:.2f} |")
    lines += ["", "## Prediction quality", ""]
    for s in summary:
        if s:
            lines.append(f"- batch {s['batch']}: {s['within_25pct']}/{s['models']} models within +-25 % "
                         f"({100 * s['fraction_within_25pct']:.0f} %), median |error| "
                         f"{100 * s['median_abs_error']:.0f} %, worst {s['worst_model']} "
                         f"(predicted/measured {s['worst_ratio']:.2f})")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
