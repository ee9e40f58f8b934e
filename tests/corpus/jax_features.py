"""The JAX features real programs are made of, one small program each: loops and control
flow, linear algebra (LAPACK custom calls on CPU), FFTs, random numbers, sorting, scatter,
rematerialisation, host callbacks and ``shard_map``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from corpus import Program, case, spec

SQUARE = spec((16, 16))


@case("jax/scan_rnn")
def scan_rnn() -> Program:
    """An Elman RNN over 10 steps with ``lax.scan``: h = tanh(x W + h U + b)."""
    params = {"W": spec((8, 32)), "U": spec((32, 32)), "b": spec((32,))}

    def rnn(params, xs):  # xs: (time, batch, features)
        def step(h, x):
            h = jnp.tanh(x @ params["W"] + h @ params["U"] + params["b"])
            return h, h

        h0 = jnp.zeros((xs.shape[1], 32), xs.dtype)
        return lax.scan(step, h0, xs)

    return Program(rnn, (params, spec((10, 4, 8))), 8 * 32 + 32 * 32 + 32, params_argnums=(0,))


@case("jax/fori_loop")
def fori_loop() -> Program:
    """Power iteration, 6 steps of ``lax.fori_loop``."""

    def power(a, v):
        def body(_, v):
            w = a @ v
            return w / jnp.linalg.norm(w)

        return lax.fori_loop(0, 6, body, v)

    return Program(power, (SQUARE, spec((16,))), 0)


@case("jax/while_loop")
def while_loop() -> Program:
    """Newton's square root until converged: a ``lax.while_loop`` with a data-dependent trip count."""

    def sqrt(a):
        def cond(state):
            x, i = state
            return (jnp.max(jnp.abs(x * x - a)) > 1e-5) & (i < 50)

        def body(state):
            x, i = state
            return 0.5 * (x + a / x), i + 1

        return lax.while_loop(cond, body, (jnp.ones_like(a), 0))[0]

    return Program(sqrt, (spec((64,)),), 0)


@case("jax/cond_switch")
def cond_switch() -> Program:
    """``lax.cond`` on a traced predicate and ``lax.switch`` on a traced index."""

    def f(x, i):
        y = lax.cond(x.sum() > 0, lambda x: jnp.sin(x) @ x, lambda x: x @ x.T, x)
        return lax.switch(i, [jnp.tanh, jnp.exp, lambda v: v * 2.0], y)

    return Program(f, (SQUARE, spec((), "int32")), 0)


def _linalg(name, fn, *args):
    @case(f"jax/linalg_{name}")
    def build() -> Program:
        return Program(fn, args, 0)

    build.__doc__ = f"``jnp.linalg.{name}`` of 16x16 matrices."
    return build


_linalg("svd", jnp.linalg.svd, SQUARE)
_linalg("eigh", lambda a: jnp.linalg.eigh(a + a.T), SQUARE)
_linalg("cholesky", lambda a: jnp.linalg.cholesky(a @ a.T + 16.0 * jnp.eye(16)), SQUARE)
_linalg("solve", jnp.linalg.solve, SQUARE, spec((16, 4)))
_linalg("qr", jnp.linalg.qr, SQUARE)


@case("jax/fft")
def fft() -> Program:
    """``jnp.fft``: a complex FFT and its inverse, a 2-D real FFT."""

    def f(x, img):
        return jnp.fft.ifft(jnp.fft.fft(x) * 2.0).real, jnp.fft.rfft2(img)

    return Program(f, (spec((4, 64)), spec((2, 16, 16))), 0)


@case("jax/random")
def random() -> Program:
    """``jax.random``: split, fold_in, normal, bernoulli from a typed key argument."""

    def f(key, x):
        k1, k2 = jax.random.split(jax.random.fold_in(key, 7))
        noise = jax.random.normal(k1, x.shape)
        keep = jax.random.bernoulli(k2, 0.9, x.shape)
        return jnp.where(keep, x + noise, 0.0)

    return Program(f, (jax.eval_shape(jax.random.key, 0), spec((8, 32))), 0)


@case("jax/sort_top_k")
def sort_top_k() -> Program:
    """``lax.top_k`` and ``jnp.argsort`` along the last axis."""

    def f(x):
        values, indices = lax.top_k(x, 5)
        return values, indices, jnp.argsort(x, axis=-1)

    return Program(f, (spec((8, 100)),), 0)


@case("jax/scatter_add")
def scatter_add() -> Program:
    """``.at[].add`` (a scatter-add of rows into a table) and ``jax.ops.segment_sum``."""

    def f(table, idx, rows):
        return table.at[idx].add(rows), jax.ops.segment_sum(rows, idx, num_segments=10)

    return Program(f, (spec((10, 16)), spec((32,), "int32"), spec((32, 16))), 0)


@case("jax/checkpoint")
def checkpoint() -> Program:
    """Gradient of a two-layer MLP whose blocks are ``jax.checkpoint``-ed (recomputed on the
    backward pass)."""
    params = [spec((32, 64)), spec((64, 32))]

    def loss(params, x):
        block = jax.checkpoint(lambda w, h: jnp.tanh(h @ w))
        for w in params:
            x = block(w, x)
        return (x ** 2).sum()

    return Program(jax.grad(loss), (params, spec((8, 32))), 32 * 64 * 2, params_argnums=(0,))


@case("jax/debug_print")
def debug_print() -> Program:
    """``jax.debug.print`` inside the program (a host callback with side effects)."""

    def f(x):
        y = jnp.tanh(x @ x.T)
        jax.debug.print("norm {n}", n=jnp.linalg.norm(y))
        return y

    return Program(f, (spec((8, 8)),), 0)


@case("jax/pure_callback")
def pure_callback() -> Program:
    """``jax.pure_callback`` to a NumPy function between two matmuls."""

    def f(x):
        y = x @ x
        y = jax.pure_callback(lambda a: np.sinh(a).astype(a.dtype), jax.ShapeDtypeStruct(y.shape, y.dtype), y)
        return y @ x

    return Program(f, (SQUARE,), 0)


def _shard_map_program(mesh, x, w) -> Program:
    from jax.sharding import PartitionSpec as P

    def f(x, w):
        def local(x, w):
            return lax.psum(x @ w, "data")

        return jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P()), out_specs=P())(x, w)

    return Program(f, (x, w), 32 * 16, params_argnums=(1,))


@case("jax/shard_map")
def shard_map() -> Program:
    """``jax.shard_map`` over a one-device mesh with explicit axes (``jax.make_mesh``'s
    default): the inputs carry their ``NamedSharding``; per-shard matmul, then a ``psum``."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((1,), ("data",))
    x = jax.ShapeDtypeStruct((8, 32), jnp.float32, sharding=NamedSharding(mesh, P("data")))
    w = jax.ShapeDtypeStruct((32, 16), jnp.float32, sharding=NamedSharding(mesh, P()))
    return _shard_map_program(mesh, x, w)


@case("jax/shard_map_auto")
def shard_map_auto() -> Program:
    """The same over a mesh with automatic axes: unsharded inputs, ``in_specs`` reshard them."""
    mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    return _shard_map_program(mesh, spec((8, 32)), spec((32, 16)))
