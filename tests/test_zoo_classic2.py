"""Model zoo II: GoogLeNet / Inception, SE-ResNet, Xception, DPN against published
parameter counts and conv + linear MACs (shared/REFERENCE.md).

torchvision models (googlenet, inception_v3) must match the parameter count exactly and
the MACs within 0.5%; ptflops figures (rounded to 0.01 M, and counting BN / ReLU / pooling
in their MACs) within the registered tolerance (1%) for params and 2% for MACs. Everything
is built abstractly (``nnx.eval_shape``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from zoo_count import measure, param_count, random_model

import models

FAMILIES = ("inception", "se_resnet", "xception", "dpn")
NAMES = [n for n in models.names() if models.family(n) in FAMILIES]


def test_registered():
    expected = ["dpn68", "dpn92", "googlenet", "inception_v3", "inception_v4", "se_resnet101",
                "se_resnet152", "se_resnet50", "xception"]
    assert sorted(expected) == NAMES


# Exact counts of the implementations the rounded ptflops figures were measured on
# (Keras' trainable parameters for Xception; Cadene's pretrainedmodels for the rest).
EXACT_PORT_PARAMS = {
    "xception": 22_855_952,
    "inception_v4": 42_679_816,
    "dpn68": 12_611_602,
    "dpn92": 37_668_392,
}


@pytest.mark.parametrize("name", sorted(EXACT_PORT_PARAMS))
def test_exact_port_params(name):
    assert measure(name)[0] == EXACT_PORT_PARAMS[name]


@pytest.mark.parametrize("name", NAMES)
def test_params_macs_shape(name):
    ref = models.reference(name)
    assert ref is not None and ref.source
    params, macs, out_shape = measure(name)
    if ref.params_exact:
        assert params == ref.params, (name, params, ref.params, ref.source)
        mac_tol = 0.005
    else:
        assert abs(params / ref.params - 1) <= ref.tolerance, (name, params, ref.params, ref.source)
        mac_tol = 0.02
    assert abs(macs / ref.macs - 1) <= mac_tol, (name, macs, ref.macs, ref.source)
    assert out_shape == (1, 1000)


def _abstract_call(name, shape, **options):
    with models.fast_abstract_tracing():
        model = nnx.eval_shape(lambda: models.build(name, **options))
        graphdef, state = nnx.split(model)
        out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x, return_aux=True), state,
                             jax.ShapeDtypeStruct((1, *shape), jnp.float32))
    return param_count(model), [o.shape for o in out]


def test_googlenet_aux_heads():
    """torchvision googlenet(aux_logits=True): 13,004,888 params, three logits."""
    params, shapes = _abstract_call("googlenet", (224, 224, 3), aux=True)
    assert params == 13_004_888
    assert shapes == [(1, 1000)] * 3


def test_inception_v3_aux_head():
    """The aux head runs only on request; without it torchvision counts 23,834,568."""
    _, shapes = _abstract_call("inception_v3", (299, 299, 3))
    assert shapes == [(1, 1000)] * 2
    with models.fast_abstract_tracing():
        model = nnx.eval_shape(lambda: models.build("inception_v3", aux=False))
    assert param_count(model) == 23_834_568


def test_forward_small():
    """Real weights, eager, 32x32 (SE gates and ceil-mode pooling run for real): random
    values into an abstract build, finite logits."""
    y = random_model("se_resnet50", num_classes=10)(jnp.ones((1, 32, 32, 3)))
    assert y.shape == (1, 10)
    assert np.all(np.isfinite(np.asarray(y)))
