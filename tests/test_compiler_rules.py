"""Each opcode rule against XLA's own cost_analysis(), exactly, on small functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from jaxcost.compiler.diagnostics import module_warnings
from jaxcost.compiler.hlo import parse_module, parse_shape, parse_window
from jaxcost.compiler.ops import price_module
from jaxcost.compiler.totals import CostTotals

F32 = jnp.float32
X = jax.ShapeDtypeStruct((4, 8), F32)
IMG = jax.ShapeDtypeStruct((2, 16, 16, 8), F32)


def both(f, *args):
    """(priced, xla) for the unoptimized and the optimized module."""
    lowered = jax.jit(f).lower(*args)
    compiled = lowered.compile()
    yield price_module(lowered.as_text(dialect="hlo", debug_info=True)), lowered.cost_analysis()
    yield price_module(compiled.as_text()), compiled.cost_analysis()


def assert_matches(f, *args):
    for priced, xla in both(f, *args):
        assert priced.xla_total.flops == xla.get("flops", 0.0)
        assert priced.xla_total.transcendentals == xla.get("transcendentals", 0.0)
        assert priced.xla_total.bytes_accessed == pytest.approx(xla.get("bytes accessed", 0.0), rel=5e-3)
        assert sum(op.flops for op in priced.ops) == priced.total.flops
        assert not priced.unknown


ELEMENTWISE = {
    "tanh": jnp.tanh, "exp": jnp.exp, "log1p": jnp.log1p, "erf": lax.erf, "tan": jnp.tan,
    "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "clamp": lambda x: lax.clamp(0.0, x, 1.0),
    "bitcast_convert": lambda x: lax.bitcast_convert_type(x, jnp.int32), "isfinite": jnp.isfinite,
    "round": jnp.round, "remainder": lambda x: x % 3.0, "pow": lambda x: x ** 2.5,
    "transpose": lambda x: x.T * 2, "iota": lambda x: x + jnp.arange(8.0),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_and_transcendentals(name):
    assert_matches(ELEMENTWISE[name], X)


REDUCTIONS = {
    "sum": lambda x: x.sum(1), "argmax": lambda x: jnp.argmax(x, 1), "sort": lambda x: jnp.sort(x, 1),
    "cumsum": lambda x: jnp.cumsum(x, 1), "softmax": jax.nn.softmax,
    "layernorm": lambda x: (x - x.mean(-1, keepdims=True)) * lax.rsqrt(x.var(-1, keepdims=True) + 1e-5),
    "maxpool": lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (1, 1), "SAME"),
    "avgpool": lambda x: lax.reduce_window(x, 0.0, lax.add, (2, 3), (2, 1), "VALID") / 6,
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions(name):
    assert_matches(REDUCTIONS[name], X)


MOVES = {
    "slice": lambda x: x[1:3, 2:5], "pad": lambda x: jnp.pad(x, 1),
    "gather": lambda x: x[jnp.array([0, 2])], "scatter": lambda x: x.at[1].set(2.0),
    "dynamic_slice": lambda x: lax.dynamic_slice(x, (1, jnp.argmax(x[0]).astype(jnp.int32)), (2, 3)),
    "concat": lambda x: jnp.concatenate([x, x * 2], 0),
    "rng": lambda x: x + jax.random.normal(jax.random.key(0), (4, 8)),
    "cond": lambda x: lax.cond(x.sum() > 0, jnp.exp, lambda x: x * 2, x),
}


@pytest.mark.parametrize("name", sorted(MOVES))
def test_data_movement_and_control(name):
    assert_matches(MOVES[name], X)


CONVS = [  # kernel, stride, padding, lhs dilation, rhs dilation, groups
    (3, 1, "SAME", 1, 1, 1), (3, 2, "SAME", 1, 1, 1), (5, 2, ((1, 2), (0, 3)), 1, 1, 1),
    (3, 1, "VALID", 1, 2, 1), (3, 1, ((1, 1), (1, 1)), 2, 1, 1), (3, 1, "SAME", 1, 1, 8),
    (3, 2, "SAME", 1, 1, 2), (1, 1, "VALID", 1, 1, 1), (7, 2, ((3, 3), (3, 3)), 1, 1, 1),
]


@pytest.mark.parametrize("k,s,pad,ld,rd,g", CONVS)
def test_convolution_valid_taps(k, s, pad, ld, rd, g):
    w = jax.ShapeDtypeStruct((k, k, 8 // g, 16), F32)

    def f(x, w):
        y = lax.conv_general_dilated(x, w, (s, s), pad, lhs_dilation=(ld, ld), rhs_dilation=(rd, rd),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=g)
        return jax.nn.relu(y)

    assert_matches(f, IMG, w)


def test_padding_taps_are_not_counted():
    # DESIGN.md: a 3x3 SAME conv on 56x56 counts 166^2 taps per channel pair, not 56^2 * 9.
    x = jax.ShapeDtypeStruct((1, 56, 56, 1), F32)
    w = jax.ShapeDtypeStruct((3, 3, 1, 1), F32)
    f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                              dimension_numbers=("NHWC", "HWIO", "NHWC"))
    priced = price_module(jax.jit(f).lower(x, w).as_text(dialect="hlo", debug_info=True))
    (conv,) = [op for op in priced.ops if op.opcode == "convolution"]
    assert conv.flops == 2 * 166 * 166


def test_dot_with_batch_dims():
    a = jax.ShapeDtypeStruct((3, 4, 5), F32)
    b = jax.ShapeDtypeStruct((3, 5, 6), F32)
    assert_matches(lambda a, b: jnp.einsum("bij,bjk->bik", a, b), a, b)
    priced = price_module(jax.jit(lambda a, b: jnp.einsum("bij,bjk->bik", a, b)).lower(a, b)
                          .as_text(dialect="hlo", debug_info=True))
    (dot,) = [op for op in priced.ops if op.opcode == "dot"]
    assert dot.flops == 2 * 3 * 4 * 6 * 5


def test_gradient_and_while_loops():
    w = jax.ShapeDtypeStruct((8, 8), F32)
    assert_matches(jax.grad(lambda w, x: jnp.tanh(x @ w).sum()), w, X)
    assert_matches(lambda x: lax.fori_loop(0, 5, lambda i, c: jnp.tanh(c), x), X)
    assert_matches(lambda x: lax.scan(lambda c, r: (c @ jnp.ones((8, 8)), None), x, None, length=10)[0], X)


def test_remat_opt_barrier_bytes_equal_xla():
    """jax.checkpoint lowers to an opt-barrier over a tuple: XLA reads a tuple operand as its
    index table (8 bytes a pointer) and writes every array of its tuple output."""
    f = jax.grad(lambda x: jax.checkpoint(lambda x: jnp.sin(x) @ jnp.ones((8, 8)))(x).sum())
    (lowered, xla), (compiled, xla_opt) = both(f, X)
    for priced, totals in ((lowered, xla), (compiled, xla_opt)):
        assert priced.xla_total.bytes_accessed == totals["bytes accessed"]
        assert priced.xla_total.flops == totals["flops"]
    (barrier,) = [op for op in lowered.ops if op.opcode == "opt-barrier"]
    assert barrier.shape == "(f32[4,8], f32[4,8])"
    assert barrier.bytes_accessed == 2 * 8 + 2 * 4 * 8 * 4


def test_float32_accumulation_reproduced_bit_for_bit():
    """XLA sums its properties in float32: large totals are rounded. jaxcost keeps the exact
    sum and reproduces XLA's rounded one."""

    def f(x, ws):
        for w in ws:
            y = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(y * 1.1 + 0.3)
        return jax.nn.softmax(x.mean((1, 2)) @ jnp.ones((64, 1000)))

    x = jax.ShapeDtypeStruct((8, 56, 56, 64), F32)
    ws = [jax.ShapeDtypeStruct((3, 3, 64, 64), F32)] * 7
    lowered = jax.jit(f).lower(x, ws)
    priced = price_module(lowered.as_text(dialect="hlo", debug_info=True))
    xla = lowered.cost_analysis()
    assert priced.xla_total.flops == xla["flops"] == 12_677_750_784
    n = 8 * 56 * 56 * 64
    convs = 7 * 2 * 8 * 64 * 64 * 166 * 166  # valid taps only
    elementwise = 7 * 3 * n  # mul, add, max
    mean = (n - 8 * 64) + 8 * 64  # reduce + divide
    head = 2 * 8 * 64 * 1000
    softmax = (8 * 1000 - 8) + 8 + 8 * 1000 + (8 * 1000 - 8) + 8 * 1000  # max, -inf guard, sub, sum, div
    assert priced.total.flops == convs + elementwise + mean + head + softmax == 12_677_750_008
    assert abs(priced.total.flops - xla["flops"]) / xla["flops"] < 1e-6


def test_parse_shapes_and_windows():
    shape, _ = parse_shape("(f32[2,3]{1,0}, /*index=1*/s32[], bf16[4]{0})")
    assert shape.is_tuple and [str(s) for s in shape.tuple_shapes] == ["f32[2,3]", "s32[]", "bf16[4]"]
    assert shape.bytes == 24 + 4 + 8
    (w0, w1) = parse_window("{size=3x5 stride=2x1 pad=0_1x2_2 lhs_dilate=1x2 rhs_dilate=3x1}")
    assert (w0.size, w0.stride, w0.pad_lo, w0.pad_hi, w0.rhs_dilation) == (3, 2, 0, 1, 3)
    assert (w1.size, w1.pad_lo, w1.lhs_dilation) == (5, 2, 2)
    assert [w.rhs_reversal for w in parse_window("{size=3x3 rhs_reversal=1x0}")] == [1, 0]
    assert w0.rhs_reversal == 0


FROBNICATE = """HloModule m
ENTRY %main (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  %q = f32[4]{0} frobnicate(%p), metadata={op_name="jit(f)/Net/frob"}
  ROOT %r = f32[4]{0} add(%q, %q)
}
"""


def test_unknown_opcode_is_reported_not_dropped():
    priced = price_module(FROBNICATE)
    assert priced.unknown == {"frobnicate": 1}
    (frob,) = [op for op in priced.ops if op.opcode == "frobnicate"]
    assert frob.bytes_accessed == 32 and frob.layer == "Net"
    assert priced.total.flops == 4


def test_module_structure():
    lowered = jax.jit(lambda x: jnp.exp(x).sum(0)).lower(X)
    module = parse_module(lowered.compile().as_text())
    fusions = [i for i in module.entry.instructions if i.opcode == "fusion"]
    assert fusions and fusions[0].fused_computation is not None
    assert fusions[0].fusion_kind.startswith("k")
    assert module.entry.root.is_root
    # the lowered text names operands without "%": get-tuple-element's operand is linked too
    lowered = parse_module(jax.jit(lambda x: lax.fori_loop(0, 3, lambda i, c: c * 2, x))
                           .lower(X).as_text(dialect="hlo"))
    gtes = [i for i in lowered.instructions() if i.opcode == "get-tuple-element"]
    assert gtes and all(len(g.operands) == 1 and g in g.operands[0].users for g in gtes)


def test_module_warnings_name_unknown_opcodes_and_disagreement():
    priced = price_module(FROBNICATE)
    assert module_warnings("optimized", priced, CostTotals(3.0, 0.0, 64.0)) == [
        "optimized HLO: no cost rule for opcode 'frobnicate' (1x): priced at its bytes, zero flops",
        "optimized HLO: jaxcost's rules give 4 flops / 0 transcendentals, XLA says 3 / 0"]
    assert module_warnings("optimized", priced, CostTotals(4.0, 0.0, 80.0))[1:] == []
