"""analyze() overhead vs a bare lower + compile, and peak memory on a 1 B-parameter model.

Targets: analyze() of ResNet-50, batch 8, abstract inputs, in <= 1.3 x the bare
``jax.jit(f).lower(...).compile()`` measured in the same run; analyzing an abstract
model of 1 B parameters adds < 500 MB to peak RSS.

    python benchmarks/analyze_speed.py [--model resnet50] [--batch 8] [--repeats 3]

Writes benchmarks/results/analyze_speed.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

HERE = os.path.dirname(os.path.abspath(__file__))


def bare_compile(model, x) -> tuple[float, float]:
    from flax import nnx

    graphdef, state = nnx.split(model)

    def f(state, x):
        return nnx.merge(graphdef, state)(x)

    t0 = time.perf_counter()
    lowered = jax.jit(f).lower(state, x)
    t1 = time.perf_counter()
    lowered.compile()
    return t1 - t0, time.perf_counter() - t1


def speed(name: str, batch: int, repeats: int) -> dict:

    import jaxcost
    import models

    model = models.build_abstract(name)
    x = jax.ShapeDtypeStruct((batch, *models.input_shape(name)), jnp.float32)
    jaxcost.analyze(model, x)  # warm imports and caches once
    bare, full, fast, theory, parts = [], [], [], [], []
    for _ in range(repeats):
        lo, co = bare_compile(model, x)
        bare.append(lo + co)
        t0 = time.perf_counter()
        a = jaxcost.analyze(model, x)
        full.append(time.perf_counter() - t0)
        parts.append(dataclasses.asdict(a.timings))
        t0 = time.perf_counter()
        jaxcost.analyze(model, x, compile=False)
        fast.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        jaxcost.analyze_theory(model, x)
        theory.append(time.perf_counter() - t0)
    return {"model": name, "batch": batch, "repeats": repeats,
            "bare_lower_compile_s": min(bare), "analyze_s": min(full),
            "analyze_no_compile_s": min(fast), "analyze_theory_s": min(theory),
            "target_theory_s": 0.5, "ratio": min(full) / min(bare),
            "target_ratio": 1.3, "flops": a.compiler.flops, "params": a.params,
            "analyze_parts_fastest_run": min(parts, key=lambda p: p["analyze_s"])}


_RSS_CHILD = r"""
import resource, sys, json
import jax, jax.numpy as jnp
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
import jaxcost
layers, width = 16, 8192
params = [jax.ShapeDtypeStruct((width, width), jnp.float32) for _ in range(layers)]
def mlp(ps, x):
    for w in ps:
        x = jax.nn.relu(x @ w)
    return x
x = jax.ShapeDtypeStruct((8, width), jnp.float32)
jaxcost.analyze(lambda x: x + 1, jax.ShapeDtypeStruct((4,), jnp.float32))  # warm
before = rss()
a = jaxcost.analyze(mlp, params, x, params_argnums=(0,))
print(json.dumps({"params": a.params, "rss_before": before, "rss_after": rss()}))
"""


def rss_1b() -> dict:
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["added_mb"] = (r["rss_after"] - r["rss_before"]) / 2**20
    r["target_mb"] = 500
    return r


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet50")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "jax": jax.__version__, "backend": jax.default_backend()},
              "speed": speed(args.model, args.batch, args.repeats), "memory_1b": rss_1b()}
    path = os.path.join(HERE, "results", "analyze_speed.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    s, m = result["speed"], result["memory_1b"]
    print("| measure | value | target |\n|---|---|---|")
    print(f"| bare lower+compile ({s['model']} b{s['batch']}) | {s['bare_lower_compile_s']:.2f} s | |")
    print(f"| jaxcost.analyze | {s['analyze_s']:.2f} s | |")
    print(f"| ratio | {s['ratio']:.2f} x | <= 1.3 x |")
    print(f"| analyze(compile=False): lowered module + theory | {s['analyze_no_compile_s']:.2f} s | |")
    print(f"| analyze_theory (theory only) | {s['analyze_theory_s']:.2f} s | <= 0.5 s |")
    print(f"| peak RSS added, {m['params']:,} abstract params | {m['added_mb']:.0f} MB | < 500 MB |")


if __name__ == "__main__":
    main()
