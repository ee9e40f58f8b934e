"""Kernel classes: what kind of compute an op of the optimized HLO does, and how fast
this device runs that kind.

A roofline with one peak assumes every kernel reaches the matmul peak. Compilers do
not get there on every kernel: on XLA:CPU (jax 0.10, 2 cores) a dense 3x3 conv runs
near the matmul peak, a 1x1 conv at about half of it, a grouped conv lower still and a
depthwise conv at under 1 % of it -- so a roofline with one peak predicts MobileNet
ten times too fast. Each convolution and dot (fusions included) is classified:

    dot        dot / matmul
    conv       convolution, one feature group, spatial window larger than 1x1
    conv1x1    convolution, one feature group, 1x1 window
    grouped    convolution, 1 < groups, several input channels per group
    depthwise  convolution, one input channel per group
    other      the rest of the op's flops and transcendentals (elementwise, reductions)

and :func:`measure_kernel_rates` times one representative kernel per class on the
device: its *effective* FLOP/s (XLA's flop count / best time) is that class's roof.
``measure_dispatch_overhead`` times a chain of tiny unfusable kernels: the fixed cost
per kernel (thunk dispatch on CPU, launch on GPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxcost.compiler.hlo import Instruction, parse_module
from jaxcost.compiler.rules import conv_dims
from jaxcost.compiler.totals import CostTotals

CLASSES = ("dot", "conv", "conv1x1", "grouped", "depthwise", "other")


def conv_class(inst: Instruction) -> str:
    """The class of one ``convolution`` instruction (see the module docstring)."""
    groups = inst.feature_group_count
    if groups > 1:
        rhs = inst.operands[1].shape
        in_per_group = rhs.dims[conv_dims(inst.dim_labels).rhs_in]
        return "depthwise" if in_per_group == 1 else "grouped"
    return "conv1x1" if all(w.size == 1 for w in inst.window) else "conv"


def _leaves(inst: Instruction):
    """``inst`` itself, or every instruction inside the computations it calls."""
    if not inst.called:
        yield inst
        return
    for comp in inst.called:
        for sub in comp.instructions:
            yield from _leaves(sub)


def class_flops(op) -> dict[str, float]:
    """Split an op's flops (+ transcendentals) among the kernel classes.

    ``op`` is a :class:`jaxcost.compiler.ops.Op`; convolutions and dots are found
    in its instruction or the computations it calls, their flops taken from the
    op's priced inner instructions (by name); the remainder is ``other``.
    """
    total = max(op.flops, 0.0) + max(op.transcendentals, 0.0)
    inst = op.instruction
    if inst is None:
        return {"other": total}
    inner = {i.name: i.flops for i in op.inner} if op.inner else {inst.name: op.flops}
    split: dict[str, float] = {}
    for leaf in _leaves(inst):
        if leaf.opcode not in ("convolution", "dot") or leaf.name not in inner:
            continue
        cls = "dot" if leaf.opcode == "dot" else conv_class(leaf)
        split[cls] = split.get(cls, 0.0) + inner[leaf.name]
    rest = total - sum(split.values())
    if rest > 0 or not split:
        split["other"] = max(rest, 0.0)
    return split


# ---------------------------------------------------------------- calibration

def _conv(x, w, groups):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=groups,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


# Representative float32 kernels, shapes of mid-network CNN layers at batch 8:
# (input NHWC, kernel HWIO, feature groups).
CALIBRATION_SHAPES: dict[str, tuple[tuple[int, ...], tuple[int, ...], int]] = {
    "conv": ((8, 28, 28, 128), (3, 3, 128, 128), 1),
    "conv1x1": ((8, 28, 28, 256), (1, 1, 256, 256), 1),
    "grouped": ((8, 28, 28, 240), (1, 1, 80, 240), 3),
    "depthwise": ((8, 56, 56, 128), (3, 3, 1, 128), 128),
}


def _best(fn: Callable[[], Any], repeats: int) -> float:
    jax.block_until_ready(fn())  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


def _xla_flops(compiled) -> float:
    return CostTotals.from_xla(compiled.cost_analysis()).flops or 0.0


def measure_kernel_rates(device: jax.Device, repeats: int = 5) -> dict[str, float]:
    """Effective float32 FLOP/s of each convolution class on ``device``: XLA's flops
    of the representative kernel (:data:`CALIBRATION_SHAPES`) / its best time."""
    rates = {}
    for cls, (xs, ws, groups) in CALIBRATION_SHAPES.items():
        x = jax.device_put(jnp.linspace(-1.0, 1.0, math.prod(xs), dtype=jnp.float32)
                           .reshape(xs), device)
        w = jax.device_put(jnp.full(ws, 0.01, jnp.float32), device)
        compiled = jax.jit(_conv, static_argnums=2).lower(x, w, groups).compile()
        rates[cls] = _xla_flops(compiled) / _best(lambda c=compiled, x=x, w=w: c(x, w), repeats)
    return rates


def measure_dispatch_overhead(device: jax.Device, n: int = 64, repeats: int = 5) -> float:
    """Seconds per kernel of a chain of ``n`` tiny dependent matmuls, each followed by
    an elementwise op (2n kernels XLA cannot fuse into fewer)."""

    def chain(x, w):
        for _ in range(n):
            x = jnp.tanh(x @ w)
        return x

    x = jax.device_put(jnp.ones((4, 4), jnp.float32), device)
    compiled = jax.jit(chain).lower(x, x).compile()
    entry = parse_module(compiled.as_text()).entry
    kernels = sum(i.opcode not in ("parameter", "constant", "get-tuple-element", "bitcast", "tuple")
                  for i in entry.instructions)
    return _best(lambda: compiled(x, x), repeats) / max(kernels, 1)
