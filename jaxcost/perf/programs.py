"""The in-program factor: how much slower kernels run inside a program than alone.

The calibration (:mod:`jaxcost.perf.calibrate`) times each kernel on its own, again and again
on the same buffers: its weights and inputs stay in the caches. Inside a network every layer
reads weights no other kernel touched since the previous step, and activations the previous
kernel just wrote -- or spilled. Measured on a 2-core x86 VM: a 3x3 conv with 9.4 MB of
weights runs 1.4x slower with cold caches at batch 1; a batch-1 stack of dots whose weights do
not fit the caches at 2x; small hot kernels not at all. How much of that a real program pays
depends on its sizes, so it is measured on programs:

    ``PROGRAMS`` synthetic networks, random but reproducible (:func:`synthetic_program`): a
    sequential CNN (dense, 1x1, depthwise and grouped convs with bias and ReLU, residual adds,
    sometimes a max-pool) or a transformer encoder (attention, GELU MLP, layer norm), batch 1
    to 8, sizes drawn from the calibration grid's ranges -- no model's layers.

Each is timed as a whole, in the same passes as the calibration kernels and as they are (the
median run, the lowest of two passes: a slow minute of the machine hits both alike), and
priced kernel by kernel (:mod:`jaxcost.perf.pricing`, factor 1). A program's factor is what its kernels' time
must be multiplied by for the prediction to match::

    f_i = (measured_i - launches_i * overhead - paging_i) / sum of its kernels' priced time

and the device's factor is their :func:`central` value (the geometric mean of the middle half):
robust to the programs that hit a corner of the rate model. Leave-one-out over the programs (each predicted with the median of the
others) tells how well it carries to a program it was not measured on. The held-out models
(``benchmarks/predict_heldout.py``) never enter it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from jaxcost.compiler.ops import price_module
from jaxcost.compiler.totals import MemoryStats
from jaxcost.perf.pricing import paging_s, price_op
from jaxcost.perf.rates import Rates

PROGRAMS = 16  # synthetic programs measured (seeds 0 .. PROGRAMS - 1)
TRANSFORMER_EVERY = 4  # every 4th seed is a transformer encoder, the others CNNs
# Largest flops of one CNN layer: keeps a program at ~3-60 ms on a 2-core CPU.
LAYER_FLOPS = 4e7


def _conv(x, w, stride, groups):
    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", feature_group_count=groups,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _cnn(rnd: random.Random):
    """A sequential CNN: each layer ``relu(conv(x) + bias)``, ``+ x`` where the shape allows,
    then sometimes a 3x3 max-pool; global average pool and a dense head."""
    batch, side, channels = rnd.choice((1, 8)), rnd.choice((14, 28, 56, 112)), rnd.choice((3, 16, 32))
    batch = 1 if side == 112 else batch
    x_shape = (batch, side, side, channels)
    layers = []  # (kernel side, stride, input channels, output channels, groups, max-pool after)
    for _ in range(rnd.randint(4, 9)):
        kind = rnd.choices(("conv", "conv1x1", "depthwise", "grouped"), (3, 3, 2, 1))[0]
        stride = 2 if side > 7 and rnd.random() < 0.25 else 1
        out_side = -(-side // stride)
        if kind == "depthwise" and channels >= 8:
            k, co, g = rnd.choice((3, 5, 7)), channels, channels
        elif kind == "grouped" and channels >= 16:
            g = rnd.choice([d for d in (2, 4, 8, 32) if channels % d == 0 and channels // d >= 2] or [1])
            k, co = rnd.choice((1, 3)), channels
        else:
            k = 1 if kind == "conv1x1" else rnd.choice((3, 3, 5, 7))
            cap = LAYER_FLOPS / (2 * batch * out_side ** 2 * k * k * channels)  # output channels in budget
            co, g = 8 * round(max(32, min(512, 2 ** rnd.uniform(5, max(5.0, math.log2(max(cap, 32)))))) / 8), 1
        layers.append((k, stride, channels, co, g, rnd.random() < 0.15))
        channels, side = co, out_side
    classes = rnd.choice((10, 100, 1000))
    shapes = [((k, k, ci // g, co), (co,)) for k, _, ci, co, g, _ in layers] + [((channels, classes), (classes,))]

    def fn(params, x):
        for (k, stride, ci, co, g, pool), (w, b) in zip(layers, params[:-1]):
            y = jax.nn.relu(_conv(x, w, stride, g) + b)
            if y.shape == x.shape:
                y = y + x
            if pool:
                y = jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
            x = y
        w, b = params[-1]
        return jnp.mean(x, axis=(1, 2)) @ w + b

    return fn, shapes, x_shape


def _transformer(rnd: random.Random):
    """A pre-norm transformer encoder: multi-head self-attention and a GELU MLP per block."""
    batch, tokens = rnd.choice((1, 4)), rnd.choice((16, 64, 196))
    batch = 1 if tokens == 196 else batch
    width = rnd.choice((128, 256, 384, 512))
    heads, blocks = width // 64, rnd.randint(1, 2)
    shapes = [((width, 3 * width), (width, width), (width, 4 * width), (4 * width, width), (width,), (width,))
              for _ in range(blocks)]

    def norm(x, scale):
        return (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-6) * scale

    def fn(params, x):
        for wqkv, wo, w1, w2, s1, s2 in params:
            q, k, v = jnp.split((norm(x, s1) @ wqkv).reshape(batch, tokens, 3 * heads, 64), 3, axis=2)
            a = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / 8.0, axis=-1)
            x = x + jnp.einsum("bhqk,bkhd->bqhd", a, v).reshape(batch, tokens, width) @ wo
            x = x + jax.nn.gelu(norm(x, s2) @ w1) @ w2
        return x

    return fn, shapes, (batch, tokens, width)


def synthetic_program(seed: int):
    """``(fn, params, x)`` of synthetic program ``seed``: random, reproducible, concrete
    float32 arrays (see the module docstring)."""
    rnd = random.Random(seed)
    fn, shapes, x_shape = (_transformer if seed % TRANSFORMER_EVERY == TRANSFORMER_EVERY - 1 else _cnn)(rnd)
    gen = np.random.default_rng(seed)
    array = lambda s: jax.device_put(gen.random(s, np.float32) - 0.5)  # jnp.asarray: 14 ms an array
    params = jax.tree.map(array, shapes, is_leaf=lambda s: isinstance(s, tuple) and all(isinstance(d, int) for d in s))
    return fn, params, array(x_shape)


def central(factors: Sequence[float]) -> float:
    """The geometric mean of the middle half of ``factors`` (the interquartile mean of their
    logs): robust to the programs that hit a corner of the rate model, as a median is, but
    not jumping between neighbours as a median of widely spread values does."""
    logs = sorted(math.log(f) for f in factors)
    cut = len(logs) // 4
    middle = logs[cut:len(logs) - cut]
    return math.exp(sum(middle) / len(middle))


@dataclasses.dataclass(frozen=True)
class ProgramFactor:
    """The device's in-program factor (see the module docstring) and how well it carries:
    ``loo_errors`` are each program's prediction error (predicted / measured - 1) with the
    factor of the others; ``rows`` as :func:`program_rows` returns them."""

    factor: float
    loo_errors: tuple[float, ...]
    rows: tuple[tuple, ...]

    def __repr__(self) -> str:
        err = [abs(e) for e in self.loo_errors]
        return (f"ProgramFactor({self.factor:.3f} from {len(self.rows)} programs, leave-one-out median error "
                f"{statistics.median(err):.0%}, {sum(e <= 0.10 for e in err)}/{len(err)} within 10 %)")

    @classmethod
    def fit(cls, rows) -> ProgramFactor:
        """From :func:`program_rows`: the :func:`central` value of the programs' factors;
        1.0 without rows."""
        rows = tuple(tuple(r) for r in rows if r[2] > 0)
        if not rows:
            return cls(1.0, (), ())
        each = [max(m - fixed, 1e-12) / kernels for _, m, kernels, fixed, *_ in rows]
        loo = []
        for i, (_, m, kernels, fixed, *_) in enumerate(rows):
            f = central(each[:i] + each[i + 1:] or each[i:i + 1])
            loo.append((f * kernels + fixed) / m - 1)
        return cls(central(each), tuple(loo), rows)


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A synthetic program compiled on the device: ``run()`` calls it; ``ops`` its priced
    optimized HLO (:func:`jaxcost.compiler.ops.price_module`), ``memory`` its buffers."""

    seed: int
    run: Callable[[], object]
    ops: tuple
    memory: MemoryStats


def prepare_programs(device: jax.Device, on_program=None) -> list[Prepared]:
    """Every synthetic program (seeds ``0 .. PROGRAMS - 1``) compiled for ``device``, compiles
    run on a thread pool; ``on_program(label)`` is called before each."""

    def prepare(seed: int) -> Prepared:
        if on_program is not None:
            on_program(f"synthetic program {seed}")
        fn, params, x = synthetic_program(seed)
        params, x = jax.device_put((params, x), device)
        compiled = jax.jit(fn).lower(params, x).compile()
        return Prepared(seed, lambda: compiled(params, x), tuple(price_module(compiled.as_text()).ops),
                        MemoryStats.from_xla(compiled.memory_analysis()))

    with ThreadPoolExecutor(min(os.cpu_count() or 1, 4)) as pool:  # XLA compiles without the GIL
        return list(pool.map(prepare, range(PROGRAMS)))


def program_rows(programs: Sequence[Prepared], seconds: Sequence[float], rates: Rates,
                 overhead_s: float) -> list[list]:
    """``[seed, measured_s, kernels_s, fixed_s, launches]`` of each program timed in
    ``seconds`` (its median run, as the calibration kernels are timed and in the same passes:
    :func:`jaxcost.perf.calibrate.measure_kernel_table`): the sum of its kernels' priced time
    at ``rates`` (factor 1), its fixed costs (launches at ``overhead_s`` each, paging in its
    fresh buffers) and its kernel launches."""
    rows = []
    for program, t in zip(programs, seconds):
        kernels = [price_op(op, rates) for op in program.ops]
        launches = sum(k.launches for k in kernels)
        fixed = overhead_s * launches + paging_s(rates, program.memory)
        rows.append([program.seed, t, sum(max(k.compute_s, k.memory_s) for k in kernels), fixed, launches])
    return rows
