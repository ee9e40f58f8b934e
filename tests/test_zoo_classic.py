"""Model zoo I (issue 4): the classic CNNs, against torchvision's exact parameter counts
and conv + linear MACs (shared/REFERENCE.md).

Everything is built abstractly (``nnx.eval_shape``) and counted with ``tests/zoo_count.py``;
only resnet18 at 64x64 runs a forward pass with real weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from zoo_count import measure, param_count, random_model

import models

FAMILIES = ("alexnet", "vgg", "resnet", "densenet")
NAMES = [n for n in models.names() if models.family(n) in FAMILIES]


def test_all_registered():
    expected = ["alexnet", *(f"vgg{d}{s}" for d in (11, 13, 16, 19) for s in ("", "_bn")),
                *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
                *(f"densenet{d}" for d in (121, 161, 169, 201))]
    assert sorted(expected) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_params_macs_shape(name):
    ref = models.reference(name)
    assert ref is not None and ref.source
    params, macs, out_shape = measure(name)
    if ref.params_exact:
        assert params == ref.params, (name, params, ref.params, ref.source)
    else:
        assert abs(params / ref.params - 1) <= ref.tolerance, (name, params, ref.params, ref.source)
    if ref.macs is not None:
        assert abs(macs / ref.macs - 1) <= 0.005, (name, macs, ref.macs, ref.source)
    assert out_shape == (1, 1000)


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


def test_resnet18_forward_small():
    """Real weights, eager, 32x32: fill an abstract build with random values (cheaper on CPU
    than running the initializers) and check the logits are finite."""
    y = random_model("resnet18", num_classes=10)(jnp.ones((1, 32, 32, 3)))
    assert y.shape == (1, 10)
    assert np.all(np.isfinite(np.asarray(y)))
