"""GhostNet (Han et al., "GhostNet: More Features from Cheap Operations", arXiv 1911.11907),
laid out as the official implementation (Table 1; ghost ratio 2, 3x3 cheap depthwise ops)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from models._registry import Reference, register
from models.blocks import bn, conv
from models.mobilenet import _make_divisible


class GhostModule(nnx.Module):
    """Ghost module (Sec. 3.1): a primary 1x1 conv makes ceil(m/s) intrinsic maps, a cheap
    depthwise dxd conv makes the (s-1) ghost maps from them; concat, keep the first m."""

    def __init__(self, cin, cout, ratio=2, dw_size=3, relu=True, *, rngs, dtype=None):
        init = math.ceil(cout / ratio)
        new = init * (ratio - 1)
        kw = {"rngs": rngs, "dtype": dtype}
        self.cout, self.relu = cout, relu
        self.primary_conv = conv(cin, init, 1, **kw)
        self.primary_bn = bn(init, **kw)
        self.cheap_conv = conv(init, new, dw_size, 1, init, **kw)
        self.cheap_bn = bn(new, **kw)

    def __call__(self, x):
        act = jax.nn.relu if self.relu else (lambda t: t)
        x1 = act(self.primary_bn(self.primary_conv(x)))
        x2 = act(self.cheap_bn(self.cheap_conv(x1)))
        return jnp.concatenate([x1, x2], axis=-1)[..., :self.cout]


class SqueezeExcite(nnx.Module):
    """SE: GAP, 1x1 reduce (ReLU), 1x1 expand, hard-sigmoid gate."""

    def __init__(self, c, se_ratio=0.25, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        r = _make_divisible(c * se_ratio, 4)
        self.reduce = conv(c, r, 1, bias=True, **kw)
        self.expand = conv(r, c, 1, bias=True, **kw)

    def __call__(self, x):
        s = self.expand(jax.nn.relu(self.reduce(x.mean(axis=(1, 2), keepdims=True))))
        return x * jnp.clip((s + 3.0) / 6.0, 0.0, 1.0)


class GhostBottleneck(nnx.Module):
    """Ghost bottleneck (Fig. 3): ghost module (ReLU), [dw stride-2], [SE], ghost module (linear),
    plus identity or dw+1x1 shortcut."""

    def __init__(self, cin, mid, cout, k, stride, se_ratio, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.stride = stride
        self.ghost1 = GhostModule(cin, mid, relu=True, **kw)
        self.conv_dw = conv(mid, mid, k, stride, mid, **kw) if stride > 1 else nnx.data(None)
        self.bn_dw = bn(mid, **kw) if stride > 1 else nnx.data(None)
        self.se = SqueezeExcite(mid, se_ratio, **kw) if se_ratio else nnx.data(None)
        self.ghost2 = GhostModule(mid, cout, relu=False, **kw)
        if cin == cout and stride == 1:
            self.shortcut = nnx.data(None)
        else:
            self.shortcut = nnx.List([conv(cin, cin, k, stride, cin, **kw), bn(cin, **kw),
                                      conv(cin, cout, 1, **kw), bn(cout, **kw)])

    def __call__(self, x):
        y = self.ghost1(x)
        if self.conv_dw is not None:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        y = self.ghost2(y)
        if self.shortcut is None:
            return x + y
        c1, b1, c2, b2 = self.shortcut
        return y + b2(c2(b1(c1(x))))


class GhostNet(nnx.Module):
    """GhostNet (Table 1): 3x3/2 stem, 16 ghost bottlenecks, 1x1 conv 960, GAP, 1x1 conv 1280, FC."""

    _CFG = (  # k, expansion size, out, SE ratio, stride
        (3, 16, 16, 0, 1), (3, 48, 24, 0, 2), (3, 72, 24, 0, 1), (5, 72, 40, 0.25, 2),
        (5, 120, 40, 0.25, 1), (3, 240, 80, 0, 2), (3, 200, 80, 0, 1), (3, 184, 80, 0, 1),
        (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1), (5, 672, 160, 0.25, 2),
        (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1))

    def __init__(self, width=1.0, num_classes=1000, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        c = _make_divisible(16 * width, 4)
        self.conv_stem = conv(3, c, 3, 2, **kw)
        self.bn1 = bn(c, **kw)
        blocks = []
        for k, exp, out, se, s in self._CFG:
            cout = _make_divisible(out * width, 4)
            blocks.append(GhostBottleneck(c, _make_divisible(exp * width, 4), cout, k, s, se, **kw))
            c = cout
        self.blocks = nnx.List(blocks)
        last = _make_divisible(960 * width, 4)
        self.conv_last = conv(c, last, 1, **kw)
        self.bn_last = bn(last, **kw)
        self.conv_head = conv(last, 1280, 1, bias=True, **kw)
        self.classifier = nnx.Linear(1280, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn1(self.conv_stem(x)))
        for b in self.blocks:
            x = b(x)
        x = jax.nn.relu(self.bn_last(self.conv_last(x)))
        x = jax.nn.relu(self.conv_head(x.mean(axis=(1, 2), keepdims=True)))
        return self.classifier(x[:, 0, 0])


@register("ghostnet", input_shape=(224, 224, 3),
          reference=Reference(5_200_000, 141e6, "arXiv 1911.11907 Table 7 (GhostNet 1.0x)",
                              params_exact=False, tolerance=0.02))
def ghostnet(*, rngs, width=1.0, num_classes=1000, dtype=None):
    """GhostNet with width multiplier ``width`` (default 1.0x)."""
    return GhostNet(width, num_classes, rngs=rngs, dtype=dtype)
