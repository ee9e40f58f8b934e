"""ShuffleNet V1 (Zhang et al., arXiv 1707.01083) and V2 (Ma et al., arXiv 1807.11164).

V2 is laid out as torchvision's ``shufflenet_v2_x*``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models._registry import TORCHVISION, Reference, register
from models.blocks import bn, conv

_V1_STAGE_OUT = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}  # stage-2 output channels (Table 1)


def channel_shuffle(x, groups):
    """Channel shuffle (ShuffleNet V1 Sec. 3.1): reshape C -> (g, C/g), transpose, flatten."""
    n, h, w, c = x.shape
    return x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4).reshape(n, h, w, c)


class ShuffleUnitV1(nnx.Module):
    """ShuffleNet V1 unit (Fig. 2b/c): 1x1 GConv, shuffle, 3x3 DWConv, 1x1 GConv; add or concat."""

    def __init__(self, cin, cout, stride, groups, first_group=True, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.stride, self.groups = stride, groups
        mid = cout // 4  # bottleneck = 1/4 of the unit's output (official implementation)
        if stride == 2:
            cout = cout - cin
        g1 = groups if first_group else 1
        self.conv1 = conv(cin, mid, 1, 1, g1, **kw)
        self.bn1 = bn(mid, **kw)
        self.conv2 = conv(mid, mid, 3, stride, mid, **kw)
        self.bn2 = bn(mid, **kw)
        self.conv3 = conv(mid, cout, 1, 1, groups, **kw)
        self.bn3 = bn(cout, **kw)

    def __call__(self, x):
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = channel_shuffle(y, self.groups)
        y = self.bn2(self.conv2(y))
        y = self.bn3(self.conv3(y))
        if self.stride == 2:
            sc = nnx.avg_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
            return jax.nn.relu(jnp.concatenate([sc, y], axis=-1))
        return jax.nn.relu(x + y)


class ShuffleNetV1(nnx.Module):
    """ShuffleNet V1 (Table 1), width ``scale`` x, ``groups`` in {1, 2, 3, 4, 8}."""

    def __init__(self, groups=3, scale=1.0, num_classes=1000, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        stem = int(24 * scale)
        self.conv1 = conv(3, stem, 3, 2, **kw)
        self.bn1 = bn(stem, **kw)
        c = stem
        units = []
        for i, n in enumerate((4, 8, 4)):
            cout = int(_V1_STAGE_OUT[groups] * scale) * 2 ** i
            for j in range(n):
                units.append(ShuffleUnitV1(c, cout, 2 if j == 0 else 1, groups, first_group=(i + j > 0), **kw))
                c = cout
        self.units = nnx.List(units)
        self.fc = nnx.Linear(c, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        x = nnx.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for u in self.units:
            x = u(x)
        return self.fc(x.mean(axis=(1, 2)))


class ShuffleUnitV2(nnx.Module):
    """ShuffleNet V2 unit (Fig. 3c/d): channel split, 1x1, 3x3 DW, 1x1 on one branch; concat + shuffle."""

    def __init__(self, cin, cout, stride, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.stride = stride
        bc = cout // 2
        if stride > 1:
            self.branch1 = nnx.List([conv(cin, cin, 3, stride, cin, **kw), bn(cin, **kw),
                                     conv(cin, bc, 1, **kw), bn(bc, **kw)])
        else:
            self.branch1 = nnx.data(None)
        b2in = cin if stride > 1 else bc
        self.branch2 = nnx.List([conv(b2in, bc, 1, **kw), bn(bc, **kw),
                                 conv(bc, bc, 3, stride, bc, **kw), bn(bc, **kw),
                                 conv(bc, bc, 1, **kw), bn(bc, **kw)])

    def _b2(self, x):
        c1, b1, c2, b2, c3, b3 = self.branch2
        return jax.nn.relu(b3(c3(b2(c2(jax.nn.relu(b1(c1(x))))))))

    def __call__(self, x):
        if self.stride == 1:
            x1, x2 = jnp.split(x, 2, axis=-1)
            out = jnp.concatenate([x1, self._b2(x2)], axis=-1)
        else:
            c1, b1, c2, b2 = self.branch1
            out = jnp.concatenate([jax.nn.relu(b2(c2(b1(c1(x))))), self._b2(x)], axis=-1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nnx.Module):
    """ShuffleNet V2 (Table 5): stem, stages of (4, 8, 4) units, 1x1 conv5, GAP, FC."""

    def __init__(self, stages_out, num_classes=1000, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.conv1 = conv(3, stages_out[0], 3, 2, **kw)
        self.bn1 = bn(stages_out[0], **kw)
        c = stages_out[0]
        units = []
        for n, cout in zip((4, 8, 4), stages_out[1:4]):
            for j in range(n):
                units.append(ShuffleUnitV2(c, cout, 2 if j == 0 else 1, **kw))
                c = cout
        self.units = nnx.List(units)
        self.conv5 = conv(c, stages_out[4], 1, **kw)
        self.bn5 = bn(stages_out[4], **kw)
        self.fc = nnx.Linear(stages_out[4], num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        x = nnx.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for u in self.units:
            x = u(x)
        x = jax.nn.relu(self.bn5(self.conv5(x)))
        return self.fc(x.mean(axis=(1, 2)))


@register("shufflenet_v1_g3", input_shape=(224, 224, 3),
          reference=Reference(1_900_000, 140e6, "arXiv 1707.01083 Table 2 (ShuffleNet 1x, g=3)",
                              params_exact=False, tolerance=0.02))
def shufflenet_v1_g3(*, rngs, groups=3, scale=1.0, num_classes=1000, dtype=None):
    """ShuffleNet V1 1x; ``groups`` in {1, 2, 3, 4, 8} (default 3)."""
    return ShuffleNetV1(groups, scale, num_classes, rngs=rngs, dtype=dtype)


_V2 = {  # name: (stage channels, torchvision params, torchvision MACs, paper params, paper MACs)
    "shufflenet_v2_x0_5": ((24, 48, 96, 192, 1024), 1_366_792, None, 1.4e6, 41e6),
    "shufflenet_v2_x1_0": ((24, 116, 232, 464, 1024), 2_278_604, 0.145e9, 2.3e6, 146e6),
    "shufflenet_v2_x1_5": ((24, 176, 352, 704, 1024), 3_503_624, None, 3.5e6, 299e6),
    "shufflenet_v2_x2_0": ((24, 244, 488, 976, 2048), 7_393_996, None, 7.4e6, 591e6),
}
PAPER_V2 = {k: (v[3], v[4]) for k, v in _V2.items()}  # arXiv 1807.11164 Table 5


def _register_v2(name, stages, params, macs):
    @register(name, input_shape=(224, 224, 3),
              reference=Reference(params, macs if macs else PAPER_V2[name][1],
                                  TORCHVISION + ("" if macs else "; MACs: arXiv 1807.11164 Table 5"),
                                  tolerance=0.005 if macs else 0.02,
                                  note="paper (arXiv 1807.11164 Table 5): "
                                       f"{PAPER_V2[name][0] / 1e6}M params, {PAPER_V2[name][1] / 1e6:.0f}M MACs"))
    def build(*, rngs, num_classes=1000, dtype=None):
        return ShuffleNetV2(stages, num_classes, rngs=rngs, dtype=dtype)

    build.__doc__ = f"{name}: ShuffleNet V2 with stage channels {stages}"
    return build


for _n, (_s, _p, _m, _pp, _pm) in _V2.items():
    _register_v2(_n, _s, _p, _m)
