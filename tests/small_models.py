"""Small test models: a ResNet-style NNX network and a linen MLP."""

from __future__ import annotations

import jax
from flax import linen, nnx


class Bottleneck(nnx.Module):
    """1x1 -> 3x3 -> 1x1 with BatchNorm and ReLU, identity or projection shortcut."""

    def __init__(self, cin: int, width: int, stride: int, *, rngs: nnx.Rngs):
        cout = 4 * width
        self.conv1 = nnx.Conv(cin, width, (1, 1), use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(width, use_running_average=True, rngs=rngs)
        self.conv2 = nnx.Conv(width, width, (3, 3), strides=stride, padding=1, use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(width, use_running_average=True, rngs=rngs)
        self.conv3 = nnx.Conv(width, cout, (1, 1), use_bias=False, rngs=rngs)
        self.bn3 = nnx.BatchNorm(cout, use_running_average=True, rngs=rngs)
        self.proj = nnx.data(None)
        if stride != 1 or cin != cout:
            self.proj = nnx.Conv(cin, cout, (1, 1), strides=stride, use_bias=False, rngs=rngs)
            self.proj_bn = nnx.BatchNorm(cout, use_running_average=True, rngs=rngs)

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.proj is not None:
            x = self.proj_bn(self.proj(x))
        return jax.nn.relu(x + y)


class TinyResNet(nnx.Module):
    def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs):
        self.stem = nnx.Conv(3, 16, (3, 3), padding=1, use_bias=False, rngs=rngs)
        self.bn = nnx.BatchNorm(16, use_running_average=True, rngs=rngs)
        self.layer1 = nnx.List([Bottleneck(16, 8, 1, rngs=rngs), Bottleneck(32, 8, 1, rngs=rngs)])
        self.layer2 = nnx.List([Bottleneck(32, 16, 2, rngs=rngs)])
        self.fc = nnx.Linear(64, num_classes, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn(self.stem(x)))
        x = nnx.max_pool(x, (3, 3), (2, 2), "SAME") if hasattr(nnx, "max_pool") else \
            linen.max_pool(x, (3, 3), (2, 2), "SAME")
        for block in self.layer1:
            x = block(x)
        for block in self.layer2:
            x = block(x)
        return self.fc(x.mean(axis=(1, 2)))


class LinenMLP(linen.Module):
    @linen.compact
    def __call__(self, x):
        x = linen.relu(linen.Dense(32, name="hidden")(x))
        return linen.Dense(10, name="head")(x)
