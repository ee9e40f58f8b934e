"""Fusion and BatchNorm folding, measured: original vs BN-folded, fused vs fusion disabled.

    python benchmarks/fusion_effects.py [--models resnet50,mobilenet_v2] [--batch 8] [--budget 2]

For each model: XLA flops and bytes (optimized), temp memory, and median latency of
(a) the original, (b) the BN-folded model, (c) the original compiled with
``xla_disable_hlo_passes=fusion``. Writes benchmarks/results/fusion_effects_<backend>.json/.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jaxcost
import models

HERE = os.path.dirname(os.path.abspath(__file__))
NO_FUSION = {"xla_disable_hlo_passes": "fusion"}


def random_weights(name: str):
    """The model with random weights and non-trivial BN statistics, without running the
    (slow) initialisers: fill an abstract build with numpy random values."""
    abstract = models.build_abstract(name)
    graphdef, state = nnx.split(abstract)
    rng = np.random.default_rng(0)

    def fill(path, x):
        key = jax.tree_util.keystr(path)
        if "var" in key:
            return jnp.asarray(rng.uniform(0.5, 1.5, x.shape), x.dtype)
        if len(x.shape) > 1:  # He-style fan-in scaling keeps activations finite through depth
            fan_in = int(np.prod(x.shape[:-1]))
            return jnp.asarray(rng.normal(0, np.sqrt(2.0 / fan_in), x.shape), x.dtype)
        if "scale" in key:
            return jnp.asarray(rng.uniform(0.5, 1.5, x.shape), x.dtype)
        return jnp.asarray(rng.normal(0, 0.1, x.shape), x.dtype)

    state = jax.tree_util.tree_map_with_path(fill, state)
    return nnx.merge(graphdef, state)


def measure(name: str, batch: int, budget: float) -> dict:
    x = jax.ShapeDtypeStruct((batch, *models.input_shape(name)), jnp.float32)
    model = random_weights(name)
    folded = jaxcost.fold_batchnorm(model, x)
    rows = {}
    for label, m, opts in (("original", model, None), ("bn_folded", folded.model, None),
                           ("fusion_disabled", model, NO_FUSION)):
        a = jaxcost.analyze(m, x, compiler_options=opts, theory=False)
        r = jaxcost.benchmark(m, x, compiler_options=opts, time_budget_s=budget)
        rows[label] = {"params": a.params, "xla_flops": a.compiler.flops,
                       "xla_bytes": a.compiler.bytes_accessed,
                       "xla_bytes_unoptimized": a.compiler_unoptimized.bytes_accessed,
                       "temp_bytes": a.memory.temp_bytes, "latency_s": r.latency_s,
                       "iqr_s": r.stats.iqr, "cv": r.stats.cv, "n": r.stats.n}
    xo = np.asarray(model(jnp.ones(x.shape, x.dtype)))
    xf = np.asarray(folded.model(jnp.ones(x.shape, x.dtype)))
    return {"model": name, "batch": batch, "folded_pairs": len(folded.folded),
            "skipped": len(folded.skipped), "max_rel_error": float(np.abs(xo - xf).max() / np.abs(xo).max()),
            "variants": rows}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="resnet50,mobilenet_v2")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--budget", type=float, default=2.0)
    args = p.parse_args()
    results = [measure(n, args.batch, args.budget) for n in args.models.split(",")]
    backend = jax.default_backend()
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                       "backend": backend}, "results": results}
    base = os.path.join(HERE, "results", f"fusion_effects_{backend}")
    with open(base + ".json", "w") as f:
        json.dump(out, f, indent=2)
    lines = [(f"# Fusion and BN folding on {backend} ({os.cpu_count()} cores, jax {jax.__version__}), "
             f"batch {args.batch}"), "",
             "| model | variant | params | XLA GFLOP | XLA MB (opt) | temp MB | median latency | CV |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for label, v in r["variants"].items():
            lines.append(f"| {r['model']} | {label} | {v['params']:,} | {v['xla_flops'] / 1e9:.3f} | "
                         f"{v['xla_bytes'] / 1e6:.1f} | {(v['temp_bytes'] or 0) / 1e6:.1f} | "
                         f"{v['latency_s'] * 1e3:.1f} ms | {v['cv']:.1%} |")
        lines.append(f"| {r['model']} | folded pairs {r['folded_pairs']}, skipped {r['skipped']}, "
                     f"max rel. error {r['max_rel_error']:.1e} | | | | | | |")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
