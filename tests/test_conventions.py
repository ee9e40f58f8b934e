"""Peer conventions: jaxcost's theory records counted the way ptflops, fvcore, torch's
FlopCounterMode, DeepSpeed, Flax tabulate and Keras count, against what those tools print.

Published figures: ptflops README, torchvision table (sovrasov/flops-counter.pytorch, README.md
at d612c75: "MACs(G) (pytorch)" / "(aten)", ptflops >= 0.7.2, and the table before commit
f221d70 (Dec 2023), ptflops <= 0.7 with module hooks only), printed to 0.01 G / 0.01 M; the
torchvision weights metadata (``models.reference``: ResNet-50 4.089 GMACs, MobileNetV2 300.774
MMACs), which FlopCounterMode doubles; Keras 3.15.1 ``keras.applications.MobileNetV2(weights=None)
.count_params()`` = 3,538,984 (measured here); ``nnx.tabulate(compute_flops=True)`` run here on a
small model. fvcore and DeepSpeed publish no torchvision figures: their totals are derived from
their sources' rules and asserted as exact integers, decomposed into activation counts computed
here from the architectures' tables.
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxcost
import models
from jaxcost import conventions as C


@functools.cache
def theory(name: str):
    return jaxcost.analyze_theory(models.build_abstract(name), jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))


def g2(x: int) -> float:
    return round(x / 1e9, 2)


# ptflops README, torchvision: params (M), MACs (G) pytorch backend, MACs (G) aten backend.
PTFLOPS_README = {
    "alexnet": (61.10, 0.72, 0.71),
    "densenet121": (7.98, 2.90, None),
    "mobilenet_v2": (3.50, 0.32, None),
    "resnet18": (11.69, 1.83, 1.81),
    "resnet50": (25.56, 4.13, 4.09),
    "vgg16": (138.36, 15.52, 15.48),
}
# The same table before ptflops counted functionals (README until commit f221d70): MACs (G).
PTFLOPS_README_MODULES = {
    "alexnet": 0.72, "vgg11": 7.63, "vgg13": 11.34, "vgg16": 15.5, "vgg19": 19.67, "vgg11_bn": 7.64,
    "vgg13_bn": 11.36, "vgg16_bn": 15.53, "vgg19_bn": 19.7, "resnet18": 1.82, "resnet34": 3.68,
    "resnet50": 4.12, "densenet121": 2.88,
}


@pytest.mark.parametrize("name", sorted(PTFLOPS_README))
def test_ptflops_readme(name):
    params, macs, aten = PTFLOPS_README[name]
    c = C.count(theory(name), "ptflops")
    assert (round(c.params / 1e6, 2), g2(c.total), c.unit) == (params, macs, "MACs")
    if aten is not None:
        assert g2(C.count(theory(name), "ptflops-aten").total) == aten


@pytest.mark.parametrize("name", sorted(PTFLOPS_README_MODULES))
def test_ptflops_readme_module_hooks(name):
    assert g2(C.count(theory(name), "ptflops-modules").total) == PTFLOPS_README_MODULES[name]


def resnet50_activations() -> tuple[int, int]:
    """(ReLU outputs, BatchNorm inputs) of torchvision's ResNet-50 at 224, from its stage table:
    a bottleneck's conv1 runs at the stage input size (stride sits in conv2), ReLU follows conv1,
    conv2 and the residual add; every conv (downsample included) has a BatchNorm."""
    relu = bn = 64 * 112 * 112  # stem
    for planes, blocks, h_in, h in ((64, 3, 56, 56), (128, 4, 56, 28), (256, 6, 28, 14), (512, 3, 14, 7)):
        for b in range(blocks):
            block = planes * (h_in if b == 0 else h) ** 2 + planes * h * h + 4 * planes * h * h
            relu, bn = relu + block, bn + block
        bn += 4 * planes * h * h  # downsample
    return relu, bn


def test_resnet50_exact():
    th = theory("resnet50")
    macs = th.totals.macs
    relu, bn = resnet50_activations()
    assert (macs, relu, bn) == (4_089_184_256, 9_608_704, 11_113_984)
    assert round(macs / 1e9, 3) == models.reference("resnet50").macs / 1e9  # torchvision's 4.089 GMACs
    fc_bias, maxpool_in, gap_in = 1000, 64 * 112 * 112, 2048 * 7 * 7
    c = C.count_all(th)
    # ptflops: MACs + fc bias + BN (affine) 2/element; ReLU and both pools twice (hook + F.* wrapper)
    assert c["ptflops"].total == macs + fc_bias + 2 * bn + 2 * (relu + maxpool_in + gap_in) == 4_132_436_968
    assert c["ptflops-modules"].total == macs + fc_bias + 2 * bn + relu + maxpool_in + gap_in == 4_121_925_096
    assert c["ptflops-aten"].total == macs + fc_bias == 4_089_185_256
    # fvcore: one flop per MAC, inference batch_norm 2/element, adaptive_avg_pool2d 1/input element
    assert c["fvcore"].total == macs + 2 * bn + gap_in == 4_111_512_576
    assert c["fvcore"].counted["conv"] + c["fvcore"].counted["linear"] == macs  # fvcore < 0.1.5: "4.09G"
    assert c["fvcore"].ignored == {"relu": 49, "max_pool": 1, "add": 16, "linear_bias": 1}
    # FlopCounterMode: 2 per MAC, nothing else
    assert c["flopcountermode"].total == 2 * macs == 8_178_368_512
    # DeepSpeed: 2 per MAC, BN 2/element, F.relu and pools once, linear bias ignored
    assert c["deepspeed"].total == 2 * macs + 2 * bn + relu + maxpool_in + gap_in == 8_211_108_352
    assert c["flax"].total == th.totals.flops_xla == 7_946_733_928
    # Keras: parameters + BatchNorm moving statistics (2 per channel, 26,560 channels)
    assert c["keras"].total == 25_557_032 + 2 * 26_560 and c["keras"].unit == "params"
    assert c["ptflops"].params == c["deepspeed"].params == 25_557_032


def mobilenet_v2_activations() -> tuple[int, int, int]:
    """(ReLU6 outputs, BatchNorm inputs, residual adds) of torchvision's MobileNetV2 at 224, from its
    (t, c, n, s) table: expand 1x1 (t > 1), depthwise 3x3 (stride s), project 1x1; BN after each
    conv, ReLU6 after all but the projection."""
    relu6 = bn = 32 * 112 * 112  # stem
    cin, h, adds = 32, 112, 0
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            h_out = h // (s if i == 0 else 1)
            hidden = cin * t
            act = (hidden * h * h if t > 1 else 0) + hidden * h_out * h_out
            relu6, bn = relu6 + act, bn + act + c * h_out * h_out
            adds += c * h_out * h_out if (i > 0) else 0
            cin, h = c, h_out
    last = 1280 * 7 * 7
    return relu6 + last, bn + last, adds


def test_mobilenet_v2_exact():
    th = theory("mobilenet_v2")
    macs = th.totals.macs
    relu6, bn, adds = mobilenet_v2_activations()
    assert (macs, relu6, bn) == (300_774_272, 6_105_792, 6_678_112)
    assert round(macs / 1e6, 3) == models.reference("mobilenet_v2").macs / 1e6  # torchvision: 300.774 MMACs
    gap_in = 1280 * 7 * 7
    c = C.count_all(th)
    # ptflops: ReLU6 once (nn.ReLU6 calls F.hardtanh, never wrapped); the global pool is assumed a
    # module (2x): torchvision's MobileNetV2 calls F.adaptive_avg_pool2d itself, counted once, so
    # ptflops prints 62,720 MACs less (320,300,008) -- 0.32 G either way.
    assert c["ptflops"].total == macs + 1000 + 2 * bn + relu6 + 2 * gap_in == 320_362_728
    assert c["ptflops-aten"].total == macs + 1000
    assert c["fvcore"].total == macs + 2 * bn + gap_in == 314_193_216
    assert c["fvcore"].ignored["relu6"] == 35 and c["fvcore"].ignored["add"] == 10
    assert c["flopcountermode"].total == 2 * macs == 601_548_544
    assert c["deepspeed"].total == 2 * macs + 2 * bn + gap_in == 614_967_488  # ReLU6 not counted
    assert c["flax"].total == th.totals.flops_xla and c["flax"].counted["add"] == adds  # residual adds
    assert c["keras"].total == 3_538_984  # keras.applications.MobileNetV2 count_params(), same layout


class Small(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), strides=2, use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(8, use_running_average=True, rngs=rngs)
        self.fc = nnx.Linear(8, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.bn(self.conv(x)))
        x = nnx.max_pool(x, (2, 2), (2, 2))
        return self.fc(x.mean(axis=(1, 2)))


def test_flax_tabulate_measured():
    """``nnx.tabulate(compute_flops=True)`` prints, per module call, exactly jaxcost's flax count."""
    model = Small(nnx.Rngs(0))
    x = jnp.ones((2, 16, 16, 3))
    table = nnx.tabulate(model, x, compute_flops=True, console_kwargs={"force_terminal": False, "width": 200})
    printed = {m[2]: int(m[3]) for m in re.finditer(r"│ (\w*)\s*│ (\w+)\s*│[^│]*│[^│]*│ (\d+)\s*│", table)}
    c = C.count(jaxcost.analyze_theory(model, x), "flax")
    assert printed == {"Small": c.total, "Conv": c.per_layer[("conv", "forward")],
                       "BatchNorm": c.per_layer[("bn", "forward")], "Linear": c.per_layer[("fc", "forward")]}
    assert printed["Small"] == 56_260


def test_flopcountermode_backward():
    """Under autograd FlopCounterMode adds each gradient matmul/conv at its forward size: the
    first conv has only a weight gradient (its input needs none), the others both."""

    def loss(w1, w2, wd, x):
        conv = lambda a, w, s: jax.lax.conv_general_dilated(a, w, (s, s), "SAME",
                                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        with jax.named_scope("conv1"):
            y = jax.nn.relu(conv(x, w1, 2))
        with jax.named_scope("conv2"):
            y = jax.nn.relu(conv(y, w2, 1))
        with jax.named_scope("fc"):
            return ((y.mean(axis=(1, 2)) @ wd) ** 2).sum()

    args = (jnp.ones((3, 3, 3, 8)), jnp.ones((3, 3, 8, 16)), jnp.ones((16, 10)), jnp.ones((2, 16, 16, 3)))
    m1, m2, md = 2 * 8 * 8 * 8 * 27, 2 * 8 * 8 * 16 * 72, 2 * 16 * 10
    th = jaxcost.analyze_theory(jax.grad(loss, argnums=(0, 1, 2)), *args, params_argnums=(0, 1, 2))
    c = C.count(th, "flopcountermode")
    assert c.total == 2 * (m1 + m2 + md) + 2 * (m1 + 2 * m2 + 2 * md)
    assert c.per_layer[("conv1", "backward")] == 2 * m1 and c.per_layer[("conv2", "backward")] == 4 * m2
    # forward-only tools ignore the backward pass (fvcore: + the spatial mean, 1 per input element)
    assert C.count(th, "fvcore").total == m1 + m2 + md + 2 * 8 * 8 * 16


def test_analysis_input_and_report():
    model = Small(nnx.Rngs(0))
    a = jaxcost.analyze(model, jnp.ones((2, 16, 16, 3)), compile=False)
    assert C.count(a, "ptflops") == C.count(a.theory, "ptflops")
    assert C.count(a, "keras").total == a.params + 16  # + BatchNorm mean and variance
    rows = C.conventions_table(a)
    assert [r.tool for r in rows] == list(C.TOOLS)
    flax = next(r for r in rows if r.tool == "flax")
    assert flax.ratio == 1 and flax.jaxcost == a.theory.totals.flops_xla
    text = C.summary(a)
    assert text.startswith("As other tools count it") and all(C.convention(t).title in text for t in C.TOOLS)


def test_rules_are_data_with_sources():
    assert C.TOOLS == ("ptflops", "ptflops-modules", "ptflops-aten", "fvcore", "flopcountermode", "deepspeed",
                       "flax", "keras")
    for tool in C.TOOLS:
        conv = C.convention(tool)
        assert conv.unit in ("MACs", "FLOPs", "params") and conv.reason
        for rule in conv.rules:
            assert rule.kind in C.KINDS and rule.what
            assert re.match(r"[\w.-]+/[\w.-]+ [\w/]+\.py", rule.source), rule.source


def test_errors():
    with pytest.raises(ValueError, match="unknown tool 'thop'"):
        C.count(theory("resnet18"), "thop")
    with pytest.raises(TypeError, match="Analysis or TheoryResult"):
        C.count(np.zeros(3), "ptflops")
