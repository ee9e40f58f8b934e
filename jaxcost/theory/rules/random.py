"""Random numbers: the counter-based Threefry generator, counted as lowered.

``threefry2x32`` (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
20 rounds of (add, rotate = shift-left, shift-right, or, xor) = 100 ops per output pair,
5 key injections of 3 adds = 15, the initial key add = 2: 117 integer ops per element, plus
2 xors per key element for the third key word. XLA:CPU rolls the 5 groups of rounds into
a while loop that its cost analysis counts once; the theory counts every round, as the
unrolled lowering (GPU, TPU) does.

``random_bits``, ``random_split``, ``random_fold_in``, ``random_seed`` are priced by walking
the jaxpr of the key's PRNG implementation (``jax.random`` lowers them with it):
``iota_2x32_shape`` counters, ``threefry2x32``, a few bit ops.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from jaxcost.theory.registry import TheoryCost, register, register_expansion
from jaxcost.theory.rules._avals import in_elems, out_elems, size

# Ops per element of threefry2x32: 20 rounds × 5 + 5 injections × 3 + 2 initial adds.
THREEFRY_OPS_PER_ELEMENT = 20 * 5 + 5 * 3 + 2


@register("threefry2x32")
def threefry2x32(eqn) -> TheoryCost:
    n = size(eqn.outvars[0])
    key = max(size(eqn.invars[0]), size(eqn.invars[1]))
    f = THREEFRY_OPS_PER_ELEMENT * n + 2 * key
    return TheoryCost(flops_textbook=f, flops_xla=f, accesses_naive=in_elems(eqn) + out_elems(eqn),
                      accesses_ideal=in_elems(eqn) + out_elems(eqn))


@register("iota_2x32_shape")
def iota_2x32_shape(eqn) -> TheoryCost:
    """The flat index of every element as a 64-bit counter split into two 32-bit halves:
    a multiply and an add per further non-trivial dim, a shift and two converts
    (2 ops per element when no dim exceeds 1)."""
    shape = eqn.params["shape"]
    n = math.prod(shape)
    k = sum(d > 1 for d in shape)
    f = (2 * k + 1) * n if k else 2 * n
    return TheoryCost(flops_textbook=f, flops_xla=f, accesses_naive=2 * n, accesses_ideal=2 * n)


@register("rng_bit_generator", "rng_uniform", note="XLA counts one transcendental per generated element "
          "(HloCostAnalysis::HandleRngBitGenerator); the generator's real work is not modelled")
def rng(eqn) -> TheoryCost:
    n = out_elems(eqn)
    return TheoryCost(transcendentals=n, accesses_naive=n, accesses_ideal=n)


@register("random_gamma", note="rejection sampling with a data-dependent trip count: its flops are not counted")
def random_gamma(eqn) -> TheoryCost:
    return TheoryCost(accesses_naive=out_elems(eqn), accesses_ideal=out_elems(eqn))


_JAXPRS: dict = {}


def _impl_jaxpr(kind: str, impl, batch: tuple[int, ...], args, **params):
    """The jaxpr of ``impl.<kind>`` over a batch of keys (cached)."""
    cache = (kind, impl.name, batch, tuple((a.shape, str(a.dtype)) for a in args), tuple(sorted(params.items())))
    if cache not in _JAXPRS:
        fn = {"random_bits": lambda k: impl.random_bits(k, params["bit_width"], params["shape"]),
              "random_split": lambda k: impl.split(k, params["shape"]),
              "random_fold_in": lambda k, m: impl.fold_in(k, m),
              "random_seed": lambda s: impl.seed(s)}[kind]
        for _ in batch:
            fn = jax.vmap(fn)
        _JAXPRS[cache] = jax.make_jaxpr(fn)(*args)
    return _JAXPRS[cache]


def _key_data(v, impl):
    shape = v.aval.shape
    return shape, jax.ShapeDtypeStruct(shape + tuple(impl.key_shape), np.uint32)


@register_expansion("random_bits", "random_split", "random_fold_in")
def key_op(eqn):
    impl = getattr(eqn.invars[0].aval.dtype, "_impl", None)
    if impl is None:
        return None
    batch, key = _key_data(eqn.invars[0], impl)
    args = [key]
    if eqn.primitive.name == "random_fold_in":
        msgs = eqn.invars[1].aval
        if msgs.shape != batch:
            return None
        args.append(jax.ShapeDtypeStruct(batch, np.uint32))
    params = {k: v for k, v in eqn.params.items() if k in ("bit_width", "shape")}
    return _impl_jaxpr(eqn.primitive.name, impl, batch, args, **params)


@register_expansion("random_seed")
def seed(eqn):
    impl = eqn.params.get("impl")
    if impl is None:
        return None
    seeds = eqn.invars[0].aval
    return _impl_jaxpr("random_seed", impl, seeds.shape, [jax.ShapeDtypeStruct(seeds.shape, seeds.dtype)])
