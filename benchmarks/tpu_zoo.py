"""Zoo models compiled for TPU generations on this machine, without a TPU (libtpu's
compile-only devices): XLA:TPU's flops and bytes, HBM fit, and the roofline prediction from
the chip's published peaks with its bound.

    python benchmarks/tpu_zoo.py [--models resnet50,mobilenet_v2] [--chips v4,v5e,v5p,v6e]
                                 [--batch 1,8] [--dtype bfloat16] [--no-train]

Writes benchmarks/results/tpu_zoo.json and .md. One chip per program (figures per chip; v4's
compile-only devices are TensorCores, two per chip, so a v4 program runs on one of them), and a
data-parallel ResNet-50 training step (batch 8 per chip) over each generation's 2x2 (v4:
2x2x1) slice, where the gradients' all-reduces cross the ICI. Predictions are published-peak
rooflines (bf16 FLOP/s, HBM GB/s, ICI GB/s, jaxcost.hardware): nothing here was run on a TPU.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
from rich.progress import track

import jaxcost
import models
from jaxcost.hardware import parse_target

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODELS = ["resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2", "mobilenet_v2_1_4", "vgg16", "vit_b_16",
                  "transformer_base"]
SLICES = {"v4": "v4:2x2x1", "v5e": "v5e:2x2", "v5p": "v5p:2x2x1", "v6e": "v6e:2x2"}
# Compiles that crash libtpu (the process dies: nothing to catch), skipped and reported.
CRASHES = {("resnet50 train step", "v6e"): "libtpu 0.0.42.1 segfaults compiling it (stack overflow: deep "
                                           "recursion in xla::jellyfish MigrateInstructionUsers)"}


def _bound(roof) -> str:
    by: dict[str, float] = {}
    for p in roof.points:
        by[p.bound] = by.get(p.bound, 0.0) + p.time_s
    total = sum(by.values()) or 1.0
    return ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(by.items(), key=lambda kv: -kv[1]))


def _row(name, chip, batch, a, seconds, **extra):
    roof = jaxcost.program_roofline(a)
    return {"model": name, "chip": chip, "batch": batch, "compile_s": round(seconds, 2),
            "flops": a.compiler.flops, "bytes": a.compiler.bytes_accessed,
            "peak_memory": a.memory.peak_bytes, "hbm": str(a.hbm), "fits": a.hbm.fits if a.hbm else None,
            "predicted_s": roof.predicted_s, "bound": _bound(roof), **extra}


def run(names, chips, batches, dtype, train, save, rows):
    done = {(r["model"], r["chip"], r["batch"]) for r in rows}
    jobs = [(n, c, b) for n in names for c in chips for b in batches if (n, c, b) not in done]
    for name, chip, batch in track(jobs, description="TPU compiles"):
        in_dtype = jnp.int32 if models.family(name) == "transformer" else dtype
        x = jax.ShapeDtypeStruct((batch, *models.input_shape(name)), in_dtype)
        t = time.perf_counter()
        a = jaxcost.analyze(models.build_abstract(name), x, target=f"tpu-{chip}", param_dtype=dtype, theory=False)
        rows.append(_row(name, chip, batch, a, time.perf_counter() - t))
        save(rows)
    if train:
        for chip in track([c for c in chips if ("resnet50 train step", SLICES[c]) not in
                           {(r["model"], r["chip"]) for r in rows} and ("resnet50 train step", c) not in CRASHES],
                          description="training steps"):
            target = parse_target(f"tpu-{SLICES[chip]}")
            n = target.device_count
            x = jax.ShapeDtypeStruct((8 * n, 224, 224, 3), dtype)
            step = jaxcost.train_step(models.build_abstract("resnet50"), x)
            t = time.perf_counter()
            a = step.analyze(target=target, mesh={"data": n}, in_specs=(None, None, P("data"), P("data")),
                             param_dtype=dtype, theory=False)
            coll = a.collectives()
            rows.append(_row("resnet50 train step", SLICES[chip], 8 * n, a, time.perf_counter() - t,
                             devices=n, collectives=len(coll),
                             collective_bytes=sum(c.buffer_bytes * c.count for c in coll),
                             collective_s=sum((c.seconds or 0.0) * c.count for c in coll)))
            save(rows)
    return rows


def markdown(rows, dtype) -> str:
    lines = ["# Zoo models compiled for TPUs (deviceless, libtpu)", "",
             (f"Inputs and parameters {dtype}. Figures per chip (XLA:TPU's `cost_analysis`, priced bit for bit by "
             "jaxcost); predicted = published-peak roofline of the compiled kernels (no TPU was used). "
             "`bound`: share of the predicted time by bound."), "",
             "| model | chip | batch | compile | GFLOP | bytes | HBM | predicted | bound |",
             "|---|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        extra = f" ({r['devices']} devices, {r['collectives']} all-reduces, {r['collective_s'] * 1e6:.0f} us ICI)" \
            if "devices" in r else ""
        lines.append(f"| {r['model']}{extra} | {r['chip']} | {r['batch']} | {r['compile_s']:.1f} s | "
                     f"{r['flops'] / 1e9:.2f} | {r['bytes'] / 1e6:.1f} MB | {r['hbm']} | "
                     f"{r['predicted_s'] * 1e3:.3f} ms | {r['bound']} |")
    lines += [f"| {m} | {c} | | | | | not compiled: {why} | | |" for (m, c), why in CRASHES.items()]
    mv = {(r["model"], r["chip"], r["batch"]): r["predicted_s"] for r in rows}
    names = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v2_1_4")
    points = sorted({(c, b) for (_, c, b) in mv if all((m, c, b) in mv for m in names)})
    if points:
        lines += ["", "## MobileNet V1 vs V2 on TPUs (seed 002's question), predicted ms", "",
                  "| chip | batch | V1 | V2 1.0 | V2 1.4 | V2 1.0 / V1 | V2 1.4 / V1 |", "|---|---:|---:|---:|---:|---:|---:|"]
        for c, b in points:
            v1, v2, v214 = (mv[(m, c, b)] for m in names)
            lines.append(f"| {c} | {b} | {v1 * 1e3:.3f} | {v2 * 1e3:.3f} | {v214 * 1e3:.3f} | {v2 / v1:.2f} | "
                         f"{v214 / v1:.2f} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--chips", default="v4,v5e,v5p,v6e")
    p.add_argument("--batch", default="1,8")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--resume", action="store_true", help="keep the rows of results/tpu_zoo.json, run the rest")
    args = p.parse_args()
    dtype = jnp.dtype(args.dtype)
    out = os.path.join(HERE, "results", "tpu_zoo")

    def save(rows):  # after every row: a long run that fails keeps what it measured
        with open(out + ".json", "w") as f:
            json.dump({"jax": jax.__version__, "dtype": args.dtype, "rows": rows}, f, indent=2)
        with open(out + ".md", "w") as f:
            f.write(markdown(rows, args.dtype))

    rows = []
    if args.resume and os.path.exists(out + ".json"):
        with open(out + ".json") as f:
            rows = json.load(f)["rows"]
    rows = run(args.models.split(","), args.chips.split(","), [int(b) for b in args.batch.split(",")], dtype,
               not args.no_train, save, rows)
    print(markdown(rows, args.dtype))


if __name__ == "__main__":
    main()
