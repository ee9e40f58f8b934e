"""DenseNet-121/161/169/201 (Huang et al., "Densely Connected Convolutional Networks",
arXiv 1608.06993), laid out as torchvision's (BN-ReLU-conv bottleneck layers, bn_size 4,
compression 0.5 transitions)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models._registry import TORCHVISION, Reference, register
from models.blocks import bn, conv


class DenseLayer(nnx.Module):
    """BN-ReLU-1x1 conv (bn_size x growth), BN-ReLU-3x3 conv (growth); output concatenated."""

    def __init__(self, cin, growth, bn_size, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.norm1 = bn(cin, **kw)
        self.conv1 = conv(cin, bn_size * growth, 1, **kw)
        self.norm2 = bn(bn_size * growth, **kw)
        self.conv2 = conv(bn_size * growth, growth, 3, **kw)

    def __call__(self, x):
        y = self.conv1(jax.nn.relu(self.norm1(x)))
        y = self.conv2(jax.nn.relu(self.norm2(y)))
        return jnp.concatenate([x, y], axis=-1)


class Transition(nnx.Module):
    """BN-ReLU-1x1 conv halving the channels, 2x2 average pool."""

    def __init__(self, cin, cout, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.norm = bn(cin, **kw)
        self.conv = conv(cin, cout, 1, **kw)

    def __call__(self, x):
        return nnx.avg_pool(self.conv(jax.nn.relu(self.norm(x))), (2, 2), (2, 2))


class DenseNet(nnx.Module):
    """7x7/2 stem + max-pool, four dense blocks joined by transitions, BN-ReLU, GAP, FC."""

    def __init__(self, growth, blocks, init_features, bn_size=4, num_classes=1000, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.conv0 = conv(3, init_features, 7, 2, **kw)
        self.norm0 = bn(init_features, **kw)
        layers, c = [], init_features
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, growth, bn_size, **kw))
                c += growth
            if i < len(blocks) - 1:
                layers.append(Transition(c, c // 2, **kw))
                c //= 2
        self.layers = nnx.List(layers)
        self.norm5 = bn(c, **kw)
        self.classifier = nnx.Linear(c, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.norm0(self.conv0(x)))
        x = nnx.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for layer in self.layers:
            x = layer(x)
        x = jax.nn.relu(self.norm5(x))
        return self.classifier(x.mean(axis=(1, 2)))


_VARIANTS = {
    "densenet121": (32, (6, 12, 24, 16), 64, 7_978_856, 2.834e9),
    "densenet161": (48, (6, 12, 36, 24), 96, 28_681_000, 7.728e9),
    "densenet169": (32, (6, 12, 32, 32), 64, 14_149_480, 3.360e9),
    "densenet201": (32, (6, 12, 48, 32), 64, 20_013_928, 4.291e9),
}


def _register(name, growth, blocks, init, params, macs):
    @register(name, input_shape=(224, 224, 3), reference=Reference(params, macs, TORCHVISION))
    def build(*, rngs, num_classes=1000, dtype=None):
        return DenseNet(growth, blocks, init, num_classes=num_classes, rngs=rngs, dtype=dtype)

    build.__doc__ = f"{name}: growth {growth}, blocks {blocks}, stem {init}"


for _name, _spec in _VARIANTS.items():
    _register(_name, *_spec)
