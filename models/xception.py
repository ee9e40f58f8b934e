"""Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions",
arXiv 1610.02357), laid out as Keras' ``applications.Xception`` (identical to Cadene's
``pretrainedmodels`` port that ptflops measured): entry flow (two plain convs, three
downsampling blocks), middle flow (8 residual blocks of three separable convs at 728
channels), exit flow (one downsampling block, two separable convs), GAP, FC. Separable
convs are depthwise 3x3 + pointwise 1x1, both without bias, followed by BN."""

from __future__ import annotations

import itertools

import jax
from flax import nnx

from models._registry import PTFLOPS, Reference, register
from models.blocks import bn, conv


class SeparableConv(nnx.Module):
    """Depthwise 3x3 (SAME) then pointwise 1x1, no bias, then BN."""

    def __init__(self, cin, cout, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.depthwise = conv(cin, cin, 3, groups=cin, **kw)
        self.pointwise = conv(cin, cout, 1, **kw)
        self.bn = bn(cout, eps=1e-3, **kw)

    def __call__(self, x):
        return self.bn(self.pointwise(self.depthwise(x)))


class XceptionBlock(nnx.Module):
    """``reps`` x (ReLU, separable conv + BN), then a 3x3/2 max-pool when ``stride`` is 2;
    shortcut is identity or 1x1 conv (strided) + BN. ``grow_first`` puts the channel change
    on the first separable conv, otherwise on the last one."""

    def __init__(self, cin, cout, reps, stride, start_with_relu=True, grow_first=True, *, rngs,
                 dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        chans = [cin] + ([cout] * reps if grow_first else [cin] * (reps - 1) + [cout])
        self.convs = nnx.List([SeparableConv(a, b, **kw) for a, b in itertools.pairwise(chans)])
        self.start_with_relu = start_with_relu
        self.stride = stride
        self.skip = nnx.data(None)
        if stride != 1 or cin != cout:
            self.skip = nnx.List([conv(cin, cout, 1, stride, **kw), bn(cout, eps=1e-3, **kw)])

    def __call__(self, x):
        y = x
        for i, sep in enumerate(self.convs):
            if i > 0 or self.start_with_relu:
                y = jax.nn.relu(y)
            y = sep(y)
        if self.stride != 1:
            y = nnx.max_pool(y, (3, 3), (self.stride, self.stride), ((1, 1), (1, 1)))
        shortcut = x if self.skip is None else self.skip[1](self.skip[0](x))
        return y + shortcut


class Xception(nnx.Module):
    def __init__(self, num_classes=1000, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.conv1 = nnx.Conv(3, 32, (3, 3), strides=2, padding="VALID", use_bias=False, dtype=dtype,
                              rngs=rngs)
        self.bn1 = bn(32, eps=1e-3, **kw)
        self.conv2 = nnx.Conv(32, 64, (3, 3), padding="VALID", use_bias=False, dtype=dtype, rngs=rngs)
        self.bn2 = bn(64, eps=1e-3, **kw)
        self.entry = nnx.List([XceptionBlock(64, 128, 2, 2, start_with_relu=False, **kw),
                               XceptionBlock(128, 256, 2, 2, **kw),
                               XceptionBlock(256, 728, 2, 2, **kw)])
        self.middle = nnx.List([XceptionBlock(728, 728, 3, 1, **kw) for _ in range(8)])
        self.exit = XceptionBlock(728, 1024, 2, 2, grow_first=False, **kw)
        self.conv3 = SeparableConv(1024, 1536, **kw)
        self.conv4 = SeparableConv(1536, 2048, **kw)
        self.fc = nnx.Linear(2048, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        x = jax.nn.relu(self.bn2(self.conv2(x)))
        for block in (*self.entry, *self.middle, self.exit):
            x = block(x)
        x = jax.nn.relu(self.conv3(x))
        x = jax.nn.relu(self.conv4(x))
        return self.fc(x.mean(axis=(1, 2)))


@register("xception", input_shape=(299, 299, 3),
          reference=Reference(22_860_000, 8.42e9, PTFLOPS + " (older version)", params_exact=False, tolerance=0.01,
                              note="Keras trainable params 22,855,952; ptflops MACs count BN/ReLU too"))
def xception(*, rngs, num_classes=1000, dtype=None):
    """Xception, Keras / pretrainedmodels layout, 299x299."""
    return Xception(num_classes, rngs=rngs, dtype=dtype)
