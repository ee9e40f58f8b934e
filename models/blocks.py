"""Building blocks: the zoo's conv and BatchNorm layers, and the comparison blocks, the
design alternatives the efficient-CNN papers argue between.

The zoo's CNNs build their BatchNorms with :func:`bn` and their "same"-padded convolutions
with :func:`conv`. Each registered comparison network is the block alone (no stem, no head
unless the block *is* a head), so its MACs equal the closed form exactly. Inputs are
H x W x M, outputs N channels:

* ``standard_conv3x3`` vs ``depthwise_separable_conv3x3`` (MobileNets, arXiv 1704.04861
  Sec. 3.1): H W M N K^2 vs H W M K^2 + H W M N.
* ``conv5x5`` vs ``two_conv3x3`` (Inception-v3, arXiv 1512.00567 Sec. 3.1): 25 H W M N vs
  9 H W M N + 9 H W N N.
* ``conv7x7`` vs ``asymmetric_conv1x7_7x1`` (Inception-v3 Sec. 3.2): 49 H W M N vs
  7 H W M N + 7 H W N N.
* ``fc_head`` vs ``gap_head`` (Network in Network, arXiv 1312.4400): H W M C vs M C.
* ``conv_bn_relu`` vs ``conv_relu_bn``: same MACs (9 H W M N), different op order.
"""

from __future__ import annotations

import jax
from flax import nnx

from models._registry import Reference, register

H, W, M, N = 28, 28, 64, 64
CLASSES = 1000
SRC = "closed form, models/blocks.py"


def conv(cin, cout, kernel, stride=1, groups=1, *, rngs, dtype=None, bias=False):
    """A ``kernel`` (int k, or (kh, kw)) convolution, no bias unless ``bias``, zero padding
    kh // 2 and kw // 2 on each side: for an odd kernel the output is ceil(H / stride) x
    ceil(W / stride), torchvision's ``padding=k // 2``. Parameters: kh kw (cin / groups) cout,
    + cout with ``bias``."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return nnx.Conv(cin, cout, (kh, kw), strides=stride, padding=((kh // 2, kh // 2), (kw // 2, kw // 2)),
                    feature_group_count=groups, use_bias=bias, dtype=dtype, rngs=rngs)


def bn(c, *, rngs, dtype=None, eps=1e-5):
    """Inference BatchNorm over ``c`` channels (running statistics): y = (x - mean) / sqrt(var +
    eps) * scale + bias, 2c parameters. ``eps`` 1e-5 is torch's default, 1e-3 Keras' and the
    TF-derived ports'; momentum 0.9 is torch's 0.1 (it only matters when training)."""
    return nnx.BatchNorm(c, use_running_average=True, momentum=0.9, epsilon=eps, dtype=dtype, rngs=rngs)


class ConvStack(nnx.Module):
    """A sequence of convs (kernel, groups) with ReLU between them."""

    def __init__(self, specs, cin, cout, *, rngs, dtype=None):
        layers = []
        c = cin
        for kernel, depthwise in specs:
            o = c if depthwise else cout
            layers.append(conv(c, o, kernel, groups=c if depthwise else 1, rngs=rngs, dtype=dtype))
            c = o
        self.layers = nnx.List(layers)

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = jax.nn.relu(x)
        return x


class ConvBNAct(nnx.Module):
    """3x3 conv with BN and ReLU, in order ``conv-bn-relu`` or ``conv-relu-bn``."""

    def __init__(self, cin, cout, order="conv-bn-relu", *, rngs, dtype=None):
        self.order = order
        self.conv = conv(cin, cout, 3, rngs=rngs, dtype=dtype)
        self.bn = bn(cout, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        x = self.conv(x)
        if self.order == "conv-bn-relu":
            return jax.nn.relu(self.bn(x))
        return self.bn(jax.nn.relu(x))


class FCHead(nnx.Module):
    """Flatten the H x W x M map, one linear layer to the classes (VGG/AlexNet style)."""

    def __init__(self, h, w, m, classes, *, rngs, dtype=None):
        self.fc = nnx.Linear(h * w * m, classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return self.fc(x.reshape(x.shape[0], -1))


class GAPHead(nnx.Module):
    """Global average pooling then one linear layer (NIN / GoogLeNet / ResNet style)."""

    def __init__(self, m, classes, *, rngs, dtype=None):
        self.fc = nnx.Linear(m, classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return self.fc(x.mean(axis=(1, 2)))


_HW = H * W
_CONVS = {  # name: (conv specs, closed-form MACs, doc)
    "standard_conv3x3": ((((3, 3), False),), _HW * M * N * 9, "standard 3x3 conv"),
    "depthwise_separable_conv3x3": ((((3, 3), True), ((1, 1), False)), _HW * M * 9 + _HW * M * N,
                                    "3x3 depthwise + 1x1 pointwise conv"),
    "conv5x5": ((((5, 5), False),), _HW * M * N * 25, "one 5x5 conv"),
    "two_conv3x3": ((((3, 3), False), ((3, 3), False)), _HW * M * N * 9 + _HW * N * N * 9, "two stacked 3x3"),
    "conv7x7": ((((7, 7), False),), _HW * M * N * 49, "one 7x7 conv"),
    "asymmetric_conv1x7_7x1": ((((1, 7), False), ((7, 1), False)), _HW * M * N * 7 + _HW * N * N * 7,
                               "1x7 then 7x1 conv"),
}


def _register_conv(name, specs, macs, doc):
    @register(name, input_shape=(H, W, M), reference=Reference(None, float(macs), SRC))
    def build(*, rngs, out_channels=N, dtype=None):
        return ConvStack(specs, M, out_channels, rngs=rngs, dtype=dtype)

    build.__doc__ = f"{name}: {doc}, {M} -> {N} channels on {H}x{W}."
    return build


for _n, (_s, _m, _d) in _CONVS.items():
    _register_conv(_n, _s, _m, _d)


@register("conv_bn_relu", input_shape=(H, W, M), reference=Reference(None, float(_HW * M * N * 9), SRC))
def conv_bn_relu(*, rngs, dtype=None):
    """3x3 conv, then BN, then ReLU."""
    return ConvBNAct(M, N, "conv-bn-relu", rngs=rngs, dtype=dtype)


@register("conv_relu_bn", input_shape=(H, W, M), reference=Reference(None, float(_HW * M * N * 9), SRC))
def conv_relu_bn(*, rngs, dtype=None):
    """3x3 conv, then ReLU, then BN."""
    return ConvBNAct(M, N, "conv-relu-bn", rngs=rngs, dtype=dtype)


@register("fc_head", input_shape=(7, 7, 512), reference=Reference(7 * 7 * 512 * CLASSES + CLASSES,
                                                                  float(7 * 7 * 512 * CLASSES), SRC))
def fc_head(*, rngs, num_classes=CLASSES, dtype=None):
    """Flatten 7x7x512 + linear classifier."""
    return FCHead(7, 7, 512, num_classes, rngs=rngs, dtype=dtype)


@register("gap_head", input_shape=(7, 7, 512), reference=Reference(512 * CLASSES + CLASSES,
                                                                   float(512 * CLASSES), SRC))
def gap_head(*, rngs, num_classes=CLASSES, dtype=None):
    """Global average pooling + linear classifier."""
    return GAPHead(512, num_classes, rngs=rngs, dtype=dtype)
