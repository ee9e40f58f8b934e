"""analyze(): totals, layers, params, corrections, errors, reports, CLI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax import lax
from small_models import LinenMLP, TinyResNet
from zoo_count import param_count

import jaxcost
from jaxcost.compiler.corrections import correct
from jaxcost.compiler.hlo import parse_module

F32 = jnp.float32


@pytest.fixture(scope="module")
def resnet():
    model = nnx.eval_shape(lambda: TinyResNet(rngs=nnx.Rngs(0)))
    return model, jaxcost.analyze(model, jax.ShapeDtypeStruct((2, 32, 32, 3), F32))


def test_ops_sum_to_xla_totals(resnet):
    _, a = resnet
    for ops, xla in ((a.ops, a.compiler), (a.ops_unoptimized, a.compiler_unoptimized)):
        assert sum(op.flops for op in ops) == xla.flops  # exact below float32's 2**24
        assert sum(op.transcendentals for op in ops) == xla.transcendentals
        assert sum(op.bytes_accessed for op in ops) == pytest.approx(xla.bytes_accessed, rel=5e-3)
    assert not [w for w in a.warnings if "no cost rule" in w or "XLA says" in w]


def test_nnx_layer_paths_and_params(resnet):
    model, a = resnet
    assert a.params == param_count(model)
    conv2 = a.layer("layer1/0/conv2")
    # 3x3 conv 8->8 on 32x32 batch 2 after a stride-2 max-pool: 16x16 output, padding 1
    assert conv2.params == 3 * 3 * 8 * 8
    assert conv2.flops == 2 * 2 * 8 * 8 * (16 * 3 - 2) ** 2
    assert a.layer("fc").params == 64 * 10 + 10
    assert a.layer("fc").flops >= 2 * 2 * 64 * 10
    bytes_by_layer = sum(r.bytes_accessed for r in a.layers)
    assert bytes_by_layer == pytest.approx(a.compiler.bytes_accessed, rel=5e-3)
    # a fusion lists the layers it holds, and each layer the fusions it ended up in
    fused = [op for op in a.fusions if "layer1/0/conv1" in op.layers]
    assert fused or a.layer("layer1/0/conv1").flops > 0
    assert sum(r.flops for r in a.layers) == a.compiler.flops


def test_linen_paths_and_params():
    a = jaxcost.analyze(LinenMLP(), jax.ShapeDtypeStruct((4, 16), F32))
    assert a.params == 16 * 32 + 32 + 32 * 10 + 10
    assert a.layer("LinenMLP/hidden").params == 16 * 32 + 32
    assert a.layer("LinenMLP/hidden").flops == 2 * 4 * 16 * 32 + 4 * 32
    assert a.layer("LinenMLP/head").flops == 2 * 4 * 32 * 10 + 4 * 10


def test_plain_function_params_argnums_and_backward():
    w = {"w1": jax.ShapeDtypeStruct((8, 8), F32), "b1": jax.ShapeDtypeStruct((8,), F32)}
    x = jax.ShapeDtypeStruct((4, 8), F32)

    def loss(p, x):
        with jax.named_scope("dense"):
            y = jnp.tanh(x @ p["w1"] + p["b1"])
        return (y ** 2).sum()

    a = jaxcost.analyze(jax.grad(loss), w, x, params_argnums=(0,))
    assert a.params == 72
    directions = {(r.path, r.direction) for r in a.layers}
    assert ("dense", "forward") in directions and ("dense", "backward") in directions
    assert a.layer("dense", "backward").flops > 0


def test_scan_corrected_by_trip_count():
    def f(x):
        return lax.scan(lambda c, _: (c @ jnp.ones((64, 64)), None), x, None, length=10)[0]

    a = jaxcost.analyze(f, jax.ShapeDtypeStruct((64, 64), F32))
    matmul = 2 * 64 * 64 * 64
    assert a.compiler.flops == matmul + 2  # XLA: body once (+ counter add and compare)
    assert a.corrected.flops == 10 * (matmul + 1) + 11  # 10 bodies, 11 condition checks
    assert any("10 times" in r for r in a.corrected.reasons)


def test_unknown_trip_count_is_flagged():
    def f(x):
        return lax.while_loop(lambda c: c.sum() < 100.0, lambda c: c * 2.0, x)

    a = jaxcost.analyze(f, jax.ShapeDtypeStruct((8,), F32))
    assert any("unknown trip count" in r for r in a.corrected.reasons)


GPU_HLO = """HloModule jit_f, entry_computation_layout={(f32[32,64]{1,0}, f32[64,128]{1,0})->f32[32,128]{1,0}}

ENTRY %main (x: f32[32,64], w: f32[64,128]) -> f32[32,128] {
  %x = f32[32,64]{1,0} parameter(0)
  %w = f32[64,128]{1,0} parameter(1)
  %gemm = (f32[32,128]{1,0}, s8[4194304]{0}) custom-call(%x, %w), custom_call_target="__cublas$gemm", metadata={op_name="jit(f)/Net/dense/dot_general"}, backend_config={"gemm_backend_config":{"alpha_real":1,"beta":0,"dot_dimension_numbers":{"lhs_contracting_dimensions":["1"],"rhs_contracting_dimensions":["0"],"lhs_batch_dimensions":[],"rhs_batch_dimensions":[]}}}
  ROOT %out = f32[32,128]{1,0} get-tuple-element(%gemm), index=0
}
"""


def test_gpu_custom_calls_counted_from_shapes():
    # A cuBLAS GEMM as XLA:GPU emits it (hand-written in the captured format; XLA prices it -1).
    corrected = correct(parse_module(GPU_HLO).entry)
    assert corrected.flops == 2 * 32 * 128 * 64
    assert corrected.bytes_accessed == 4 * (32 * 64 + 64 * 128 + 32 * 128)
    assert any("GEMM" in r for r in corrected.reasons)


def test_no_compile_fast_path():
    a = jaxcost.analyze(lambda x: jnp.exp(x) @ x, jax.ShapeDtypeStruct((16, 16), F32), compile=False)
    assert not a.compiled and not a.compiler.available and a.ops == []
    assert a.compiler_unoptimized.flops == 2 * 16 ** 3
    assert a.compiler_unoptimized.transcendentals == 256


def test_untraceable_function_raises_analysis_error():
    def bad(x):
        if x.sum() > 0:  # Python control flow on a traced value
            return x
        return -x

    with pytest.raises(jaxcost.AnalysisError, match="bad.*TracerBoolConversionError|bad.*concrete"):
        jaxcost.analyze(bad, jax.ShapeDtypeStruct((3,), F32))


def test_wrong_input_shape_names_expected_channels():
    model = nnx.eval_shape(lambda: TinyResNet(rngs=nnx.Rngs(0)))
    with pytest.raises(jaxcost.AnalysisError, match="expects 3 input channels"):
        jaxcost.analyze(model, jax.ShapeDtypeStruct((1, 32, 32, 5), F32))


def test_unavailable_backend():
    with pytest.raises(jaxcost.AnalysisError, match="not available"):
        jaxcost.analyze(jnp.sin, jax.ShapeDtypeStruct((3,), F32), backend="tpu")


def test_reports(resnet, tmp_path):
    _, a = resnet
    text = a.summary(print_=False)
    assert "layer1/0/conv2" in text and "MAC" in text
    data = json.loads(a.to_json(tmp_path / "a.json"))
    assert data["schema_version"] == 3 and data["params"] == a.params
    assert data["input_dtypes"] == ["float32"] and data["param_dtypes"] == ["float32"] and data["target"] == ""
    assert data["compiler"]["flops"] == a.compiler.flops
    assert json.loads((tmp_path / "a.json").read_text())["name"] == "TinyResNet"
    df = a.to_dataframe()
    assert set(df["path"]) >= {"layer1/0/conv2", "fc"}
    assert "layer1/0/conv2" in a._repr_html_()
    assert len(a.to_dataframe("ops")) == len(a.ops)


def test_analyze_theory_only(resnet):
    model, a = resnet
    t = jaxcost.analyze_theory(model, jax.ShapeDtypeStruct((2, 32, 32, 3), F32))
    assert t.totals == a.theory.totals
    assert t.by_layer()[("layer1/0/conv2", "forward")].flops_xla == a.layer("layer1/0/conv2").flops


def test_ops_without_metadata_go_to_the_layer_of_their_parameter():
    """XLA:CPU re-creates the head's matmul as `dot.1` without op_name metadata; it is
    attributed to the layer whose kernel it reads, so `fc` keeps its 2*64*1000 flops."""
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 64, (3, 3), rngs=rngs)
            self.fc = nnx.Linear(64, 1000, rngs=rngs)

        def __call__(self, x):
            return self.fc(jax.nn.relu(self.conv(x)).mean(axis=(1, 2)))

    m = nnx.eval_shape(lambda: Net(nnx.Rngs(0)))
    a = jaxcost.analyze(m, jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32), theory=False)
    assert a.layer("fc").flops == 2 * 64 * 1000 + 1000
    assert all(op.layer == "fc" for op in a.ops if op.opcode == "dot")


def test_parameter_layers_matches_longest_layer_path():
    from jaxcost.compiler.ops import parameter_layers

    layer_of = parameter_layers(["layer4", "layer4/1", "layer4/1/conv2", "fc", "conv_dw/0"])
    assert layer_of("state__layer4___1___conv2____kernel___value.1") == "layer4/1/conv2"
    assert layer_of("state__layer4___1___bn____scale___value") == "layer4/1"
    assert layer_of("state__conv_dw___0___kernel___value") == "conv_dw/0"
    assert layer_of("state__fc____kernel___value.1") == "fc"
    assert layer_of("x") == ""


def test_backward_theory_rows_stay_apart():
    """Theory by (path, direction): the backward pass gets its own theory row, not merged
    into the forward one; the dense layer's backward dot work is exact."""
    w = jax.ShapeDtypeStruct((8, 16), F32)
    x = jax.ShapeDtypeStruct((4, 8), F32)

    def loss(w, x):
        with jax.named_scope("dense"):
            y = x @ w
        return (y ** 2).sum()

    a = jaxcost.analyze(jax.grad(loss), w, x, params_argnums=(0,))
    forward, backward = a.layer("dense").theory, a.layer("dense", "backward").theory
    assert forward.macs == 4 * 8 * 16
    assert backward.macs == 4 * 8 * 16  # dL/dw = x^T dy only: x is not differentiated
    assert a.layer("dense", "backward").flops == 2 * 4 * 8 * 16


def test_repr_is_short_and_pickle_round_trips(resnet):
    import pickle

    _, a = resnet
    assert len(repr(a)) < 200 and repr(a).startswith("Analysis('TinyResNet'")
    assert all(len(repr(x)) < 300 for x in (a.layers[0], a.explain(), a.theory))
    b = pickle.loads(pickle.dumps(a))
    assert b.to_dict() == a.to_dict()
    assert b.module.xla_total == a.module.xla_total and len(b.ops) == len(a.ops)
    assert b.fusion_report().saved == a.fusion_report().saved


@pytest.mark.parametrize("compile_", [True, False])
def test_explain_ledger_adds_up_for_control_flow(compile_):
    """Loops (theory x trip count vs XLA's body-once total) and cond (costliest branch):
    the ledger ends exactly at XLA's total, and nothing is left unexplained."""
    def lstm(x, w):
        def step(h, xt):
            h = jnp.tanh(xt @ w + h @ w)
            return h, h
        return lax.scan(step, jnp.zeros((8, 64)), x)[1]

    def branches(p, x):
        return lax.cond(p, lambda x: jnp.sin(x @ x), lambda x: x + 1, x)

    S = jax.ShapeDtypeStruct
    for fn, args in ((lstm, (S((10, 8, 64), F32), S((64, 64), F32))),
                     (branches, (S((), bool), S((32, 32), F32)))):
        a = jaxcost.analyze(fn, *args, compile=compile_)
        e = a.explain()
        e.check()
        xla = a.compiler if compile_ else a.compiler_unoptimized
        assert e.total_flops == xla.flops
        assert e.unexplained_flops == 0
    loops = next(d for d in jaxcost.analyze(lstm, S((10, 8, 64), F32), S((64, 64), F32)).explain().lines
                 if d.cause == "XLA counts loop bodies once")
    # nine of ten bodies (two dots, the add, the counter increment) and ten of eleven
    # condition checks are missing from XLA's body-once total
    assert loops.flops == -9 * (2 * 2 * 8 * 64 * 64 + 8 * 64 + 1) - 10 * 1


def test_explain_relabelled_sigmoid_nets_to_zero():
    a = jaxcost.analyze(lambda x: jax.nn.sigmoid(x) * jnp.tanh(x), jax.ShapeDtypeStruct((32, 32), F32))
    e = a.explain()
    e.check()
    assert e.unexplained_flops == 0 and e.total_flops == a.compiler.flops
