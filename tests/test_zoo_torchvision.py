"""torchvision's classic CNNs (AlexNet, VGG, ResNet, DenseNet, GoogLeNet, Inception-v3), laid
out as torchvision's, against its 0.29 weights metadata: exact parameter counts and conv +
linear MACs within 0.5 %.

Everything is built abstractly (``nnx.eval_shape``) and counted with ``tests/zoo_count.py``;
only resnet18 at 32x32 runs a forward pass with real weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from zoo_count import check_reference, param_count, random_model

import models

FAMILIES = ("alexnet", "vgg", "resnet", "densenet")
NAMES = [n for n in models.names() if models.family(n) in FAMILIES or n in ("googlenet", "inception_v3")]


def test_all_registered():
    expected = ["alexnet", *(f"vgg{d}{s}" for d in (11, 13, 16, 19) for s in ("", "_bn")),
                *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
                *(f"densenet{d}" for d in (121, 161, 169, 201)), "googlenet", "inception_v3"]
    assert sorted(expected) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_params_macs_shape(name):
    """Every figure here is exact: the parameter count equal, MACs within 0.5 %."""
    assert models.reference(name).params_exact
    check_reference(name)


def test_num_classes_option():
    with models.fast_abstract_tracing():
        model = nnx.eval_shape(lambda: models.build("vgg11_bn", num_classes=10))
    assert param_count(model) == 132_868_840 - 4096 * 990 - 990


@pytest.mark.parametrize("name", ["alexnet", "vgg11"])
def test_adaptive_pool_non_reference_size(name):
    """torchvision's adaptive 7x7 / 6x6 pooling lets VGG / AlexNet take other sizes."""
    with models.fast_abstract_tracing():
        model = nnx.eval_shape(lambda: models.build(name))
        graphdef, state = nnx.split(model)
        out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state,
                             jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32))
    assert out.shape == (2, 1000)


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


def test_resnet18_forward_small():
    """Real weights, eager, 32x32: fill an abstract build with random values (cheaper on CPU
    than running the initializers) and check the logits are finite."""
    y = random_model("resnet18", num_classes=10)(jnp.ones((1, 32, 32, 3)))
    assert y.shape == (1, 10)
    assert np.all(np.isfinite(np.asarray(y)))
