"""Calibration: synthetic kernels of every class (:mod:`jaxcost.perf.kernels`) timed on the device.

The kernels are synthetic: for each class a full grid over the dimensions that set its rate
(batch, output size, channels, kernel size, groups), of which a space-filling subset is timed
(Halton points in log space, :func:`spread_subset`). No model's layer shape was chosen to make
a model come out right; the zoo and other frameworks' models are the held-out validation
(``benchmarks/predict_heldout.py``).

Each kernel is timed as it runs inside a model: its result is written into a donated buffer
the program already holds. A kernel timed on its own otherwise gets a fresh output buffer on
every call, and an allocation past the allocator's threshold (tens of MB on glibc) comes from
the OS and is paged in as it is written -- on this 2-core CPU a 64 MB output costs 17 ms more,
a third of the kernel. Inside a compiled program the temporaries live in one allocation per
call (``memory_analysis().temp_size_in_bytes``), paged in once per call, whichever kernel
first writes them: the ``fault`` rows measure that cost per allocation size (a fresh output
minus a donated one), and :func:`jaxcost.perf.predict.program_roofline` charges it once for
the program's temporaries. Measured here: a 67 MB intermediate between two matmuls makes the
program 21 ms slower than its two kernels run in place.

Table rows: ``[class, M, K, N, rate, work, seconds, taps, groups, impl, pixels]``:

    conv, conv1x1, grouped, depthwise, dot,  rate in FLOP/s, work = XLA flops,
    window                                   M, K, N, taps, groups, pixels = kernel_features
    attention                                rate in FLOP/s of its two dots, work = their flops,
                                             M, K, N, ... = kernel_features of q k^T
    memory                                   an elementwise kernel: rate in bytes/s,
                                             M = work = bytes read and written
    fault                                    paging in a fresh allocation of M bytes:
                                             seconds (>= 0), rate = M / seconds (0: free)
    chain                                    a chain of convs run as one kernel: rate in bytes/s,
                                             M = work = the weight bytes it reads row by row
                                             (kernels.streamed_weights)
"""

from __future__ import annotations

import functools
import math
import os
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from jaxcost.compiler.hlo import parse_module
from jaxcost.compiler.totals import CostTotals
from jaxcost.perf.kernels import (
    CLASSED,
    LOOP,
    NO_KERNEL,
    is_attention,
    kernel_features,
    kernel_impl,
    leaves,
    streamed_weights,
)
from jaxcost.perf.stats import best_time, median_over_passes, time_runs

# Bumped whenever the calibration kernels or the table's rows change: cached tables of an
# older version are measured again (jaxcost.perf.peaks.get_peaks).
CALIBRATION_VERSION = 16  # 6: median runs; 7: large kernels; 8: pooling, synthetic programs; 9: attention;
# 10: unpadded convs; 11: the synthetic programs' kernels priced at the fitted law's time (Rates.seconds);
# 12: grouped convs on large maps, the step past a cache (rates.SPILL_CLASSES); since then the 128 MiB
# paging row is not measured (FAULT_SIZES: a version-12 table with it prices the same). 13: three
# quarters of the spread-out kernels (KERNELS_PER_CLASS, UNPADDED_KERNELS): ~3 s less calibration,
# held-out accuracy unchanged (benchmarks/results/calibration_ablation.md). 14: loop kernels (LOOP_CELLS,
# LOOP_MEMORY_SIZES). 15: chains of convs run as one kernel (CHAINS). 16: 1x1 convs of every power-of-two
# channel count and WIDE_KERNELS; the rate law's serial factor (rates.SERIAL_CLASSES).

# Conv grid entries: (batch, output side, input channels per group, output channels per group,
# kernel side, groups). Sides from 3 (a window larger than the map: XLA's own conv emitter on
# CPU rather than YNNPACK) to 112.
_SIDES, _BATCHES = (3, 5, 7, 14, 28, 56, 112), (1, 8)
_CHANNELS = tuple(2 ** i for i in range(4, 12))  # 16-2048 (1x1 convs): weights of every power of two
CONV_GRID: dict[str, list[tuple[int, int, int, int, int, int]]] = {
    "conv": [(b, hw, ci, co, k, 1) for b in _BATCHES for hw in _SIDES for ci in (3, 32, 128, 512)
             for co in (32, 128, 512) for k in (3, 5, 7)],
    "conv1x1": [(b, hw, ci, co, 1, 1) for b in _BATCHES for hw in _SIDES for ci in _CHANNELS for co in _CHANNELS],
    "grouped": [(b, hw, cg, cg, k, g) for b in _BATCHES for hw in _SIDES for cg in (4, 8, 16, 32, 64)
                for k in (1, 3) for g in (2, 8, 32)],
    "depthwise": [(b, hw, 1, 1, k, c) for b in _BATCHES for hw in _SIDES for k in (3, 5, 7)
                  for c in (16, 64, 256, 1024)],
}
# Unpadded conv grid entries: (batch, output side, input channels, output channels, kernel side,
# stride) of dense convs that pad no side ("VALID"; patchify: stride = kernel side), which
# YNNPACK runs on another path than padded ones (:func:`jaxcost.perf.kernels.is_unpadded`):
# their rates are interpolated among these kernels of their own kind (jaxcost.perf.rates).
UNPADDED_GRID = [(b, hw, ci, co, k, s) for b in _BATCHES for hw in (7, 14, 28, 56, 112) for ci in (3, 32, 128, 512)
                 for co in (32, 128, 512) for k in (2, 3, 5, 7) for s in (1, 2)]
UNPADDED_KERNELS, UNPADDED_MAX_FLOPS = 15, 1.2e9  # 1-50 ms: unpadded convs run at 20-100 GFLOP/s here
# Dot grid entries: (batch, M, K, N): ``batch`` independent (M x K) @ (K x N) products; M = 1
# is a matrix-vector product, memory bound on the K x N operand.
DOT_GRID = [(b, m, k, n) for b in (1, 12, 96) for m in (1, 8, 64, 512, 4096) for k in (64, 512, 4096)
            for n in (64, 512, 4096)]
# Pooling grid entries: (batch, input side, channels, window side, stride): a max-pool, of the
# windows CNNs use (2x2 stride 2, 3x3 stride 1 and 2).
POOL_GRID = [(b, hw, c, k, s) for b in _BATCHES for hw in (7, 14, 28, 56, 112) for c in (16, 64, 256, 1024)
             for k, s in ((2, 2), (3, 1), (3, 2))]
# Attention grid entries: (batch, tokens, heads, head dim): ``softmax(q k^T) v`` over ``batch x
# heads`` sequences. Picked kernels that XLA:CPU does not compile into one kernel (about a third
# of this grid: the fewer and shorter sequences) are dropped.
ATTENTION_GRID = [(b, t, h, d) for b in (4, 8, 16, 32) for t in (36, 64, 100, 144, 256) for h in (4, 6, 16)
                  for d in (32, 64)]
# Spread-out kernels per class. Version 12 timed a third more (conv 32, conv1x1 28, grouped 38, depthwise
# 32, dot 32, window 18, unpadded 20): its tables cut down to these kernels (spread_subset's picks are
# nested) and priced against held-out runs' measured times did as well as whole
# (benchmarks/calibration_ablation.py); their timing and compiling took ~3.5 s of ~27.
KERNELS_PER_CLASS = {"conv": 24, "conv1x1": 21, "grouped": 28, "depthwise": 24, "dot": 24, "window": 13,
                     "attention": 14}
# Largest calibration kernel per class, in flops: ~20-50 ms on a 2-core CPU at the class's rate
# (depthwise and grouped convs run 100x and 10x below a dense one's).
MAX_FLOPS = {"conv": 6e9, "conv1x1": 4e9, "dot": 4e9, "grouped": 2e8, "depthwise": 3e7, "window": 5e7,
             "attention": 3e8}
MIN_FLOPS = 1e5
# A few large kernels per class, between MAX_FLOPS and these (50-150 ms: maps that spill the
# caches), timed fewer times (:data:`LONG_S`).
LARGE_FLOPS = {"conv": 1.5e10, "conv1x1": 1.2e10, "dot": 2e10}
LARGE_KERNELS = {"conv": 4, "conv1x1": 2, "dot": 2}
# A few more kernels whose window is larger than their map (a depthwise conv there is XLA's own
# emitter on CPU, not YNNPACK: too few of them among the spread-out picks).
SMALL_MAP_KERNELS = {"depthwise": 8}
# A few more windowed kernels whose input is larger than the spread-out picks' (up to 3.2 MB for
# grouped convs: past that one does 2e8 flops or more), where a kernel may slow down by a step
# (jaxcost.perf.rates.SPILL_CLASSES): inputs past LARGE_MAP_BYTES, up to LARGE_MAP_FLOPS (40-120 ms
# at the 2-5 GFLOP/s of thin groups).
LARGE_MAP_KERNELS, LARGE_MAP_BYTES, LARGE_MAP_FLOPS = {"grouped": 3}, 4 << 20, 3e8
# A few more kernels with WIDE_BYTES of weights or more, where a matrix product may be split among
# threads (jaxcost.perf.rates.SERIAL_CLASSES): of the spread-out 1x1 convs 2-4 have as many, too
# few to place the size at and below which a kernel runs on one thread.
WIDE_KERNELS, WIDE_BYTES = {"conv1x1": 6}, 256 << 10
# A kernel slower than LONG_S is run once in each pass (after a warm-up run in the first). 5 ms would
# save ~1.6 s, but priced two recorded calibrations worse within ±25 % (70 % and 71 % against 72 % and
# 77 %; benchmarks/results/calibration_ablation_recorded.md): kept at 20 ms.
LONG_S = 0.02
# Memory-bound kernels: a fused elementwise kernel ``max(x * a + b, 0)`` over arrays of these
# many float32 elements (reads and writes 8 bytes an element). Its effective bandwidth at each
# size (small kernels pay fixed costs, mid-size ones run from cache) prices the bytes of
# kernels that are not convolutions or dots. Timed alone, a kernel that XLA splits over threads (0.5 MB
# and up here) also pays for waking them, ~80-100 us a call that one inside a program does not pay
# (benchmarks/results/in_program_kernels.md); the in-program factor (jaxcost.perf.programs) absorbs
# it on the whole. Rows at their in-loop time instead priced held-out run 12 worse (README).
MEMORY_SIZES = tuple(4 ** i for i in range(2, 13))
# Loop kernels: the kernels of a while loop's body run trip after trip on the same operands, with
# no call between them; timed alone a kernel pays its call and the wake-up of its threads, and
# reads weights it left in the caches only if it ran just before (recurrent networks' loops ran at
# 0.3-0.9x their kernels' alone prices: benchmarks/results/rnn_loops.md). So a recurrent cell's trip
# is calibrated as a trip: ``h = tanh((x[t] @ wx + h @ wh)[:, :k])``, the two dots of an LSTM or GRU
# cell on two weights (a trip's dots share the caches: one dot a trip ran up to 1.5x faster than
# each of a Keras LSTM's two), run LOOP_TRIPS times in a ``fori_loop``, per trip, for the
# LOOP_CELLS (batch, state size k, gates: N = gates * k), whose dots span batch 1-64, k 128-1024
# and N 128-4096 (a dot of a loop's body outside that box is priced as timed alone); and every
# other MEMORY_SIZES elementwise kernel up to 8 MB as a loop trip too (LOOP_MEMORY_SIZES: a larger one
# is priced at the 8 MB trip's bandwidth; a 128 MB trip took ~0.5 s of the calibration). Their rows
# are of their kernel's kind plus kernels.LOOP.
LOOP_TRIPS = 16
LOOP_CELLS = (  # batch 1: XLA's own dot (a matrix-vector product: 44-49 GB/s, but 29 GB/s at k 384, N 1152)
    (1, 128, 1), (1, 256, 4), (1, 384, 3), (1, 512, 4), (1, 768, 3), (1, 1024, 4),
    (4, 256, 1), (4, 1024, 4), (16, 128, 1), (16, 512, 3), (64, 128, 3), (64, 256, 4))  # batch 4-64: YNNPACK's
LOOP_MEMORY_SIZES = MEMORY_SIZES[:-1:2]
# Chains of convs run as one kernel (kernels.streamed_weights): (batch, map side, channels, window
# side) of a pair of convs, the second fed by the first, summed over the map. At batch 1 on small
# maps they read their weights row by row: the rate of that reading is what they calibrate (on a
# 2-core x86 VM 4x4x512: 7.7 ms for 75 MB, 7x7x256: 2.4 ms for 33 MB; benchmarks/results/chain_fusions.md).
CHAINS = ((1, 4, 512, 3), (1, 7, 256, 3))
# Allocations whose paging-in is measured, in bytes. Up to 64 MiB: past tens of MiB the cost per
# byte is flat (4-7 GB/s on a 2-core x86 VM, the 64 and 128 MiB rows within a third of each other) and
# a larger allocation is priced at the largest row's cost per byte (rates.first_touch_seconds). A
# 128 MiB row took 1.2 s of a ~27 s calibration; without it, runs 9 and 10 of the held-out models
# priced again from their own calibrations (benchmarks/results/fault64_run9.md, fault64_run10.md)
# moved by at most 1.1 % (SE-ResNet-152 at batch 8, the largest temporaries), 116 of 118 by under 0.1 %.
FAULT_SIZES = tuple(2 ** i for i in (20, 23, 25, 26))
# Each kernel is timed at least this many times, and on while the runs took under BUDGET_S.
REPEATS, BUDGET_S = 3, 0.01


def _conv(x, w, groups, stride=1, padding="SAME"):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), padding, feature_group_count=groups,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _chain(x, ws):
    """Two convs, the second fed by the first, summed over the map: XLA:CPU runs the three as
    one kernel (a chain followed by a reduction, :func:`jaxcost.perf.kernels.streamed_weights`)."""
    for w in ws:
        x = jax.nn.relu(_conv(x, w, 1))
    return jnp.sum(x, axis=(1, 2))


def _pool(x, w, k, stride):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, k, k, 1), (1, stride, stride, 1), "SAME")


def _pool_flops(b, hw, c, k, s) -> float:
    return b * math.ceil(hw / s) ** 2 * c * (k * k - 1)


def _attention(x, w):
    """``softmax(q k^T) v`` of ``q = x`` and ``k, v = w`` (tokens x heads x head dim per image)."""
    scores = jnp.einsum("bqhd,bkhd->bhqk", x, w[0])
    return jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), w[1])


def _attention_flops(b, t, h, d) -> float:
    return 4.0 * b * h * t * t * d  # two products of 2 t^2 d flops per sequence


def _elementwise(x, w):
    return jnp.maximum(x * w[0] + w[1], 0.0)


CELL_DOTS = 2  # dots in a trip of _cell_trips: its row is one of them (flops and seconds halved)


def _cell_trips(x, w):
    """A recurrent cell's trip, :data:`LOOP_TRIPS` times: ``h = tanh((x[t] @ wx + h @ wh)[:, :k])``
    (``x``: the inputs of every trip, ``w``: ``(wx, wh)``), :data:`CELL_DOTS` dots of one shape."""
    wx, wh = w
    k = x.shape[-1]
    return jax.lax.fori_loop(0, LOOP_TRIPS, lambda t, h: jnp.tanh((x[t] @ wx + h @ wh)[:, :k]), x[0])


def _elementwise_trips(x, w):
    """:func:`_elementwise` as a loop's body, :data:`LOOP_TRIPS` trips."""
    return jax.lax.fori_loop(0, LOOP_TRIPS, lambda _, y: _elementwise(y, w), x)


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
    taken once (deterministic, space-filling, interior as well as corners). A dimension that
    repeats an earlier one on every point (a grouped conv's equal input and output channels)
    counts once: two Halton coordinates for it would pull every pick to its middle values."""
    if not points or n <= 0:
        return []
    columns = list(zip(*points))
    keep = [i for i, c in enumerate(columns) if c not in columns[:i]]
    logs = [[math.log(max(p[i], 1)) for i in keep] for p in points]
    dims = len(logs[0])
    lo = [min(x[i] for x in logs) for i in range(dims)]
    span = [max(x[i] for x in logs) - lo[i] or 1.0 for i in range(dims)]
    unit = [[(x[i] - lo[i]) / span[i] for i in range(dims)] for x in logs]
    primes = (2, 3, 5, 7, 11, 13, 17, 19)[:dims]
    unit = np.array(unit)
    taken = np.zeros(len(unit), bool)
    for i in range(1, min(n, len(points)) + 1):
        d = ((unit - [_halton(i, b) for b in primes]) ** 2).sum(axis=1)
        d[taken] = np.inf
        taken[int(np.argmin(d))] = True  # the first of equally near points, as min() takes
    return [p for p, t in zip(points, taken) if t]


def conv_kernel(cls: str, point: tuple) -> tuple:
    """``(class, fn, x shape, w shape)`` of the :data:`CONV_GRID` entry ``point`` of ``cls``."""
    b, hw, ci, co, k, g = point
    return cls, functools.partial(_conv, groups=g), (b, hw, hw, ci * g), (k, k, ci, co * g)


def dot_kernel(point: tuple) -> tuple:
    """``(class, fn, x shape, w shape)`` of the :data:`DOT_GRID` entry ``point``."""
    b, m, k, n = point
    return "dot", jnp.matmul, (b, m, k) if b > 1 else (m, k), (b, k, n) if b > 1 else (k, n)


def pool_kernel(point: tuple) -> tuple:
    """``(class, fn, x shape, w shape)`` of the :data:`POOL_GRID` entry ``point``."""
    b, hw, c, k, s = point
    return "window", functools.partial(_pool, k=k, stride=s), (b, hw, hw, c), (2,)


def grid_flops(cls: str, point: tuple) -> float:
    """The flops (``2 M K N groups``; a pool's compares) of the grid entry ``point`` of ``cls``."""
    if cls == "dot":
        return 2.0 * math.prod(point)
    return _pool_flops(*point) if cls == "window" else _conv_flops(*point)


def grid_weight_bytes(point: tuple) -> int:
    """The float32 bytes of the weights of the :data:`CONV_GRID` entry ``point``."""
    _, _, ci, co, k, g = point
    return 4 * k * k * ci * co * g


def grid_input_bytes(point: tuple) -> int:
    """The float32 bytes of the input of the :data:`CONV_GRID` entry ``point`` (stride 1: as many
    pixels as its output; ``jaxcost.perf.rates`` reads the same from a kernel's features)."""
    b, hw, ci, _, _, g = point
    return 4 * b * hw * hw * ci * g


def calibration_kernels() -> list[tuple]:
    """``(class, fn, x shape, w shape)`` of every calibration kernel: per class,
    :data:`KERNELS_PER_CLASS` kernels of its grid (:data:`CONV_GRID`, :data:`DOT_GRID`) between
    :data:`MIN_FLOPS` and the class's :data:`MAX_FLOPS` and :data:`LARGE_KERNELS` up to its
    :data:`LARGE_FLOPS`, spread over the grid by :func:`spread_subset`, and
    :data:`SMALL_MAP_KERNELS` more whose window is larger than their map, :data:`LARGE_MAP_KERNELS`
    whose input is larger than the picks', :data:`WIDE_KERNELS` with wide weights; :data:`UNPADDED_KERNELS`
    unpadded dense convs of :data:`UNPADDED_GRID` up to :data:`UNPADDED_MAX_FLOPS`; max-pools of
    :data:`POOL_GRID` and attention of :data:`ATTENTION_GRID` alike; then the ``memory``
    kernels (:data:`MEMORY_SIZES`); then the loop kernels (:data:`LOOP_CELLS`, and
    :data:`LOOP_MEMORY_SIZES` memory kernels as loop trips)."""
    kernels = []
    for cls, grid in CONV_GRID.items():
        small = [p for p in grid if MIN_FLOPS <= grid_flops(cls, p) <= MAX_FLOPS[cls]]
        large = [p for p in grid if MAX_FLOPS[cls] < grid_flops(cls, p) <= LARGE_FLOPS.get(cls, 0)]
        picked = spread_subset(small, KERNELS_PER_CLASS[cls])
        window_larger = [p for p in small if p[1] < p[4] and p not in picked]
        large_map = [p for p in grid if p[4] > 1 and grid_input_bytes(p) > LARGE_MAP_BYTES
                     and MIN_FLOPS <= grid_flops(cls, p) <= LARGE_MAP_FLOPS]
        wide = [p for p in small if grid_weight_bytes(p) >= WIDE_BYTES and p not in picked]
        kernels += [conv_kernel(cls, p) for p in picked + spread_subset(large, LARGE_KERNELS.get(cls, 0))
                    + spread_subset(window_larger, SMALL_MAP_KERNELS.get(cls, 0))
                    + spread_subset(large_map, LARGE_MAP_KERNELS.get(cls, 0))
                    + spread_subset(wide, WIDE_KERNELS.get(cls, 0))]
    unpadded = [p for p in UNPADDED_GRID if MIN_FLOPS <= _conv_flops(*p[:5], 1) <= UNPADDED_MAX_FLOPS]
    for b, hw, ci, co, k, s in spread_subset(unpadded, UNPADDED_KERNELS):
        side = (hw - 1) * s + k  # the input side whose unpadded conv has ``hw`` outputs a side
        kernels.append(("conv", functools.partial(_conv, groups=1, stride=s, padding="VALID"), (b, side, side, ci),
                        (k, k, ci, co)))
    small = [p for p in DOT_GRID if MIN_FLOPS <= grid_flops("dot", p) <= MAX_FLOPS["dot"]]
    large = [p for p in DOT_GRID if MAX_FLOPS["dot"] < grid_flops("dot", p) <= LARGE_FLOPS["dot"]]
    kernels += [dot_kernel(p) for p in spread_subset(small, KERNELS_PER_CLASS["dot"])
                + spread_subset(large, LARGE_KERNELS["dot"])]
    pools = [p for p in POOL_GRID if MIN_FLOPS <= grid_flops("window", p) <= MAX_FLOPS["window"]]
    kernels += [pool_kernel(p) for p in spread_subset(pools, KERNELS_PER_CLASS["window"])]
    attention = [p for p in ATTENTION_GRID if MIN_FLOPS <= _attention_flops(*p) <= MAX_FLOPS["attention"]]
    for b, t, h, d in spread_subset(attention, KERNELS_PER_CLASS["attention"]):
        kernels.append(("attention", _attention, (b, t, h, d), (2, b, t, h, d)))
    kernels += [("memory", _elementwise, (n,), (2,)) for n in MEMORY_SIZES]
    kernels += [("dot", _cell_trips, (LOOP_TRIPS, m, k), ((k, g * k),) * 2) for m, k, g in LOOP_CELLS]
    kernels += [("memory", _elementwise_trips, (n,), (2,)) for n in LOOP_MEMORY_SIZES]
    kernels += [("chain", _chain, (b, side, side, c), ((k, k, c, c),) * 2) for b, side, c, k in CHAINS]
    return kernels


def constant(shape, value, device) -> jax.Array:
    """A float32 array of ``shape`` filled with ``value`` on ``device``, written once (into the
    device's buffer: a broadcast scalar, no host array to fill and copy)."""
    return jax.device_put(np.broadcast_to(np.float32(value), shape), device)


def _inputs(xs, ws, device, make=constant):
    """Constant inputs of shapes ``xs`` and ``ws`` (or a tuple of weights' shapes, each its own
    buffer) on ``device``, made by ``make`` (:func:`constant`; a cached one shares them among
    kernels: they are only read)."""
    w = (tuple(make(s, 0.01 * (i + 1), device) for i, s in enumerate(ws)) if isinstance(ws[0], tuple)
         else make(ws, 0.01, device))
    return make(xs, 0.5, device), w


def in_place(fn, x, w):
    """``run()`` calling ``fn(x, w)`` compiled to write its result into a donated buffer (see
    the module docstring): the program takes a third argument of the result's shape, which XLA
    aliases to the result; and the compiled program."""
    shape = jax.eval_shape(fn, x, w)
    out = [jax.device_put(np.broadcast_to(np.zeros((), shape.dtype), shape.shape), x.device)]
    compiled = jax.jit(lambda x, w, out: fn(x, w), donate_argnums=2, keep_unused=True).lower(x, w, out[0]).compile()

    def run():
        out[0] = compiled(x, w, out[0])
        return out[0]

    return run, compiled


def call_overhead(device: jax.Device) -> float:
    """Seconds to call a compiled program that does next to nothing, timed as the kernels are:
    what timing a kernel on its own adds to what it costs inside a model."""
    one = jax.device_put(np.ones((), np.float32), device)
    return statistics.median(time_runs(in_place(lambda x, w: x + w, one, one)[0], 20, BUDGET_S))


def prepare_kernel(cls, fn, xs, ws, device, make=constant) -> tuple | None:
    """``(run, row)``: the kernel compiled to run in place on inputs made by ``make``
    (:func:`_inputs`), and its table row but for the time; None for an attention kernel that
    XLA did not compile into one kernel."""
    x, w = _inputs(xs, ws, device, make)
    run, compiled = in_place(fn, x, w)
    loop = fn in (_cell_trips, _elementwise_trips)  # rows of one trip (measure_kernel_table)
    if cls == "memory":  # the rate of a memory-bound kernel is its bytes per second
        nbytes = 8 * math.prod(xs)
        return run, [cls, nbytes, 1, 1, None, nbytes, None, 1, 1, LOOP * loop, 1]
    entry = parse_module(compiled.as_text()).entry
    if cls == "chain":  # its rate: the weight bytes it reads row by row per second
        fused = next((i for i in entry.instructions if streamed_weights(i)), None)
        if fused is None:  # not compiled into one kernel
            return None
        nbytes = streamed_weights(fused)
        return run, [cls, nbytes, 1, 1, None, nbytes, None, 1, 1, kernel_impl(fused), 1]
    flops = CostTotals.from_xla(compiled.cost_analysis()).flops or 0.0
    kernel, leaf = next((k, i) for e in entry.instructions for k, i in leaves(e) if i.opcode in CLASSED)
    if cls == "attention":  # sized by its first dot; its work is its two dots' (kernels.class_work)
        if not is_attention(kernel):
            return None
        flops = _attention_flops(*xs)
    m, k, n, taps, groups, pixels = kernel_features(leaf)
    if loop:  # one of the trip's dots (measure_kernel_table divides its time alike)
        return run, [cls, m, k, n, None, flops / CELL_DOTS, None, taps, groups, kernel_impl(kernel, leaf) + LOOP, pixels]
    return run, [cls, m, k, n, None, flops, None, taps, groups, kernel_impl(kernel, leaf), pixels]


def _fault_row(nbytes: int, device, rounds: int = 1) -> list:
    """Seconds to page in a fresh allocation of ``nbytes``: an elementwise kernel writing a
    fresh output, less the same kernel writing a donated one (the mean over ``rounds``)."""
    x, w = _inputs((nbytes // 4,), (2,), device)
    fresh = jax.jit(_elementwise).lower(x, w).compile()
    donated = in_place(_elementwise, x, w)[0]
    extra = statistics.mean(max(best_time(lambda: fresh(x, w), REPEATS, BUDGET_S)
                                - best_time(donated, REPEATS, BUDGET_S), 0.0) for _ in range(rounds))
    return ["fault", nbytes, 1, 1, nbytes / extra if extra else 0.0, nbytes, extra, 1, 1, "", 1]


def prepare_kernels(device: jax.Device, on_kernel=None) -> list[tuple]:
    """Every :func:`calibration_kernels` kernel compiled on ``device`` (:func:`prepare_kernel`:
    ``(run, row)`` each, but attention kernels XLA did not compile into one), compiles run on a
    thread pool; ``on_kernel(label)`` is called before each."""
    shared = functools.cache(constant)  # kernels of equal input shapes read the same buffers

    def prepare(kernel):
        cls, fn, xs, ws = kernel
        if on_kernel is not None:
            on_kernel(f"{cls} {xs} x {ws}")
        return prepare_kernel(cls, fn, xs, ws, device, shared)

    with ThreadPoolExecutor(min(os.cpu_count() or 1, 4)) as pool:  # XLA compiles without the GIL
        return [p for p in pool.map(prepare, calibration_kernels()) if p is not None]


def measure_kernel_table(device: jax.Device, on_kernel=None, passes: int = 2,
                         alongside: Sequence[Callable] = (), rounds: int = 1,
                         prepared: Sequence[tuple] | None = None) -> tuple[list[list], list[float]]:
    """Time every :func:`calibration_kernels` kernel on ``device`` (``prepared``: already
    compiled by :func:`prepare_kernels`, else compiled here) and page in every
    :data:`FAULT_SIZES` allocation: rows as in the module docstring (float32, XLA flops);
    ``on_kernel(label)`` is called before each. A kernel's time is its median run (the runs of
    a program add up kernels' typical times: the sum of each kernel's fastest run is 5-10 %
    under the program's), the lowest over ``passes`` passes through the whole list, so that a
    busy moment of the machine does not spoil one kernel's every run (on this 2-core VM one
    pass put a kernel at 1.7x its time). The ``alongside`` callables (whole programs) are
    timed in the same passes, so that both see the machine alike: their seconds are returned
    beside the rows. With ``rounds`` > 1 every time is the geometric mean of that many rounds of
    ``passes`` passes, and every paging-in cost the mean of that many measurements
    (:func:`jaxcost.perf.stats.median_over_passes`): on a 2-core VM predictions made from two
    one-round calibrations minutes apart differed by 14 % (median over 58 models), from two
    three-round ones by 4.5 % (``benchmarks/results/calibration_stability.md``)."""
    overhead = call_overhead(device)
    if prepared is None:
        prepared = prepare_kernels(device, on_kernel)
    # the alongside callables spread evenly through the kernels: the machine's speed drifts
    # within a pass (on this 2-core VM kernels' times moved 15 % between passes minutes apart)
    runs = [run for run, _ in prepared]
    slots = [round((i + 0.5) * len(runs) / len(alongside)) + i for i in range(len(alongside))]
    for slot, fn in zip(slots, alongside):
        runs.insert(slot, fn)
    times = median_over_passes(runs, passes, REPEATS, BUDGET_S, LONG_S, rounds)
    best = [t for i, t in enumerate(times) if i not in set(slots)] + [times[i] for i in slots]
    rows = []
    for (_, row), seconds in zip(prepared, best):
        seconds = max(seconds - overhead, 0.5 * seconds)
        if row[9].endswith(LOOP):  # a loop kernel's row is one trip's, one dot's of a cell's trip
            seconds /= LOOP_TRIPS * (CELL_DOTS if row[0] == "dot" else 1)
        row[4], row[6] = row[5] / seconds, seconds
        rows.append(row)
    for nbytes in FAULT_SIZES:
        if on_kernel is not None:
            on_kernel(f"paging in {nbytes >> 20} MB")
        rows.append(_fault_row(nbytes, device, rounds))
    return rows, best[len(prepared):]


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
