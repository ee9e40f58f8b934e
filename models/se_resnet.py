"""SE-ResNet-50/101/152 (Hu et al., "Squeeze-and-Excitation Networks", arXiv 1709.01507),
laid out as Cadene's ``pretrainedmodels`` (the implementation ptflops measured): the
bottleneck strides on its first 1x1 conv, and every block ends with a squeeze-excitation
gate (global average pool, 1x1 conv C -> C/16 + ReLU, 1x1 conv C/16 -> C + sigmoid, both
with bias) applied before the residual sum."""

from __future__ import annotations

import jax
from flax import nnx

from models._registry import Reference, register
from models.inception import _max_pool_ceil
from models.resnet import _bn, _conv

PTFLOPS = "ptflops table in seed 001 (shared/REFERENCE.md)"


class SEModule(nnx.Module):
    def __init__(self, c, reduction=16, *, rngs, dtype=None):
        self.fc1 = nnx.Conv(c, c // reduction, (1, 1), dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Conv(c // reduction, c, (1, 1), dtype=dtype, rngs=rngs)

    def __call__(self, x):
        s = x.mean(axis=(1, 2), keepdims=True)
        return x * jax.nn.sigmoid(self.fc2(jax.nn.relu(self.fc1(s))))


class SEBottleneck(nnx.Module):
    """1x1 reduce (strided), 3x3, 1x1 expand x4, SE gate, shortcut."""

    expansion = 4

    def __init__(self, cin, width, stride, *, rngs, dtype=None):
        cout = width * 4
        self.conv1 = _conv(cin, width, 1, stride, rngs, dtype)
        self.bn1 = _bn(width, rngs, dtype)
        self.conv2 = _conv(width, width, 3, 1, rngs, dtype)
        self.bn2 = _bn(width, rngs, dtype)
        self.conv3 = _conv(width, cout, 1, 1, rngs, dtype)
        self.bn3 = _bn(cout, rngs, dtype)
        self.se = SEModule(cout, rngs=rngs, dtype=dtype)
        self.downsample = nnx.data(None)
        if stride != 1 or cin != cout:
            self.downsample = nnx.List([_conv(cin, cout, 1, stride, rngs, dtype), _bn(cout, rngs, dtype)])

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = jax.nn.relu(self.bn2(self.conv2(y)))
        y = self.se(self.bn3(self.conv3(y)))
        shortcut = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
        return jax.nn.relu(y + shortcut)


class SEResNet(nnx.Module):
    """7x7/2 stem, 3x3/2 max-pool (ceil mode), four SE-bottleneck stages, GAP, FC."""

    def __init__(self, layers, num_classes=1000, *, rngs, dtype=None):
        self.conv1 = nnx.Conv(3, 64, (7, 7), strides=2, padding=3, use_bias=False, dtype=dtype, rngs=rngs)
        self.bn1 = _bn(64, rngs, dtype)
        cin = 64
        stages = []
        for i, (n, width) in enumerate(zip(layers, (64, 128, 256, 512))):
            blocks = []
            for j in range(n):
                blocks.append(SEBottleneck(cin, width, 2 if (j == 0 and i > 0) else 1, rngs=rngs,
                                           dtype=dtype))
                cin = width * 4
            stages.append(nnx.List(blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nnx.Linear(cin, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = _max_pool_ceil(jax.nn.relu(self.bn1(self.conv1(x))), 3, 2)
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in stage:
                x = block(x)
        return self.fc(x.mean(axis=(1, 2)))


_VARIANTS = {
    "se_resnet50": ((3, 4, 6, 3), 28_090_000, 3.90e9),
    "se_resnet101": ((3, 4, 23, 3), 49_330_000, 7.63e9),
    "se_resnet152": ((3, 8, 36, 3), 66_820_000, 11.37e9),
}


def _register(name, layers, params, macs):
    @register(name, input_shape=(224, 224, 3),
              reference=Reference(params, macs, PTFLOPS, params_exact=False, tolerance=0.01,
                                  note="ptflops MACs also count BN / ReLU / pooling"))
    def build(*, rngs, num_classes=1000, dtype=None):
        return SEResNet(layers, num_classes, rngs=rngs, dtype=dtype)

    build.__doc__ = f"{name}: SE bottleneck x {layers}"


for _name, (_layers, _params, _macs) in _VARIANTS.items():
    _register(_name, _layers, _params, _macs)
