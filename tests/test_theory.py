"""Theory engine: exact agreement with XLA's cost analysis on single-op functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxcost.theory import analyze_jaxpr, formulas

F32 = jnp.float32
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sds(*shape):
    return jax.ShapeDtypeStruct(shape, F32)


def theory(f, *args, **kw):
    return analyze_jaxpr(jax.make_jaxpr(f)(*args), **kw)


def xla(f, *args):
    c = jax.jit(f).lower(*args).cost_analysis()
    return {"flops": 0.0, **c}


def conv_fn(stride, padding, lhs_dil=None, rhs_dil=None, groups=1, batch_groups=1):
    def f(x, w):
        return jax.lax.conv_general_dilated(
            x, w, stride, padding, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil,
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups,
            batch_group_count=batch_groups)
    return f


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 2), (0, 1)), ((0, 3), (2, 0))])
@pytest.mark.parametrize("stride", [(1, 1), (2, 3)])
def test_conv_padding_stride_matches_xla(padding, stride):
    x, w = sds(2, 11, 10, 4), sds(3, 3, 4, 6)
    f = conv_fn(stride, padding)
    r = theory(f, x, w)
    assert r.totals.flops_xla == xla(f, x, w)["flops"]
    assert r.totals.padding_taps == r.totals.macs - r.totals.macs_valid


def test_conv_same_counts_padding_taps():
    x, w = sds(1, 56, 56, 1), sds(3, 3, 1, 1)
    r = theory(conv_fn((1, 1), "SAME"), x, w)
    assert r.totals.macs == 56 * 56 * 9
    assert r.totals.macs_valid == 166 * 166
    assert r.eqns[0].padding_taps == 56 * 56 * 9 - 166 * 166


def test_dilations_groups_depthwise_batch_groups():
    x = sds(4, 12, 12, 8)
    cases = [
        (conv_fn((1, 1), ((2, 2), (1, 1)), lhs_dil=(2, 2)), sds(3, 3, 8, 5)),       # transposed
        (conv_fn((1, 2), "VALID", rhs_dil=(2, 3)), sds(3, 2, 8, 5)),                # atrous
        (conv_fn((1, 1), "SAME", groups=4), sds(3, 3, 2, 12)),                       # grouped
        (conv_fn((2, 2), "SAME", groups=8), sds(3, 3, 1, 8)),                        # depthwise
        (conv_fn((1, 1), "VALID", batch_groups=2), sds(3, 3, 8, 6)),                 # weight grad
    ]
    for f, w in cases:
        assert theory(f, x, w).totals.flops_xla == xla(f, x, w)["flops"]


@SETTINGS
@given(k=st.integers(1, 4), s=st.integers(1, 3), ld=st.integers(1, 2), rd=st.integers(1, 2),
       g=st.sampled_from([1, 2]), b=st.integers(1, 2), lo=st.integers(0, 3), hi=st.integers(0, 3),
       hw=st.integers(5, 9))
def test_conv_random_matches_xla_and_formula(k, s, ld, rd, g, b, lo, hi, hw):
    x, w = sds(b, hw, hw + 1, 2 * g), sds(k, k, 2, 3 * g)
    f = conv_fn((s, s), ((lo, hi), (hi, lo)), lhs_dil=(ld, ld), rhs_dil=(rd, rd), groups=g)
    out = jax.eval_shape(f, x, w).shape
    if 0 in out:
        return
    r = theory(f, x, w)
    assert r.totals.flops_xla == xla(f, x, w)["flops"]
    assert r.totals.macs == b * formulas.conv_macs(k, 2 * g, 3 * g, out[1], out[2], groups=g)


@SETTINGS
@given(bt=st.integers(1, 3), m=st.integers(1, 7), k=st.integers(1, 9), n=st.integers(1, 7))
def test_dot_general_random_matches_xla(bt, m, k, n):
    def f(a, c):
        return jax.lax.dot_general(a, c, (((2,), (1,)), ((0,), (0,))))
    a, c = sds(bt, m, k), sds(bt, k, n)
    r = theory(f, a, c)
    assert r.totals.flops_xla == xla(f, a, c)["flops"]
    assert r.totals.macs == bt * m * k * n
    assert r.totals.flops_textbook == (2 * k - 1) * bt * m * n


def test_dense_with_bias_textbook_is_2n():
    def f(x, w, b):
        return x @ w + b
    r = theory(f, sds(8, 100), sds(100, 300), sds(300))
    assert r.totals.macs == 8 * formulas.dense_macs(100, 300)
    assert r.totals.flops_textbook == formulas.dense_flops(100, 300, 8, bias=True)


def test_elementwise_reduce_pool_match_xla():
    x = sds(4, 8, 8, 3)
    fns = [
        lambda x: jnp.maximum(x, 0) * 2 + 1,
        lambda x: jnp.exp(x) + jnp.tanh(x),
        lambda x: jnp.sum(x, axis=(1, 2)),
        lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"),
        jax.nn.sigmoid,
        jax.lax.erf,
        lambda x: x ** 5 + x ** -2,
        lambda x: jnp.cumsum(x, axis=2),
        lambda x: jnp.argmax(x, axis=1),
        lambda x: jnp.mean(x, axis=(1, 2)),
        lambda x: jax.nn.softmax(x, axis=-1),
    ]
    for f in fns:
        r, c = theory(f, x), xla(f, x)
        assert r.totals.flops_xla == c["flops"]
        assert r.totals.transcendentals == c.get("transcendentals", 0)


def test_sigmoid_textbook_4_per_element():
    r = theory(jax.nn.sigmoid, sds(10, 10))
    assert r.totals.flops_textbook == formulas.sigmoid_flops(100)
    assert r.totals.transcendentals == 100


def test_scan_multiplies_by_length():
    def f(x, w):
        def body(c, _):
            return c @ w, None
        return jax.lax.scan(body, x, None, length=10)[0]
    r = theory(f, sds(64, 64), sds(64, 64))
    assert r.totals.flops_xla == 10 * 2 * 64 ** 3
    assert r.eqns[0].count == 10


def test_fori_loop_static_and_dynamic_while():
    def f(x):
        return jax.lax.fori_loop(0, 7, lambda i, c: c * 2.0, x)
    assert theory(f, sds(5)).totals.flops_xla == 7 * (5 + 1)  # static fori_loop is a scan; +1: i += 1

    def g(x, n):
        return jax.lax.while_loop(lambda c: c[1] < n, lambda c: (c[0] * 2.0, c[1] + 1), (x, 0))[0]
    r = theory(g, sds(5), jax.ShapeDtypeStruct((), jnp.int32))
    assert any("while" in w for w in r.warnings)


def test_cond_takes_max_branch_and_warns():
    def f(p, x):
        return jax.lax.cond(p, lambda x: x * 2.0, lambda x: jnp.sin(x) * x * x, x)
    r = theory(f, jax.ShapeDtypeStruct((), jnp.bool_), sds(10))
    assert r.totals.flops_xla == 1 + 20  # convert of the predicate + x*x*sin branch
    assert r.totals.transcendentals == 10
    assert "cond at <root>: branch 0 of 2 counted (the costliest, as XLA's conditional takes the max)" in r.warnings


def test_while_with_literal_bounds_counts_every_trip():
    def f(x):
        return jax.lax.while_loop(lambda c: c[0] < 7, lambda c: (c[0] + 1, c[1] * 2.0), (0, x))[1]
    j = jax.make_jaxpr(f)(sds(5))
    from jaxcost.theory import trip_count
    assert trip_count(j.eqns[0]) == 7
    r = analyze_jaxpr(j)
    assert r.totals.flops_xla == 7 * (1 + 5) + 8 * 1       # body × 7, the `lt` condition × 8
    assert not r.warnings


def test_zero_size_reduction_costs_zero():
    r = theory(lambda x: jnp.sum(x, axis=0), sds(0, 4))
    assert (r.totals.flops_xla, r.totals.flops_textbook) == (0, 0)
    assert theory(lambda x: jnp.dot(x, x), sds(0)).totals.flops_textbook == 0


def test_unknown_primitive_reported_by_name_and_count():
    from jax.extend.core import Primitive
    p = Primitive("my_mystery_op")
    p.def_abstract_eval(lambda x: x)

    def f(x):
        return p.bind(p.bind(x)) + 1
    r = theory(f, sds(3))
    assert r.unknown == {"my_mystery_op": 2}
    assert "no theory rule for primitive 'my_mystery_op' (2×): its flops are not counted" in r.warnings


def test_layer_paths_from_named_scope_and_nested_jit():
    def f(x, w):
        with jax.named_scope("block"):
            with jax.named_scope("dense"):
                y = x @ w
            return jax.nn.relu(y)
    r = theory(f, sds(2, 4), sds(4, 4))
    paths = {e.primitive: e.path for e in r.eqns}
    assert paths["dot_general"] == "block/dense"
    assert paths["max"] == "block"
    layers = r.by_layer()
    assert layers[("block/dense", "forward")].macs == 32


def test_by_layer_keeps_backward_rows_apart():
    def loss(w, x):
        with jax.named_scope("dense"):
            y = x @ w
        return jnp.sum(y * y)
    r = theory(jax.grad(loss), sds(8, 4), sds(2, 8))
    layers = r.by_layer()
    assert layers[("dense", "forward")].macs == 2 * 8 * 4
    assert layers[("dense", "backward")].macs == 2 * 8 * 4          # dL/dw = xᵀ·dy
    assert sum((c for c in layers.values()), type(r.totals)()) == r.totals


def test_cost_add_scaled_and_eqn_fields_read_through():
    from jaxcost.theory import TheoryCost
    a = TheoryCost(macs=3, flops_xla=6, bytes_in=4, bytes_out=8)
    assert a + a == a.scaled(2) == TheoryCost(macs=6, flops_xla=12, bytes_in=8, bytes_out=16)
    assert a.scaled(2).activation_bytes == 24
    assert repr(a) == "TheoryCost(macs=3, flops_xla=6, bytes_in=4, bytes_out=8)"
    r = theory(lambda x, w: jax.lax.scan(lambda c, _: (c @ w, None), x, None, length=3)[0], sds(2, 4), sds(4, 4))
    e = r.eqns[0]
    assert (e.primitive, e.count, e.macs, e.flops_xla) == ("dot_general", 3, 32, 64)
    assert e.total == e.cost.scaled(3) and r.totals.macs == 96


def test_params_read_through_cheap_ops():
    def f(x, w, b):
        return x @ w.astype(F32).T + jnp.broadcast_to(b, (2, 16))
    r = theory(f, sds(2, 8), sds(16, 8), sds(16), param_invars=frozenset({1, 2}))
    assert r.totals.params_read == 16 * 8 + 16      # the bias's 16 elements, not its 32 broadcast copies
    assert theory(f, sds(2, 8), sds(16, 8), sds(16)).totals.params_read == 0


def test_conv_naive_accesses_without_bias():
    # Hollemans' naive model for a bare conv: input·K²·Cout + output + weights (no bias here).
    e = theory(conv_fn((2, 2), "SAME"), sds(1, 224, 224, 3), sds(3, 3, 3, 32)).eqns[0]
    assert e.accesses_naive == 43_352_064 + 401_408 + 864
    assert e.accesses_ideal == 150_528 + 401_408 + 864
    e = theory(conv_fn((1, 1), "SAME"), sds(1, 112, 112, 64), sds(3, 3, 64, 128)).eqns[0]
    assert e.macs == 924_844_032


def test_grouped_conv_naive_reads_input_k2_cout_over_g_times():
    x, w = sds(1, 8, 8, 8), sds(3, 3, 2, 12)            # 4 groups of 2 → 3 channels
    e = theory(conv_fn((1, 1), "SAME", groups=4), x, w).eqns[0]
    assert e.accesses_naive == 512 * 9 * 3 + 8 * 8 * 12 + 3 * 3 * 2 * 12
    assert e.accesses_naive == formulas.conv_memory_access_naive(8, 8, 8, 3, 12, 8, 8, bias=False, groups=4).total


@pytest.mark.parametrize("make, shape, naive, bias", [
    # Hollemans, "How fast is my model?": input·K²·Cout + output + weights with bias, per layer.
    (lambda r: nnx.Conv(3, 32, (3, 3), strides=2, padding="SAME", rngs=r), (1, 224, 224, 3), 43_754_368, 32),
    (lambda r: nnx.Conv(256, 512, (3, 3), padding="SAME", rngs=r), (1, 28, 28, 256), 926_425_600, 512),
    (lambda r: nnx.Linear(4096, 4096, rngs=r), (1, 4096), 16_777_216 + 4_096 + 16_781_312, 4096),
])
def test_layer_with_bias_reads_hollemans_naive_accesses(make, shape, naive, bias):
    import jaxcost

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.layer = make(rngs)

        def __call__(self, x):
            return self.layer(x)

    r = jaxcost.analyze_theory(Net(nnx.Rngs(0)), jax.ShapeDtypeStruct(shape, F32))
    layer = r.by_layer()[("layer", "forward")]
    assert layer.accesses_naive == naive
    bias_add = next(e for e in r.eqns if e.primitive == "add")
    assert bias_add.accesses_naive == bias_add.accesses_ideal == bias      # the bias, not the output again
    assert bias_add.flops_xla == layer.flops_xla - r.eqns[0].flops_xla      # still one add per output


def test_walk_is_fast_on_a_large_jaxpr():
    import time

    def f(x, ws):
        for w in ws:
            x = jax.nn.relu(conv_fn((1, 1), "SAME")(x, w) + 1.0)
        return x
    ws = [sds(3, 3, 8, 8)] * 150
    j = jax.make_jaxpr(f)(sds(8, 16, 16, 8), ws)
    analyze_jaxpr(j)
    t = time.perf_counter()
    r = analyze_jaxpr(j, param_invars=frozenset(range(1, 151)))
    assert time.perf_counter() - t < 0.2
    assert r.totals.params_read == 150 * 9 * 64


def test_resnet50_walk_fast_and_macs_match_reference():
    import time

    from flax import nnx

    from models import _registry as registry

    model = nnx.eval_shape(lambda: registry.build("resnet50", rngs=nnx.Rngs(0)))
    gdef, state = nnx.split(model)
    leaves, tdef = jax.tree.flatten(state)

    def f(leaves, x):
        m = nnx.merge(gdef, jax.tree.unflatten(tdef, leaves))
        m.eval()
        return m(x)

    x = jax.ShapeDtypeStruct((8, 224, 224, 3), F32)
    j = jax.make_jaxpr(f)(leaves, x)
    t = time.perf_counter()
    r = analyze_jaxpr(j, param_invars=frozenset(range(len(leaves))))
    assert time.perf_counter() - t < 0.5
    assert r.totals.macs == 8 * 4_089_184_256          # torchvision/ptflops: 4.09 GMACs
    assert r.totals.params_read == 25_557_032 + 2 * 26_560   # + BN running mean/var
    assert r.totals.transcendentals == 26_560                # one rsqrt per BN channel
    assert not r.unknown
    lowered = jax.jit(f).lower(leaves, x).cost_analysis()["flops"]
    # XLA accumulates cost in float32: small per-channel ops (64 flops) vanish next to a
    # 1.9 GFLOP conv (ulp 128 at 2**31), so the totals agree to rounding only (48,832 of 6.4e10).
    assert abs(r.totals.flops_xla - lowered) / lowered < 1e-5


def test_dead_equations_skipped_like_lowering():
    # jax.grad keeps the primal loss in the jaxpr unused; the lowering drops it.
    f = jax.grad(lambda w, x: jnp.sum(jnp.max(x @ w, axis=1)))
    a = (sds(16, 16), sds(4, 16))
    assert theory(f, *a).totals.flops_xla == xla(f, *a)["flops"]
    assert {e.direction for e in theory(f, *a).eqns} == {"forward", "backward"}
