"""Kernel classes: what kind of compute an op of the optimized HLO does, and how fast
this device runs that kind of compute at that size.

A roofline with one peak assumes every kernel reaches the matmul peak. Compilers do
not get there on every kernel: on XLA:CPU (jax 0.10, 2 cores) a 3x3 conv with 128
output channels runs near the matmul peak, one with 32 at half of it, a grouped conv
at a tenth and a depthwise conv at under 1 % -- so a roofline with one peak predicts
MobileNet ten times too fast. Each convolution and dot (fusions included) is
classified:

    dot        dot / matmul
    conv       convolution, one feature group, spatial window larger than 1x1
    conv1x1    convolution, one feature group, 1x1 window
    grouped    convolution, 1 < groups, several input channels per group
    depthwise  convolution, one input channel per group
    other      the rest of the op's flops and transcendentals (elementwise, reductions)

and sized as the matrix product it implements, ``(M, K, N)``: M output positions
(batch x output pixels, or the dot's rows and batch), K the reduction length
(taps x input channels per group), N output channels per group (or columns).
:func:`measure_kernel_table` times representative kernels of each class on the
device; a kernel's rate is that of the calibration kernel of its class nearest to it
in ``(log M, log K, log N)``, and each class's time-weighted rate (total flops / total
time) stands in when no table exists. ``other`` runs at the matmul peak: those
kernels are memory bound. :func:`measure_dispatch_overhead` times a chain of tiny
unfusable kernels: the fixed cost per kernel (thunk dispatch on CPU, launch on GPU).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxcost.compiler.hlo import Instruction, conv_dims, parse_module
from jaxcost.compiler.totals import CostTotals
from jaxcost.perf.stats import best_time

CLASSES = ("dot", "conv", "conv1x1", "grouped", "depthwise", "other")
# Instructions that launch no kernel of their own.
NO_KERNEL = frozenset({"parameter", "constant", "get-tuple-element", "tuple", "bitcast"})


def conv_class(inst: Instruction) -> str:
    """The class of one ``convolution`` instruction (see the module docstring)."""
    groups = inst.feature_group_count
    if groups > 1:
        rhs = inst.operands[1].shape
        in_per_group = rhs.dims[conv_dims(inst.dim_labels).rhs_in]
        return "depthwise" if in_per_group == 1 else "grouped"
    return "conv1x1" if all(w.size == 1 for w in inst.window) else "conv"


def gemm_dims(inst: Instruction) -> tuple[int, int, int]:
    """``(M, K, N)`` of the matrix product a ``convolution`` or ``dot`` implements."""
    out = inst.shape
    if inst.opcode == "dot":
        lhs, rhs = inst.operands[0].shape, inst.operands[1].shape
        k = math.prod(lhs.dims[d] for d in inst.int_list("lhs_contracting_dims"))
        skip = set(inst.int_list("rhs_contracting_dims")) | set(inst.int_list("rhs_batch_dims"))
        n = math.prod(s for d, s in enumerate(rhs.dims) if d not in skip)
        return max(out.elements // max(n, 1), 1), k, n
    d = conv_dims(inst.dim_labels)
    rhs = inst.operands[1].shape
    n = out.dims[d.out_feature] // inst.feature_group_count
    k = math.prod(rhs.dims[i] for i in d.rhs_spatial) * rhs.dims[d.rhs_in]
    return out.elements // max(out.dims[d.out_feature], 1), k, n


def _leaves(inst: Instruction):
    """``inst`` itself, or every instruction inside the computations it calls."""
    if not inst.called:
        yield inst
        return
    for comp in inst.called:
        for sub in comp.instructions:
            yield from _leaves(sub)


def class_work(op) -> list[tuple[str, float, tuple[int, int, int] | None]]:
    """An op's flops (+ transcendentals) as ``(class, flops, (M, K, N) or None)`` items.

    ``op`` is a :class:`jaxcost.compiler.ops.Op`; convolutions and dots are found in
    its instruction or the computations it calls, their flops taken from the op's
    priced inner instructions (by name); the remainder is one ``other`` item.
    """
    total = max(op.flops, 0.0) + max(op.transcendentals, 0.0)
    inst = op.instruction
    if inst is None:
        return [("other", total, None)]
    inner = {i.name: i.flops for i in op.inner} if op.inner else {inst.name: op.flops}
    work = []
    for leaf in _leaves(inst):
        if leaf.opcode in ("convolution", "dot") and leaf.name in inner:
            cls = "dot" if leaf.opcode == "dot" else conv_class(leaf)
            work.append((cls, inner[leaf.name], gemm_dims(leaf)))
    rest = total - sum(f for _, f, _ in work)
    if rest > 0 or not work:
        work.append(("other", max(rest, 0.0), None))
    return work


def class_flops(op) -> dict[str, float]:
    """:func:`class_work` summed per class."""
    split: dict[str, float] = {}
    for cls, flops, _ in class_work(op):
        split[cls] = split.get(cls, 0.0) + flops
    return split


def kernel_rate(cls: str, mkn: tuple[int, int, int] | None, table: Sequence[Sequence],
                class_rates: dict[str, float], peak: float) -> float:
    """FLOP/s of a ``cls`` kernel of size ``mkn``: the nearest calibration kernel of its
    class in ``(log M, log K, log N)`` (``table`` rows: class, M, K, N, FLOP/s), else
    the class rate, else ``peak``."""
    if mkn is not None:
        rows = [r for r in table if r[0] == cls]
        if rows:
            logs = [math.log(max(v, 1)) for v in mkn]
            return min(rows, key=lambda r: sum((math.log(max(v, 1)) - x) ** 2
                                               for v, x in zip(r[1:4], logs)))[4]
    return class_rates.get(cls, peak)


# ---------------------------------------------------------------- calibration

def _conv(x, w, groups):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=groups,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


# Representative float32 kernels: layer shapes of the reference CNNs, from early (large
# maps, few channels) to late (small maps, many channels), narrow (32 outputs, DenseNet's
# growth) to wide; each is timed at every batch of CALIBRATION_BATCHES (small batches
# are not just smaller: XLA:CPU's kernels reach other rates on them).
# Entries: (input NHWC at batch 8, kernel HWIO, feature groups).
CALIBRATION_BATCHES = (8, 1)
CALIBRATION_SHAPES: dict[str, tuple[tuple[tuple[int, ...], tuple[int, ...], int], ...]] = {
    "conv": (((8, 56, 56, 64), (3, 3, 64, 64), 1), ((8, 28, 28, 128), (3, 3, 128, 128), 1),
             ((8, 14, 14, 256), (3, 3, 256, 256), 1), ((8, 7, 7, 512), (3, 3, 512, 512), 1),
             ((8, 28, 28, 128), (3, 3, 128, 32), 1), ((8, 35, 35, 64), (3, 3, 64, 96), 1),
             ((8, 112, 112, 3), (7, 7, 3, 64), 1), ((8, 17, 17, 192), (7, 1, 192, 192), 1),
             ((8, 28, 28, 64), (3, 3, 64, 64), 1)),
    "conv1x1": (((8, 56, 56, 64), (1, 1, 64, 256), 1), ((8, 28, 28, 512), (1, 1, 512, 128), 1),
                ((8, 14, 14, 256), (1, 1, 256, 1024), 1), ((8, 7, 7, 2048), (1, 1, 2048, 512), 1),
                ((8, 56, 56, 64), (1, 1, 64, 64), 1), ((8, 17, 17, 768), (1, 1, 768, 192), 1),
                ((8, 28, 28, 32), (1, 1, 32, 192), 1)),
    "grouped": (((8, 28, 28, 240), (1, 1, 80, 240), 3), ((8, 28, 28, 128), (3, 3, 16, 128), 8),
                ((8, 14, 14, 512), (3, 3, 32, 512), 16), ((8, 16, 16, 576), (3, 3, 9, 64), 64)),
    "depthwise": (((8, 112, 112, 32), (3, 3, 1, 32), 32), ((8, 56, 56, 128), (3, 3, 1, 128), 128),
                  ((8, 14, 14, 512), (3, 3, 1, 512), 512), ((8, 7, 7, 960), (3, 3, 1, 960), 960)),
}

# Representative float32 matmuls at batch 8 and 1: ViT-B/16 (197 tokens, width 768, MLP
# 3072, 12 heads of 64), a transformer's 128-token batch and a classifier head.
# Entries: (lhs, rhs) shapes, batch dimensions leading.
DOT_CALIBRATION_SHAPES: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((1576, 768), (768, 2304)), ((1576, 768), (768, 3072)), ((1576, 3072), (3072, 768)),
    ((96, 197, 64), (96, 64, 197)), ((96, 197, 197), (96, 197, 64)),
    ((1024, 512), (512, 2048)), ((8, 4096), (4096, 4096)),
    ((197, 768), (768, 3072)), ((12, 197, 64), (12, 64, 197)), ((1, 4096), (4096, 4096)),
)


def _time_kernel(fn, xs, ws, device, repeats) -> tuple[float, float, tuple[int, int, int]]:
    """(XLA flops, best seconds, (M, K, N)) of ``fn(x, w)`` on arrays of shapes ``xs, ws``."""
    x = jax.device_put(jnp.linspace(-1.0, 1.0, math.prod(xs), dtype=jnp.float32).reshape(xs), device)
    w = jax.device_put(jnp.full(ws, 0.01, jnp.float32), device)
    compiled = jax.jit(fn).lower(x, w).compile()
    flops = CostTotals.from_xla(compiled.cost_analysis()).flops or 0.0
    entry = parse_module(compiled.as_text()).entry
    inner = [i for i in entry.instructions for i in _leaves(i) if i.opcode in ("convolution", "dot")]
    mkn = gemm_dims(inner[0]) if inner else (1, 1, 1)
    return flops, best_time(lambda: compiled(x, w), repeats), mkn


def calibration_kernels() -> list[tuple]:
    """``(class, fn, x shape, w shape)`` of every calibration kernel: each
    :data:`CALIBRATION_SHAPES` kernel at each :data:`CALIBRATION_BATCHES`, and every
    :data:`DOT_CALIBRATION_SHAPES` kernel."""
    kernels = [(cls, functools.partial(_conv, groups=g), (b, *xs[1:]), ws)
               for b in CALIBRATION_BATCHES
               for cls, shapes in CALIBRATION_SHAPES.items() for xs, ws, g in shapes]
    return kernels + [("dot", jnp.matmul, a, b) for a, b in DOT_CALIBRATION_SHAPES]


def measure_kernel_table(device: jax.Device, repeats: int = 3, on_kernel=None) -> list[list]:
    """Time every :func:`calibration_kernels` kernel on ``device``: rows ``[class, M, K, N,
    FLOP/s, flops, seconds]`` (float32, XLA flops); ``on_kernel(label)`` is called before each."""
    rows = []
    for cls, fn, xs, ws in calibration_kernels():
        if on_kernel is not None:
            on_kernel(f"{cls} {xs} x {ws}")
        flops, seconds, (m, k, n) = _time_kernel(fn, xs, ws, device, repeats)
        rows.append([cls, m, k, n, flops / seconds, flops, seconds])
    return rows


def class_rates(table: Sequence[Sequence]) -> dict[str, float]:
    """Each class's time-weighted rate over a :func:`measure_kernel_table` table."""
    flops: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for cls, *_, f, s in table:
        flops[cls] = flops.get(cls, 0.0) + f
        seconds[cls] = seconds.get(cls, 0.0) + s
    return {cls: flops[cls] / seconds[cls] for cls in flops}


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
    kernels = sum(i.opcode not in NO_KERNEL for i in entry.instructions)
    return best_time(lambda: compiled(x, x), repeats) / max(kernels, 1)
