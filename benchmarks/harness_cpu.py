"""The timing harness itself: its overhead on a 10 ms kernel and the spread of repeated medians.

Targets: harness overhead < 1 % of a measured 10 ms kernel; CV of repeated
medians < 3 % on an idle machine.

    python benchmarks/harness_cpu.py [--runs 10] [--budget 1.0]

- overhead: (a) the harness's own bookkeeping per sample (its loop run around a Python
  no-op: two perf_counter calls, an append, the budget check), relative to the kernel
  time -- the target's figure; (b) a cross-check: the harness's fastest sample minus the
  fastest of a bare loop of the same calls (minima: the least noisy statistic).
- stability: ``runs`` independent ``benchmark()`` calls of the 10 ms kernel and of a zoo
  model; CV = stdev / mean of their medians.

Writes benchmarks/results/harness_<backend>.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp

import models
from jaxcost import benchmark

HERE = os.path.dirname(os.path.abspath(__file__))


def ten_ms_matmul():
    """A square float32 matmul sized to take about 10 ms here: (fn, operand, n)."""
    f = jax.jit(jnp.matmul)
    n = 256
    while True:
        a = jnp.ones((n, n), jnp.float32)
        jax.block_until_ready(f(a, a))
        t = min(_time(lambda a=a: jax.block_until_ready(f(a, a))) for _ in range(3))
        if t >= 0.01 or n >= 8192:
            return f, a, n
        n = int(n * min(2.0, (0.01 / t) ** (1 / 3) * 1.05))


def _time(fn) -> float:
    s = time.perf_counter()
    fn()
    return time.perf_counter() - s


def bookkeeping_per_sample(n: int = 100_000) -> float:
    """Seconds the harness loop adds per sample, measured around a Python no-op."""
    samples: list[float] = []
    start = time.perf_counter()
    for _ in range(n):
        s = time.perf_counter()
        samples.append(time.perf_counter() - s)
        if len(samples) >= 5 and time.perf_counter() - start >= 1e9:
            break
    return (time.perf_counter() - start) / n


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--budget", type=float, default=1.0)
    p.add_argument("--model", default="resnet18")
    args = p.parse_args()
    f, a, n = ten_ms_matmul()
    book = bookkeeping_per_sample()
    bare = min(_time(lambda: jax.block_until_ready(f(a, a))) for _ in range(100))
    harness = benchmark(f, a, a, time_budget_s=args.budget).stats.min
    kernel_medians = [benchmark(f, a, a, time_budget_s=args.budget).latency_s for _ in range(args.runs)]
    x = jax.ShapeDtypeStruct((1, *models.input_shape(args.model)), jnp.float32)
    model = models.build_abstract(args.model)
    model_medians = [benchmark(model, x, time_budget_s=args.budget).latency_s for _ in range(args.runs)]

    def cv(xs):
        return statistics.stdev(xs) / statistics.mean(xs)

    out = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
                    "backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind},
        "kernel": {"matmul_n": n, "time_s": bare},
        "overhead": {"bookkeeping_per_sample_s": book, "bookkeeping_fraction": book / bare,
                     "harness_min_s": harness, "bare_loop_min_s": bare,
                     "min_minus_bare_fraction": (harness - bare) / bare, "target_fraction": 0.01},
        "stability": {"runs": args.runs, "budget_s": args.budget,
                      "kernel_medians_s": kernel_medians, "kernel_cv": cv(kernel_medians),
                      "model": args.model, "model_medians_s": model_medians,
                      "model_cv": cv(model_medians), "target_cv": 0.03},
    }
    path = os.path.join(HERE, "results", f"harness_{out['machine']['backend']}.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=2)
    o, s = out["overhead"], out["stability"]
    print(f"kernel: {n}x{n} matmul, {bare * 1e3:.2f} ms")
    print(f"harness bookkeeping: {book * 1e9:.0f} ns/sample = {o['bookkeeping_fraction']:.5%} of the kernel "
          "(target < 1 %)")
    print(f"cross-check, harness min - bare loop min: {o['min_minus_bare_fraction']:+.2%}")
    print(f"CV of {args.runs} medians: kernel {s['kernel_cv']:.2%}, {args.model} {s['model_cv']:.2%} "
          "(target < 3 %)")


if __name__ == "__main__":
    main()
