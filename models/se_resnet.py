"""SE-ResNet-50/101/152 (Hu et al., "Squeeze-and-Excitation Networks", arXiv 1709.01507),
laid out as Cadene's ``pretrainedmodels`` (the implementation ptflops measured): the
bottleneck strides on its first 1x1 conv, and every block ends with a squeeze-excitation
gate (global average pool, 1x1 conv C -> C/16 + ReLU, 1x1 conv C/16 -> C + sigmoid, both
with bias) applied before the residual sum; the stem's max-pool runs in ceil mode."""

from __future__ import annotations

import jax
from flax import nnx

from models._registry import PTFLOPS, Reference, register
from models.blocks import conv
from models.inception import _max_pool_ceil
from models.resnet import Bottleneck, ResNet, shortcut


class SEModule(nnx.Module):
    def __init__(self, c, reduction=16, *, rngs, dtype=None):
        self.fc1 = conv(c, c // reduction, 1, bias=True, rngs=rngs, dtype=dtype)
        self.fc2 = conv(c // reduction, c, 1, bias=True, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        s = x.mean(axis=(1, 2), keepdims=True)
        return x * jax.nn.sigmoid(self.fc2(jax.nn.relu(self.fc1(s))))


class SEBottleneck(Bottleneck):
    """1x1 reduce (strided), 3x3, 1x1 expand x4, SE gate, shortcut."""

    def __init__(self, cin, width, stride, *, rngs, dtype=None):
        super().__init__(cin, width, stride, rngs=rngs, dtype=dtype, stride_on_1x1=True)
        self.se = SEModule(width * 4, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        return jax.nn.relu(self.se(self.residual(x)) + shortcut(self.downsample, x))


class SEResNet(ResNet):
    """7x7/2 stem, 3x3/2 max-pool (ceil mode), four SE-bottleneck stages, GAP, FC."""

    def __init__(self, layers, num_classes=1000, *, rngs, dtype=None):
        super().__init__(SEBottleneck, layers, num_classes, rngs=rngs, dtype=dtype)

    def pool(self, x):
        """torch ``MaxPool2d(3, 2, ceil_mode=True)``: no padding, a last partial window."""
        return _max_pool_ceil(x, 3, 2)


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
