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


def kernel_features(inst: Instruction) -> tuple[int, ...]:
    """What sets a convolution's or dot's rate: ``(M, K, N, taps, groups)`` -- its matrix
    product (:func:`gemm_dims`), the spatial window's taps (1 for a dot) and the feature
    groups (a depthwise conv's channels: ``N`` and ``K`` alone do not show them)."""
    m, k, n = gemm_dims(inst)
    if inst.opcode == "dot":
        return m, k, n, 1, 1
    return m, k, n, max(math.prod(w.size for w in inst.window), 1), inst.feature_group_count


def _leaves(inst: Instruction):
    """``inst`` itself, or every instruction inside the computations it calls."""
    if not inst.called:
        yield inst
        return
    for comp in inst.called:
        for sub in comp.instructions:
            yield from _leaves(sub)


def class_work(op) -> list[tuple[str, float, tuple[int, ...] | None]]:
    """An op's flops (+ transcendentals) as ``(class, flops, features or None)`` items
    (:func:`kernel_features`).

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
            work.append((cls, inner[leaf.name], kernel_features(leaf)))
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


def kernel_rate(cls: str, features: tuple[int, ...] | None, table: Sequence[Sequence],
                class_rates: dict[str, float], peak: float, neighbours: int = 3) -> float:
    """FLOP/s of a ``cls`` kernel with :func:`kernel_features` ``features``, interpolated
    from the calibration kernels of its class: the geometric mean of the rates of the
    ``neighbours`` nearest in log feature space (each dimension scaled by its spread in the
    table), weighted by inverse distance; an exact match is its own rate. Without a table,
    the class rate, else ``peak``. Table rows: ``[class, M, K, N, FLOP/s, flops, seconds,
    taps, groups]`` (rows measured before taps and groups were recorded compare M, K, N)."""
    rows = [r for r in table if r[0] == cls] if features is not None else []
    if not rows:
        return class_rates.get(cls, peak)
    dims = min(len(features), *(3 + len(r[7:9]) for r in rows))
    point = [math.log(max(v, 1)) for v in features[:dims]]
    coords = [[math.log(max(v, 1)) for v in (*r[1:4], *r[7:9])][:dims] for r in rows]
    spread = [max(max(c[i] for c in coords) - min(c[i] for c in coords), 1.0) for i in range(dims)]
    dist = sorted((math.sqrt(sum(((c[i] - point[i]) / spread[i]) ** 2 for i in range(dims))), r[4])
                  for c, r in zip(coords, rows))[:neighbours]
    if dist[0][0] < 1e-9:
        return dist[0][1]
    weights = [1 / d for d, _ in dist]
    return math.exp(sum(w * math.log(rate) for w, (_, rate) in zip(weights, dist)) / sum(weights))


# ---------------------------------------------------------------- calibration

def _conv(x, w, groups):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=groups,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


# The calibration kernels are synthetic: for each class a full grid over the dimensions that
# set its rate (batch, output size, channels, kernel size, groups), of which a space-filling
# subset is timed (Halton points in log space, :func:`spread_subset`). No zoo layer
# shape was chosen to make a zoo model come out right; the zoo and other frameworks' models are
# the held-out validation (benchmarks/predict_heldout.py).
# Conv grid entries: (batch, output side, input channels per group, output channels per group,
# kernel side, groups).
_SIDES, _BATCHES = (7, 14, 28, 56, 112), (1, 8)
CONV_GRID: dict[str, list[tuple[int, int, int, int, int, int]]] = {
    "conv": [(b, hw, ci, co, k, 1) for b in _BATCHES for hw in _SIDES for ci in (3, 32, 128, 512)
             for co in (32, 128, 512) for k in (3, 5, 7)],
    "conv1x1": [(b, hw, ci, co, 1, 1) for b in _BATCHES for hw in _SIDES for ci in (16, 64, 256, 1024)
                for co in (16, 64, 256, 1024)],
    "grouped": [(b, hw, cg, cg, k, g) for b in _BATCHES for hw in _SIDES for cg in (4, 8, 16, 32, 64)
                for k in (1, 3) for g in (2, 8, 32)],
    "depthwise": [(b, hw, 1, 1, k, c) for b in _BATCHES for hw in _SIDES for k in (3, 5, 7)
                  for c in (16, 64, 256, 1024)],
}
# Dot grid entries: (batch, M, K, N).
DOT_GRID = [(b, m, k, n) for b in (1, 12) for m in (1, 16, 256, 2048) for k in (64, 512, 4096)
            for n in (64, 512, 4096)]
# Memory-bound kernels: a fused elementwise kernel ``max(x * a + b, 0)`` over arrays of these
# many float32 elements (reads and writes 8 bytes an element). Its effective bandwidth at each
# size (class ``memory``: small kernels pay fixed costs, mid-size ones run from cache) prices
# the bytes of kernels that are not convolutions or dots.
MEMORY_SIZES = tuple(4 ** i for i in range(5, 14))
KERNELS_PER_CLASS = {"conv": 16, "conv1x1": 12, "grouped": 14, "depthwise": 14, "dot": 12}
MAX_FLOPS = 2e9  # a calibration kernel stays under ~20 ms on a 2-core CPU


def _conv_flops(b, hw, ci, co, k, g) -> float:
    return 2.0 * b * hw * hw * k * k * ci * co * g


def _halton(i: int, base: int) -> float:
    f, r = 1.0, 0.0
    while i:
        f /= base
        r += f * (i % base)
        i //= base
    return r


def spread_subset(points: list[tuple], n: int) -> list[tuple]:
    """``n`` of ``points`` spread evenly over their log space: the grid point nearest each of
    the first Halton points (bases 2, 3, 5, ...) of the unit cube the grid spans, each point
    taken once (deterministic, space-filling, interior as well as corners)."""
    logs = [[math.log(max(v, 1)) for v in p] for p in points]
    dims = len(logs[0])
    lo = [min(x[i] for x in logs) for i in range(dims)]
    span = [max(x[i] for x in logs) - lo[i] or 1.0 for i in range(dims)]
    unit = [[(x[i] - lo[i]) / span[i] for i in range(dims)] for x in logs]
    primes = (2, 3, 5, 7, 11, 13, 17, 19)[:dims]
    chosen: list[int] = []
    i = 1
    while len(chosen) < min(n, len(points)):
        target = [_halton(i, b) for b in primes]
        free = [j for j in range(len(unit)) if j not in chosen]
        chosen.append(min(free, key=lambda j: sum((u - t) ** 2 for u, t in zip(unit[j], target))))
        i += 1
    return [points[j] for j in sorted(chosen)]


def _time_kernel(fn, xs, ws, device, repeats) -> tuple[float, float, tuple[int, ...]]:
    """(XLA flops, best seconds, :func:`kernel_features`) of ``fn(x, w)`` on arrays of shapes
    ``xs, ws``."""
    x = jax.device_put(jnp.linspace(-1.0, 1.0, math.prod(xs), dtype=jnp.float32).reshape(xs), device)
    w = jax.device_put(jnp.full(ws, 0.01, jnp.float32), device)
    compiled = jax.jit(fn).lower(x, w).compile()
    flops = CostTotals.from_xla(compiled.cost_analysis()).flops or 0.0
    entry = parse_module(compiled.as_text()).entry
    inner = [i for i in entry.instructions for i in _leaves(i) if i.opcode in ("convolution", "dot")]
    features = kernel_features(inner[0]) if inner else (1, 1, 1, 1, 1)
    seconds = best_time(lambda: compiled(x, w), repeats)
    # a kernel inside a model pays no Python dispatch: take off what calling a program costs
    call = best_time(lambda: _noop(x, w), repeats)
    return flops, max(seconds - call, 0.5 * seconds), features


@jax.jit
def _noop(x, w):
    return x.reshape(-1)[0] + w.reshape(-1)[0]


def calibration_kernels() -> list[tuple]:
    """``(class, fn, x shape, w shape)`` of every calibration kernel: per class,
    :data:`KERNELS_PER_CLASS` kernels of its grid (:data:`CONV_GRID`, :data:`DOT_GRID`) under
    :data:`MAX_FLOPS`, spread over the grid by :func:`spread_subset`."""
    kernels = []
    for cls, grid in CONV_GRID.items():
        grid = [p for p in grid if 1e5 <= _conv_flops(*p) <= MAX_FLOPS]
        for b, hw, ci, co, k, g in spread_subset(grid, KERNELS_PER_CLASS[cls]):
            kernels.append((cls, functools.partial(_conv, groups=g), (b, hw, hw, ci * g), (k, k, ci, co * g)))
    dots = [p for p in DOT_GRID if 1e5 <= 2.0 * math.prod(p) <= MAX_FLOPS]
    for b, m, k, n in spread_subset(dots, KERNELS_PER_CLASS["dot"]):
        kernels.append(("dot", jnp.matmul, (b, m, k) if b > 1 else (m, k), (b, k, n) if b > 1 else (k, n)))
    kernels += [("memory", _elementwise, (n,), (2,)) for n in MEMORY_SIZES]
    return kernels


def _elementwise(x, w):
    return jnp.maximum(x * w[0] + w[1], 0.0)


def measure_kernel_table(device: jax.Device, repeats: int = 3, on_kernel=None) -> list[list]:
    """Time every :func:`calibration_kernels` kernel on ``device``: rows ``[class, M, K, N,
    FLOP/s, flops, seconds, taps, groups]`` (float32, XLA flops); ``on_kernel(label)`` is
    called before each."""
    rows = []
    for cls, fn, xs, ws in calibration_kernels():
        if on_kernel is not None:
            on_kernel(f"{cls} {xs} x {ws}")
        flops, seconds, (m, k, n, taps, groups) = _time_kernel(fn, xs, ws, device, repeats)
        if cls == "memory":  # the rate of a memory-bound kernel is its bytes per second
            nbytes = 8 * math.prod(xs)
            rows.append([cls, nbytes, 1, 1, nbytes / seconds, nbytes, seconds, 1, 1])
        else:
            rows.append([cls, m, k, n, flops / seconds, flops, seconds, taps, groups])
    return rows


def memory_bandwidth(nbytes: float, table: Sequence[Sequence], default: float) -> float:
    """Effective bytes/s of a memory-bound kernel moving ``nbytes``: interpolated from the
    ``memory`` calibration kernels of similar size (:func:`kernel_rate`), else ``default``."""
    if nbytes <= 0:
        return default
    return kernel_rate("memory", (int(nbytes), 1, 1, 1, 1), table, {}, default, neighbours=2)


def class_rates(table: Sequence[Sequence]) -> dict[str, float]:
    """Each class's time-weighted rate over a :func:`measure_kernel_table` table."""
    flops: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for cls, *_, f, s in (r[:7] for r in table if r[0] != "memory"):
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
