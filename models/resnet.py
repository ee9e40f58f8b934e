"""ResNet-18/34/50/101/152 (He et al., "Deep Residual Learning", arXiv 1512.03385),
laid out as torchvision's (stride on the 3x3 conv of a bottleneck, "ResNet v1.5")."""

from __future__ import annotations

import jax
from flax import nnx

from models._registry import TORCHVISION, Reference, register
from models.blocks import bn, conv


def projection(cin, cout, stride, *, rngs, dtype=None):
    """The shortcut's 1x1 conv (strided) + BN where the block changes the shape, else None."""
    if stride == 1 and cin == cout:
        return nnx.data(None)
    return nnx.List([conv(cin, cout, 1, stride, rngs=rngs, dtype=dtype), bn(cout, rngs=rngs, dtype=dtype)])


def shortcut(downsample, x):
    """x itself, or ``downsample``'s BN(conv(x))."""
    return x if downsample is None else downsample[1](downsample[0](x))


class BasicBlock(nnx.Module):
    """Two 3x3 convs with a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin, width, stride, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.conv1 = conv(cin, width, 3, stride, **kw)
        self.bn1 = bn(width, **kw)
        self.conv2 = conv(width, width, 3, **kw)
        self.bn2 = bn(width, **kw)
        self.downsample = projection(cin, width, stride, **kw)

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return jax.nn.relu(y + shortcut(self.downsample, x))


class Bottleneck(nnx.Module):
    """1x1 reduce, 3x3, 1x1 expand x4, with a shortcut (ResNet-50/101/152). torchvision strides
    the 3x3; the paper (and the SE-ResNet ports) stride the first 1x1: ``stride_on_1x1``."""

    expansion = 4

    def __init__(self, cin, width, stride, *, rngs, dtype=None, stride_on_1x1=False):
        kw = {"rngs": rngs, "dtype": dtype}
        cout = width * 4
        s1, s3 = (stride, 1) if stride_on_1x1 else (1, stride)
        self.conv1 = conv(cin, width, 1, s1, **kw)
        self.bn1 = bn(width, **kw)
        self.conv2 = conv(width, width, 3, s3, **kw)
        self.bn2 = bn(width, **kw)
        self.conv3 = conv(width, cout, 1, **kw)
        self.bn3 = bn(cout, **kw)
        self.downsample = projection(cin, cout, stride, **kw)

    def residual(self, x):
        """The residual branch, before the sum with the shortcut."""
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        return self.bn3(self.conv3(y))

    def __call__(self, x):
        return jax.nn.relu(self.residual(x) + shortcut(self.downsample, x))


class ResNet(nnx.Module):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool), four stages, global average pool, FC."""

    def __init__(self, block, layers, num_classes=1000, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.conv1 = conv(3, 64, 7, 2, **kw)
        self.bn1 = bn(64, **kw)
        cin = 64
        stages = []
        for i, (n, width) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1, **kw))
                cin = width * block.expansion
            stages.append(nnx.List(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nnx.Linear(cin, num_classes, dtype=dtype, rngs=rngs)

    def pool(self, x):
        """The stem's 3x3/2 max-pool, padding 1."""
        return nnx.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))

    def __call__(self, x):
        x = self.pool(jax.nn.relu(self.bn1(self.conv1(x))))
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
