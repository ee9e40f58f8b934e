"""Fusion report: kernels, absorbed ops, exact byte accounting."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from small_models import TinyResNet

import jaxcost
import models


@pytest.fixture(scope="module")
def tiny():
    model = nnx.eval_shape(lambda: TinyResNet(rngs=nnx.Rngs(0)))
    return jaxcost.analyze(model, jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32))


def test_accounting_is_exact(tiny):
    r = tiny.fusion_report()
    assert r.bytes_unfused == pytest.approx(tiny.compiler_unoptimized.bytes_accessed, rel=5e-3)
    assert r.bytes_fused == pytest.approx(tiny.compiler.bytes_accessed, rel=5e-3)
    assert sum(k.saved for k in r.kernels) + r.eliminated == pytest.approx(r.saved, rel=1e-12)
    assert r.saved > 0


def test_bn_and_relu_land_with_the_conv(tiny):
    r = tiny.fusion_report()
    fused = r.fused_with("layer1/0/conv1")
    assert set(fused["layer1/0/bn1"]) >= {"sub", "mul", "add"}
    assert "max" in fused["layer1/0"]  # the block's ReLU (jax.nn.relu in Bottleneck.__call__)


def test_summary_has_fusion_section(tiny):
    assert "saved" in tiny.summary(print_=False)


@pytest.mark.skipif("resnet50" not in models.names(), reason="zoo ResNet-50 not present")
def test_resnet50_bottleneck_convs():
    model = models.build_abstract("resnet50")
    a = jaxcost.analyze(model, jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
    r = a.fusion_report()
    for i in (1, 2, 3):
        fused = r.fused_with(f"layer1/0/conv{i}")
        assert set(fused[f"layer1/0/bn{i}"]) >= {"sub", "mul", "add"}, fused
        assert "max" in fused["layer1/0"]
    assert sum(k.saved for k in r.kernels) + r.eliminated == pytest.approx(
        a.compiler_unoptimized.bytes_accessed - a.compiler.bytes_accessed, rel=5e-3)
