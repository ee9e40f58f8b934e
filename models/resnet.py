"""ResNet-18/34/50/101/152 (He et al., "Deep Residual Learning", arXiv 1512.03385),
laid out as torchvision's (stride on the 3x3 conv of a bottleneck, "ResNet v1.5")."""

from __future__ import annotations

import jax
from flax import nnx

from models._registry import Reference, register

TORCHVISION = "torchvision 0.29 weights metadata (shared/REFERENCE.md)"


def _bn(c, rngs, dtype):
    return nnx.BatchNorm(c, use_running_average=True, momentum=0.9, epsilon=1e-5, dtype=dtype, rngs=rngs)


def _conv(cin, cout, k, stride, rngs, dtype):
    return nnx.Conv(cin, cout, (k, k), strides=stride, padding=k // 2, use_bias=False, dtype=dtype,
                    rngs=rngs)


class BasicBlock(nnx.Module):
    """Two 3x3 convs with a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin, width, stride, *, rngs, dtype=None):
        self.conv1 = _conv(cin, width, 3, stride, rngs, dtype)
        self.bn1 = _bn(width, rngs, dtype)
        self.conv2 = _conv(width, width, 3, 1, rngs, dtype)
        self.bn2 = _bn(width, rngs, dtype)
        self.downsample = nnx.data(None)
        if stride != 1 or cin != width:
            self.downsample = nnx.List([_conv(cin, width, 1, stride, rngs, dtype), _bn(width, rngs, dtype)])

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
        return jax.nn.relu(y + shortcut)


class Bottleneck(nnx.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand x4, with a shortcut (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, cin, width, stride, *, rngs, dtype=None):
        cout = width * 4
        self.conv1 = _conv(cin, width, 1, 1, rngs, dtype)
        self.bn1 = _bn(width, rngs, dtype)
        self.conv2 = _conv(width, width, 3, stride, rngs, dtype)
        self.bn2 = _bn(width, rngs, dtype)
        self.conv3 = _conv(width, cout, 1, 1, rngs, dtype)
        self.bn3 = _bn(cout, rngs, dtype)
        self.downsample = nnx.data(None)
        if stride != 1 or cin != cout:
            self.downsample = nnx.List([_conv(cin, cout, 1, stride, rngs, dtype), _bn(cout, rngs, dtype)])

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
        return jax.nn.relu(y + shortcut)


class ResNet(nnx.Module):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), four stages, global average pool, FC."""

    def __init__(self, block, layers, num_classes=1000, *, rngs, dtype=None):
        self.conv1 = nnx.Conv(3, 64, (7, 7), strides=2, padding=3, use_bias=False, dtype=dtype, rngs=rngs)
        self.bn1 = _bn(64, rngs, dtype)
        cin = 64
        stages = []
        for i, (n, width) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1, rngs=rngs, dtype=dtype))
                cin = width * block.expansion
            stages.append(nnx.List(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nnx.Linear(cin, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        x = nnx.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                x = block(x)
        return self.fc(x.mean(axis=(1, 2)))


_VARIANTS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2), 11_689_512, 1.814e9),
    "resnet34": (BasicBlock, (3, 4, 6, 3), 21_797_672, 3.664e9),
    "resnet50": (Bottleneck, (3, 4, 6, 3), 25_557_032, 4.089e9),
    "resnet101": (Bottleneck, (3, 4, 23, 3), 44_549_160, 7.801e9),
    "resnet152": (Bottleneck, (3, 8, 36, 3), 60_192_808, 11.514e9),
}


def _register(name, block, layers, params, macs):
    @register(name, input_shape=(224, 224, 3), reference=Reference(params, macs, TORCHVISION))
    def build(*, rngs, num_classes=1000, dtype=None):
        return ResNet(block, layers, num_classes, rngs=rngs, dtype=dtype)

    build.__doc__ = f"{name}: {block.__name__} x {layers}"
    return build


for _name, (_block, _layers, _params, _macs) in _VARIANTS.items():
    _register(_name, _block, _layers, _params, _macs)
