"""Worked numbers of the seed documents, out of jaxcost's theory engine.

Seed 002 (M. Hollemans, "How fast is my model?", 2018, §3): the convolutional part of VGG16 on
a 126x224 input (the 16:9 frame it compares with MobileNet) has about 15 M parameters, 8380 M
MACCs and 8402 M memory accesses under the per-layer model of §2.2 (input x K^2 x Cout + output +
weights and biases, ReLU fused)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

import jaxcost
import models


def test_seed002_vgg16_at_126x224():
    model = models.build_abstract("vgg16")
    t = jaxcost.analyze_theory(model, jax.ShapeDtypeStruct((1, 126, 224, 3), jnp.float32))
    layers = {p: c for (p, d), c in t.by_layer().items() if d == "forward" and p.startswith("convs/")}
    assert len(layers) == 13
    macs = sum(c.macs for c in layers.values())
    accesses = sum(c.accesses_naive for c in layers.values())
    params = sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model.convs, nnx.Param)))
    # the same sums written out: (H, W, Cin, Cout) of the 13 convs, maps halved (floor) by each pool
    shapes = [(126, 224, 3, 64), (126, 224, 64, 64), (63, 112, 64, 128), (63, 112, 128, 128),
              *[(31, 56, c, 256) for c in (128, 256, 256)], *[(15, 28, c, 512) for c in (256, 512, 512)],
              *[(7, 14, 512, 512)] * 3]
    assert macs == sum(h * w * 9 * ci * co for h, w, ci, co in shapes) == 8_380_624_896
    out = sum(h * w * co for h, w, _, co in shapes)
    weights = sum(9 * ci * co + co for _, _, ci, co in shapes)
    assert accesses == macs + out + weights == 8_402_887_488
    assert params == weights == 14_714_688
    # the seed prints them as 15M params, 8380M MACCs, 8402M memory accesses
    assert (round(params / 1e6), macs // 10**6, accesses // 10**6) == (15, 8380, 8402)
