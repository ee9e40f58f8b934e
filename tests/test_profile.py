"""``jaxcost.profile``: measured time per kernel and per layer from the JAX profiler's trace,
joined to the priced HLO ops; the rows add up to the measured step exactly."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import pytest

import jaxcost
import models
from jaxcost.cli.main import main
from jaxcost.perf.profile import CONCURRENT, GAPS, kernel_events


@pytest.fixture(scope="module")
def prof():
    model = models.build_abstract("resnet18")
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    a = jaxcost.analyze(model, x, theory=False)
    return a, jaxcost.profile(model, x, steps=3, analysis=a)


def test_kernels_add_up_to_the_step_and_map_to_priced_ops(prof):
    a, p = prof
    assert p.runs == 3 and p.step_s > 0
    assert sum(k.measured_s for k in p.kernels) == pytest.approx(p.step_s, rel=1e-12)
    assert sum(p.layers.values()) == pytest.approx(p.step_s, rel=1e-12)
    assert not p.unmatched  # every event of the program names an op jaxcost priced
    ran = {k.name for k in p.kernels} - {GAPS, CONCURRENT}
    ops = {op.name: op for op in a.ops}
    assert ran <= set(ops)
    # every convolution / dot kernel of the optimized module ran and has a time and a layer
    heavy = {op.name for op in a.ops if op.flops > 1e5}
    assert heavy <= ran
    for k in p.kernels:
        if k.name in ran:
            assert k.measured_s > 0 and k.layers and k.flops == ops[k.name].flops
            assert k.predicted_s is not None and k.bound in ("compute", "memory")
    assert p.kernel(GAPS).measured_s >= 0 and p.kernel(CONCURRENT).measured_s <= 0
    assert "where the time goes" in p.summary(print_=False)
    # the prediction's two ends: kernels one after another, and its longest chain of dependent ones
    assert max(k.predicted_s or 0 for k in p.kernels) < p.critical_path_s <= p.predicted_s
    assert "critical path" in p.summary(print_=False)


def test_kernel_classes_add_up_to_the_kernels(prof):
    from jaxcost.perf.kernels import main_class

    a, p = prof
    ops = {op.name: op for op in a.ops}
    classes = p.by_class()
    ran = [k for k in p.kernels if k.name in ops]
    assert all(k.kernel_class == main_class(ops[k.name]) for k in ran)
    assert {k.kernel_class for k in p.kernels if k.name in (GAPS, CONCURRENT)} == {""}
    assert sum(v.kernels for v in classes.values()) == len(ran)
    assert sum(v.measured_s for v in classes.values()) == pytest.approx(sum(k.measured_s for k in ran), rel=1e-12)
    assert sum(v.predicted_s for v in classes.values()) == pytest.approx(sum(k.predicted_s for k in ran), rel=1e-12)
    times = [v.measured_s for v in classes.values()]
    assert times == sorted(times, reverse=True)
    # ResNet-18: the stem's 7x7 conv is a dense conv, the head a dot, the weights' reversal copies
    # (3x3 convs on 1x1 maps at this input size) memory-bound "other" kernels
    heaviest = lambda layer: max((k for k in ran if layer in k.layers), key=lambda k: k.flops)
    assert heaviest("conv1").kernel_class == "conv" and heaviest("fc").kernel_class == "dot"
    assert {k.kernel_class for k in ran if k.name.startswith("wrapped_reverse")} == {"other"}
    assert set(classes) <= {"conv", "conv1x1", "dot", "window", "other"}
    assert "Kernel classes" in p.summary(print_=False)
    assert p.to_dict()["classes"]["conv"]["kernels"] == classes["conv"].kernels


def test_a_kernel_running_a_chain_of_convs_carries_the_pricing_caveat():
    from jaxcost.perf.kernels import chained_matmuls

    def chain(w1, w2, x):  # the spatial sum makes XLA:CPU run both convs as one kernel
        for w in (w1, w2):
            x = jax.nn.relu(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                         dimension_numbers=("NHWC", "HWIO", "NHWC")))
        return x.sum((1, 2))

    w = jax.ShapeDtypeStruct((3, 3, 128, 128), jnp.float32)
    x = jax.ShapeDtypeStruct((1, 7, 7, 128), jnp.float32)
    a = jaxcost.analyze(chain, w, w, x, theory=False)
    p = jaxcost.profile(chain, w, w, x, steps=2, analysis=a)
    chained = {op.name for op in a.ops if op.instruction is not None and chained_matmuls(op.instruction)}
    assert len(chained) == 1
    assert {k.name for k in p.kernels if k.note} == chained
    assert "2 matmuls chained in one kernel" in p.summary(print_=False)


def test_trace_events_are_filtered_by_module_and_named_by_hlo_op():
    events = [
        {"ph": "X", "name": "ynn_fusion.1", "ts": 0, "dur": 5, "args": {"hlo_module": "jit_f", "hlo_op": "ynn_fusion.1"}},
        {"ph": "X", "name": "ynn_fusion.1", "ts": 0, "dur": 5, "args": {"hlo_module": "jit_g", "hlo_op": "ynn_fusion.1"}},
        {"ph": "X", "name": "fusion.3", "ts": 6, "dur": 1},  # no args: named like an op (another backend)
        {"ph": "X", "name": "ThunkExecutor::Execute", "ts": 0, "dur": 9},
    ]
    found = kernel_events(events, {"ynn_fusion.1", "fusion.3"}, "jit_f")
    assert [e["op"] for e in found] == ["ynn_fusion.1", "fusion.3"]


def test_profile_command(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["profile", "gap_head", "--steps", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["runs"] == 2
    assert sum(k["measured_s"] for k in data["kernels"]) == pytest.approx(data["step_s"], rel=1e-12)
    assert main(["profile", "gap_head", "--steps", "0"]) == 2


def test_kernels_of_a_loop_body_count_to_the_loop():
    def rnn(x, w):
        return jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), x, None, length=16)[0]

    args = (jax.ShapeDtypeStruct((64, 256), jnp.float32), jax.ShapeDtypeStruct((256, 256), jnp.float32))
    a = jaxcost.analyze(rnn, *args, theory=False)
    p = jaxcost.profile(rnn, *args, steps=2, analysis=a)
    (loop,) = [op for op in a.ops if op.opcode == "while"]
    assert not p.unmatched  # the body's dot and tanh kernels are not left unnamed
    row = p.kernel(loop.name)
    assert row.measured_s > 0 and row.calls >= 16  # the body's kernels, once per iteration
    # its work counted every trip (XLA counts the body once): the achieved rates are the loop's
    assert (row.flops, row.bytes_accessed) == (16 * loop.flops, 16 * loop.bytes_accessed)
    assert row.flops_per_s == 16 * loop.flops / row.measured_s
    assert sum(k.measured_s for k in p.kernels) == pytest.approx(p.step_s, rel=1e-12)
