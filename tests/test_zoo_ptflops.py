"""The CNNs of the ptflops README table (Inception-v4, SE-ResNet-50/101/152, Xception, DPN-68/92),
laid out as the ports it measured (Cadene's ``pretrainedmodels``; Keras for Xception).

The table rounds parameters to 0.01 M and its MACs also count BN / ReLU / pooling: params
must fall within the registered tolerance (1 %), conv + linear MACs within 2 %, and the
parameter counts of the ports themselves exactly. Everything is built abstractly
(``nnx.eval_shape``); only se_resnet50 at 32x32 runs a forward pass with real weights."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from zoo_count import check_reference, measure, random_model

import models
from models._registry import PTFLOPS

NAMES = [n for n in models.names() if getattr(models.reference(n), "source", "").startswith(PTFLOPS)]


def test_registered():
    expected = ["dpn107", "dpn131", "dpn68", "dpn68b", "dpn92", "dpn98", "inception_v4", "se_resnet101",
                "se_resnet152", "se_resnet50", "xception"]
    assert sorted(expected) == NAMES


# Exact counts of the implementations the rounded ptflops figures were measured on
# (Keras' trainable parameters for Xception; Cadene's pretrainedmodels for the rest).
EXACT_PORT_PARAMS = {
    "xception": 22_855_952,
    "inception_v4": 42_679_816,
    "dpn68": 12_611_602,
    "dpn68b": 12_611_602,
    "dpn92": 37_668_392,
    "dpn98": 61_570_728,
    "dpn107": 86_917_800,
    "dpn131": 79_254_504,
}


@pytest.mark.parametrize("name", sorted(EXACT_PORT_PARAMS))
def test_exact_port_params(name):
    assert measure(name)[0] == EXACT_PORT_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_params_macs_shape(name):
    check_reference(name)


def test_forward_small():
    """Real weights, eager, 32x32 (SE gates and ceil-mode pooling run for real): random
    values into an abstract build, finite logits."""
    y = random_model("se_resnet50", num_classes=10)(jnp.ones((1, 32, 32, 3)))
    assert y.shape == (1, 10)
    assert np.all(np.isfinite(np.asarray(y)))
