"""Chains of matmuls run as one kernel -- convolutions, and attention's two products: how their
time compares with the same convs run as separate kernels, and with jaxcost's price for them.

    python benchmarks/chain_fusions.py [--budget 0.3]

XLA:CPU (jax 0.10) hands a chain of convolutions (conv, bias-free ReLU, conv, ...) to one YNNPACK
kernel when a reduction follows it -- a global mean, a pool -- and as separate kernels when none
does. Each chain here is timed both ways: ``fused`` is ``sum(relu(conv(...relu(conv(x)))))``
over the spatial axes, ``separate`` the same chain without the sum. Their ratio is what fusing
the chain costs or saves; ``predicted / fused`` is how far jaxcost's price of the fused kernel
(the longer of its convs priced as separate kernels and its weights read row by row at the
calibrated chain rate: ``jaxcost.perf.pricing``, which flags such kernels) is from its time, and
``alone / fused`` how far the convs priced as separate kernels alone are (the pricing before
calibration version 15). Both are the median of timed runs (jaxcost.benchmark) on this machine, with the
peaks cached by ``jaxcost peaks``. Attention (``softmax(q k^T) v``, batched over images and
heads) is one kernel on XLA:CPU from a few images up; it has no separate form to compare with,
only jaxcost's price: the attention class's rate (``jaxcost.perf.calibrate.ATTENTION_GRID``, whose
token counts are not these), held out. Writes benchmarks/results/chain_fusions.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import jax
import jax.numpy as jnp
from _results import errors, machine, save
from jax import lax
from rich.progress import track

import jaxcost
from jaxcost.perf import get_peaks
from jaxcost.perf.kernels import chained_matmuls, streamed_weights
from jaxcost.perf.predict import program_roofline

# (batch, map side, channels, window sides of the chain's convs): 3x3 and 1x1 pairs, at batch 1
# on the small maps of a network's last stage and larger ones, and at batch 2, 4 and 8; 3x3 pairs
# on the smallest maps, of 1024 channels, and of a VGG's first stage.
CHAINS = ([(1, side, c, ks) for side in (4, 7, 10, 14, 28) for c in (256, 512) for ks in ((3, 3), (1, 1), (3, 1))]
          + [(1, 7, 512, (3, 3, 3)), (1, 7, 128, (3, 3, 3))]
          + [(b, side, c, (3, 3)) for b in (2, 4, 8) for side in (7, 14) for c in (256, 512)]
          + [(1, 3, 512, (3, 3)), (1, 5, 512, (3, 3)), (1, 7, 1024, (3, 3)), (1, 14, 1024, (3, 3)),
             (1, 56, 64, (3, 3)), (8, 56, 64, (3, 3))])
# (batch, tokens, heads, head dim): ViT-B/16, a Transformer-base encoder, Swin-T's windows.
ATTENTION = [(2, 197, 12, 64), (4, 197, 12, 64), (8, 197, 12, 64), (8, 128, 8, 64), (64, 49, 3, 32)]


def chain(windows, reduce: bool):
    def f(ws, x):
        for w in ws:
            x = jax.nn.relu(lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
        return x.sum((1, 2)) if reduce else x

    f.__name__ = f"chain{'_'.join(map(str, windows))}{'_sum' if reduce else ''}"
    return f


def attention(q, k, v):
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), axis=-1), v)


def measure_attention(b: int, t: int, h: int, d: int, budget: float, peaks) -> dict:
    qkv = [jax.ShapeDtypeStruct((b, t, h, d), jnp.float32)] * 3
    a = jaxcost.analyze(attention, *qkv, theory=False)
    row = {"batch": b, "tokens": t, "heads": h, "head_dim": d,
           "fused_kernels_chained": max(chained_matmuls(op.instruction) for op in a.ops if op.instruction),
           "fused_predicted_s": program_roofline(a, peaks).predicted_s,
           "fused_s": jaxcost.benchmark(attention, *qkv, time_budget_s=budget, min_repeats=5).stats.median}
    row["predicted_over_fused"] = row["fused_predicted_s"] / row["fused_s"]
    return row


def measure(b: int, side: int, c: int, windows, budget: float, peaks, alone) -> dict:
    """One chain timed fused and as separate kernels; priced with ``peaks`` and with ``alone``
    (the same calibration without its chain kernels: each conv priced as if it ran alone)."""
    x = jax.ShapeDtypeStruct((b, side, side, c), jnp.float32)
    ws = [jax.ShapeDtypeStruct((k, k, c, c), jnp.float32) for k in windows]
    row = {"batch": b, "side": side, "channels": c, "windows": list(windows),
           "weights_mb": sum(k * k * c * c * 4 for k in windows) / 1e6}
    for label, reduce in (("fused", True), ("separate", False)):
        fn = chain(windows, reduce)
        a = jaxcost.analyze(fn, ws, x, theory=False)
        row[f"{label}_kernels_chained"] = max(chained_matmuls(op.instruction) for op in a.ops if op.instruction)
        row[f"{label}_predicted_s"] = program_roofline(a, peaks).predicted_s
        row[f"{label}_s"] = jaxcost.benchmark(fn, ws, x, time_budget_s=budget, min_repeats=5).stats.median
        if reduce:
            row["streamed_mb"] = max(streamed_weights(op.instruction) for op in a.ops if op.instruction) / 1e6
            row["fused_alone_predicted_s"] = program_roofline(a, alone).predicted_s
    row["fused_over_separate"] = row["fused_s"] / row["separate_s"]
    row["predicted_over_fused"] = row["fused_predicted_s"] / row["fused_s"]
    row["alone_predicted_over_fused"] = row["fused_alone_predicted_s"] / row["fused_s"]
    return row


def law_errors(rows, key: str) -> dict:
    """How far ``key`` (a predicted / fused ratio) is from 1 over the fused chains."""
    return errors([abs(r[key] - 1) for r in rows if r["fused_kernels_chained"]])


def markdown(rows, attn) -> str:
    ratios = [r["fused_over_separate"] for r in rows if r["fused_kernels_chained"]]
    slow = [r for r in rows if r["fused_kernels_chained"] and r["fused_over_separate"] > 1.25]
    law, alone = law_errors(rows, "predicted_over_fused"), law_errors(rows, "alone_predicted_over_fused")
    lines = [f"# Chains of convolutions fused into one kernel ({machine()})", "",
             ("Each chain timed as one kernel (`fused`: a spatial sum follows it, so XLA:CPU fuses it into one "
              "YNNPACK kernel) and as separate kernels (`separate`: the same chain alone). Median runs. "
              "`predicted`: `jaxcost.program_roofline` of the fused program: the longer of its convs priced as "
              "separate kernels and its `streamed` weights (`jaxcost.perf.kernels.streamed_weights`: read row by "
              "row where a windowed conv takes another's output) at the chain rate of the calibration's chain "
              "kernels (`jaxcost.perf.calibrate.CHAINS`, two of the shapes below: not held out); `alone`: "
              "the same calibration without its chain kernels, every conv priced as if it ran alone (attention "
              "at the rate of its own calibrated class)."), "",
             (f"Predicted / fused over the {law['n']} fused chains: {law['within_10']:.0%} within ±10 %, "
              f"{law['within_25']:.0%} within ±25 %, median error {law['median_abs_error']:.0%}; priced as if each "
              f"conv ran alone: {alone['within_10']:.0%}, {alone['within_25']:.0%}, "
              f"{alone['median_abs_error']:.0%}."), "",
             f"Fused over separate: {min(ratios):.2f}x to {max(ratios):.2f}x, median {statistics.median(ratios):.2f}x "
             f"over {len(ratios)} chains; {len(slow)} ran over 1.25x slower fused: "
             + ", ".join(f"b{r['batch']} {r['side']}x{r['side']}x{r['channels']} {r['windows']}" for r in slow) + ". "
             + "The same 3x3 pair on 7x7x512 maps ran "
             + ", ".join(f"{r['fused_over_separate']:.2f}x at batch {r['batch']}" for r in rows
                         if (r["side"], r["channels"], r["windows"]) == (7, 512, [3, 3])) + ".",
             "", ("| batch | map | channels | windows | weights | streamed | fused | separate | fused/separate "
                  "| predicted/fused | alone/fused |"),
             "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['side']}x{r['side']} | {r['channels']} | {r['windows']} | "
                     f"{r['weights_mb']:.1f} MB | {r['streamed_mb']:.0f} MB | {1e3 * r['fused_s']:.2f} ms | "
                     f"{1e3 * r['separate_s']:.2f} ms | {r['fused_over_separate']:.2f} | {r['predicted_over_fused']:.2f} | "
                     f"{r['alone_predicted_over_fused']:.2f} |")
    lines += ["", "## Attention", "", "| batch | tokens | heads | head dim | one kernel | measured | predicted/measured |",
              "|---:|---:|---:|---:|---|---:|---:|"]
    for r in attn:
        lines.append(f"| {r['batch']} | {r['tokens']} | {r['heads']} | {r['head_dim']} | "
                     f"{'yes' if r['fused_kernels_chained'] else 'no'} | {1e3 * r['fused_s']:.2f} ms | "
                     f"{r['predicted_over_fused']:.2f} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=0.3, help="seconds of timed runs per program")
    args = p.parse_args()
    peaks = get_peaks(jax.default_backend(), measure=True)
    alone = dataclasses.replace(peaks, kernel_table=[r for r in peaks.kernel_table if r[0] != "chain"])
    rows = [measure(*c, args.budget, peaks, alone) for c in track(CHAINS, description="conv chains")]
    attn = [measure_attention(*c, args.budget, peaks) for c in track(ATTENTION, description="attention")]
    save("chain_fusions", {"machine": machine(), "rows": rows, "attention": attn}, markdown(rows, attn))


if __name__ == "__main__":
    main()
