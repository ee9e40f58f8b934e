"""While loops: trip counts in optimized and lowered modules, and the corrected totals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxcost.compiler.corrections import correct
from jaxcost.compiler.loops import trip_count
from jaxcost.compiler.ops import price_module

X = jax.ShapeDtypeStruct((4, 8), jnp.float32)


def loops(f, *args):
    """(label, priced module, its while instructions) for the lowered and the compiled program."""
    lowered = jax.jit(f).lower(*args)
    for label, text in (("lowered", lowered.as_text(dialect="hlo", debug_info=True)),
                        ("compiled", lowered.compile().as_text())):
        priced = price_module(text)
        yield label, priced, [i for i in priced.module.instructions() if i.opcode == "while"]


def scan(x):
    return lax.scan(lambda c, _: (c @ jnp.ones((8, 8)), None), x, None, length=10)[0]


def test_scan_trip_count_from_the_optimizer_and_from_the_counter():
    for label, priced, (loop,) in loops(scan, X):
        assert ("known_trip_count" in loop.backend_config) == (label == "compiled")
        assert trip_count(loop) == 10
        # 10 bodies (a 4x8 @ 8x8 matmul and the counter's +1), 11 checks of the condition
        assert correct(priced.module.entry, priced.model).flops == 10 * (2 * 4 * 8 * 8 + 1) + 11


def test_fori_loop_counts_from_its_lower_bound():
    f = lambda x: lax.fori_loop(2, 7, lambda i, c: jnp.tanh(c) * i, x)
    for label, priced, (loop,) in loops(f, X):
        assert trip_count(loop) == 5
        assert any("runs 5 times" in r for r in correct(priced.module.entry, priced.model).reasons)


def test_data_dependent_loop_is_unknown():
    f = lambda x: lax.while_loop(lambda c: c.sum() < 100.0, lambda c: c * 2.0, x)
    for label, priced, (loop,) in loops(f, X):
        assert trip_count(loop) is None
        corrected = correct(priced.module.entry, priced.model)
        assert any("unknown trip count" in r for r in corrected.reasons)
        assert corrected.flops == priced.total.flops  # counted once, as XLA does
