"""MobileNet V1 (Howard et al., arXiv 1704.04861) and V2 (Sandler et al., arXiv 1801.04381).

V2 is laid out as torchvision's ``mobilenet_v2`` (ReLU6, dropout-free inference head)."""

from __future__ import annotations

import jax
from flax import nnx

from models._registry import TORCHVISION, Reference, register
from models.blocks import bn, conv


def _make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBN(nnx.Module):
    """KxK conv (optionally grouped) + BN + optional ReLU6 / ReLU."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act="relu6", *, rngs, dtype=None):
        self.conv = conv(cin, cout, k, stride, groups, rngs=rngs, dtype=dtype)
        self.bn = bn(cout, rngs=rngs, dtype=dtype)
        self.act = act

    def __call__(self, x):
        x = self.bn(self.conv(x))
        if self.act == "relu6":
            x = jax.nn.relu6(x)
        elif self.act == "relu":
            x = jax.nn.relu(x)
        return x


class MobileNetV1(nnx.Module):
    """MobileNet V1: 3x3/2 stem then 13 depthwise-separable blocks (dw 3x3 + pw 1x1), GAP, FC.

    ``alpha`` is the width multiplier of the paper (Section 4.2)."""

    _CFG = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
            (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

    def __init__(self, alpha=1.0, num_classes=1000, *, rngs, dtype=None):
        c = int(32 * alpha)
        layers = [ConvBN(3, c, 3, 2, act="relu", rngs=rngs, dtype=dtype)]
        for cout, s in self._CFG:
            cout = int(cout * alpha)
            layers.append(ConvBN(c, c, 3, s, groups=c, act="relu", rngs=rngs, dtype=dtype))
            layers.append(ConvBN(c, cout, 1, 1, act="relu", rngs=rngs, dtype=dtype))
            c = cout
        self.features = nnx.List(layers)
        self.fc = nnx.Linear(c, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        for layer in self.features:
            x = layer(x)
        return self.fc(x.mean(axis=(1, 2)))


class InvertedResidual(nnx.Module):
    """1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection; residual when shapes match."""

    def __init__(self, cin, cout, stride, expand, *, rngs, dtype=None):
        hidden = round(cin * expand)
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != 1:
            layers.append(ConvBN(cin, hidden, 1, rngs=rngs, dtype=dtype))
        layers.append(ConvBN(hidden, hidden, 3, stride, groups=hidden, rngs=rngs, dtype=dtype))
        layers.append(ConvBN(hidden, cout, 1, act=None, rngs=rngs, dtype=dtype))
        self.layers = nnx.List(layers)

    def __call__(self, x):
        y = x
        for layer in self.layers:
            y = layer(y)
        return x + y if self.use_res else y


class MobileNetV2(nnx.Module):
    """MobileNet V2 (Table 2 of arXiv 1801.04381) with width multiplier ``alpha``."""

    _CFG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, alpha=1.0, num_classes=1000, *, rngs, dtype=None):
        c = _make_divisible(32 * alpha)
        last = _make_divisible(1280 * max(1.0, alpha))
        layers = [ConvBN(3, c, 3, 2, rngs=rngs, dtype=dtype)]
        for t, ch, n, s in self._CFG:
            cout = _make_divisible(ch * alpha)
            for i in range(n):
                layers.append(InvertedResidual(c, cout, s if i == 0 else 1, t, rngs=rngs, dtype=dtype))
                c = cout
        layers.append(ConvBN(c, last, 1, rngs=rngs, dtype=dtype))
        self.features = nnx.List(layers)
        self.classifier = nnx.Linear(last, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        for layer in self.features:
            x = layer(x)
        return self.classifier(x.mean(axis=(1, 2)))


@register("mobilenet_v1", input_shape=(224, 224, 3),
          reference=Reference(4_200_000, 569e6, "arXiv 1704.04861 Table 8 (1.0 MobileNet-224)",
                              params_exact=False, tolerance=0.02))
def mobilenet_v1(*, rngs, alpha=1.0, num_classes=1000, dtype=None):
    """MobileNet V1, alpha in {0.25, 0.5, 0.75, 1.0}; resolution is the input size (128..224)."""
    return MobileNetV1(alpha, num_classes, rngs=rngs, dtype=dtype)


@register("mobilenet_v2", input_shape=(224, 224, 3),
          reference=Reference(3_504_872, 300.774e6, TORCHVISION, tolerance=0.005))
def mobilenet_v2(*, rngs, alpha=1.0, num_classes=1000, dtype=None):
    """MobileNet V2, alpha in 0.35..1.4 (torchvision layout)."""
    return MobileNetV2(alpha, num_classes, rngs=rngs, dtype=dtype)


@register("mobilenet_v2_1_4", input_shape=(224, 224, 3),
          reference=Reference(6_900_000, 585e6, "arXiv 1801.04381 Table 4 (MobileNetV2 1.4)",
                              params_exact=False, tolerance=0.02,
                              note="paper's 6.9M params is not reproducible from its own Table 2; "
                                   "the reference implementations (keras 6,156,712) give ~6.1M. "
                                   "MACs match."))
def mobilenet_v2_1_4(*, rngs, num_classes=1000, dtype=None):
    """MobileNet V2 with width multiplier 1.4."""
    return MobileNetV2(1.4, num_classes, rngs=rngs, dtype=dtype)
