"""VGG-11/13/16/19 with and without BatchNorm (Simonyan & Zisserman, "Very Deep
Convolutional Networks", arXiv 1409.1556, configs A/B/D/E), laid out as torchvision's
(adaptive average pool to 7x7 before the 4096-4096 classifier)."""

from __future__ import annotations

import jax
from flax import nnx

from models._registry import TORCHVISION, Reference, register
from models.alexnet import adaptive_avg_pool
from models.blocks import bn, conv

CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512,
         "M"),
}


class VGG(nnx.Module):
    """3x3 conv stacks ("M" = 2x2 max-pool), optional BN after each conv, three FC layers."""

    def __init__(self, cfg, batch_norm=False, num_classes=1000, dropout=0.5, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.cfg = cfg
        convs, bns, c = [], [], 3
        for v in cfg:
            if v == "M":
                continue
            convs.append(conv(c, v, 3, bias=True, **kw))
            if batch_norm:
                bns.append(bn(v, **kw))
            c = v
        self.convs = nnx.List(convs)
        self.bns = nnx.List(bns)
        self.fc = nnx.List([nnx.Linear(512 * 7 * 7, 4096, dtype=dtype, rngs=rngs),
                            nnx.Linear(4096, 4096, dtype=dtype, rngs=rngs),
                            nnx.Linear(4096, num_classes, dtype=dtype, rngs=rngs)])
        self.dropout = nnx.Dropout(dropout, deterministic=True, rngs=rngs)

    def __call__(self, x):
        i = 0
        for v in self.cfg:
            if v == "M":
                x = nnx.max_pool(x, (2, 2), (2, 2))
                continue
            x = self.convs[i](x)
            if len(self.bns):
                x = self.bns[i](x)
            x = jax.nn.relu(x)
            i += 1
        x = adaptive_avg_pool(x, 7).reshape(x.shape[0], -1)
        x = self.dropout(jax.nn.relu(self.fc[0](x)))
        x = self.dropout(jax.nn.relu(self.fc[1](x)))
        return self.fc[2](x)


# depth -> (params, params with BN, MACs); BN adds only scale + bias per conv channel.
_VARIANTS = {
    11: (132_863_336, 132_868_840, 7.609e9),
    13: (133_047_848, 133_053_736, 11.308e9),
    16: (138_357_544, 138_365_992, 15.470e9),
    19: (143_667_240, 143_678_248, 19.632e9),
}


def _register(depth, bn, params, macs):
    name = f"vgg{depth}{'_bn' if bn else ''}"

    @register(name, input_shape=(224, 224, 3), reference=Reference(params, macs, TORCHVISION))
    def build(*, rngs, num_classes=1000, dtype=None):
        return VGG(CONFIGS[depth], bn, num_classes, rngs=rngs, dtype=dtype)

    build.__doc__ = f"{name}: VGG config of depth {depth}, batch_norm={bn}"


for _depth, (_p, _pbn, _macs) in _VARIANTS.items():
    _register(_depth, False, _p, _macs)
    _register(_depth, True, _pbn, _macs)
