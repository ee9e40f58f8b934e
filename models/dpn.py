"""Dual Path Networks DPN-68 / DPN-92 (Chen et al., "Dual Path Networks", arXiv 1707.01629),
laid out as Cadene's ``pretrainedmodels`` port (the one ptflops measured): pre-activation
(BN-ReLU-conv, BN eps 1e-3) bottlenecks with a grouped 3x3; each block's output is split
into a residual path (summed) and a densely connected path (concatenated)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models._registry import PTFLOPS, Reference, register
from models.blocks import bn, conv


class BnActConv(nnx.Module):
    """BN, ReLU, conv (no bias)."""

    def __init__(self, cin, cout, k, stride=1, groups=1, *, rngs, dtype=None):
        self.bn = bn(cin, eps=1e-3, rngs=rngs, dtype=dtype)
        self.conv = conv(cin, cout, k, stride, groups, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        return self.conv(jax.nn.relu(self.bn(x)))


class DualPathBlock(nnx.Module):
    """``kind``: "proj" (1x1 projection of the input into both paths), "down" (the same,
    stride 2, and the grouped 3x3 strides) or "normal" (identity paths)."""

    def __init__(self, cin, r, bw, inc, groups, kind, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        stride = 2 if kind == "down" else 1
        self.bw = bw
        self.proj = nnx.data(None)
        if kind != "normal":
            self.proj = BnActConv(cin, bw + 2 * inc, 1, stride, **kw)
        self.c1x1_a = BnActConv(cin, r, 1, **kw)
        self.c3x3_b = BnActConv(r, r, 3, stride, groups, **kw)
        self.c1x1_c = BnActConv(r, bw + inc, 1, **kw)

    def __call__(self, x):
        x_in = jnp.concatenate(x, axis=-1) if isinstance(x, tuple) else x
        if self.proj is not None:
            s = self.proj(x_in)
            res, dense = s[..., : self.bw], s[..., self.bw:]
        else:
            res, dense = x
        y = self.c1x1_c(self.c3x3_b(self.c1x1_a(x_in)))
        return res + y[..., : self.bw], jnp.concatenate([dense, y[..., self.bw:]], axis=-1)


class DPN(nnx.Module):
    """Stem conv (7x7/2, or 3x3/2 for ``small``) + BN-ReLU + 3x3/2 max-pool, four dual-path
    stages, BN-ReLU on the concatenated paths, GAP, classifier (a 1x1 conv in the original,
    here a dense layer: same parameters and MACs)."""

    def __init__(self, small, init_features, k_r, groups, k_sec, inc_sec, num_classes=1000, *, rngs,
                 dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        k = 3 if small else 7
        self.conv1 = conv(3, init_features, k, 2, **kw)
        self.bn1 = bn(init_features, eps=1e-3, **kw)
        factor = 1 if small else 4
        cin = init_features
        stages = []
        for i, (n, inc) in enumerate(zip(k_sec, inc_sec)):
            bw = (64 << i) * factor
            r = k_r * bw // (64 * factor)
            blocks = [DualPathBlock(cin, r, bw, inc, groups, "proj" if i == 0 else "down", **kw)]
            cin = bw + 3 * inc
            for _ in range(n - 1):
                blocks.append(DualPathBlock(cin, r, bw, inc, groups, "normal", **kw))
                cin += inc
            stages.append(nnx.List(blocks))
        self.conv2, self.conv3, self.conv4, self.conv5 = stages
        self.bn_out = bn(cin, eps=1e-3, **kw)
        self.last_linear = nnx.Linear(cin, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        x = nnx.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        for stage in (self.conv2, self.conv3, self.conv4, self.conv5):
            for block in stage:
                x = block(x)
        x = jax.nn.relu(self.bn_out(jnp.concatenate(x, axis=-1)))
        return self.last_linear(x.mean(axis=(1, 2)))


_VARIANTS = {
    #         small, init, k_r, groups, k_sec, inc_sec, params, MACs
    "dpn68": (True, 10, 128, 32, (3, 4, 12, 3), (16, 32, 32, 64), 12_610_000, 2.36e9),
    "dpn92": (False, 64, 96, 32, (3, 4, 20, 3), (16, 32, 24, 128), 37_670_000, 6.56e9),
    "dpn98": (False, 96, 160, 40, (3, 6, 20, 3), (16, 32, 32, 128), 61_570_000, 11.76e9),
    "dpn107": (False, 128, 200, 50, (4, 8, 20, 3), (20, 64, 64, 128), 86_920_000, 18.42e9),
    "dpn131": (False, 128, 160, 40, (4, 8, 28, 3), (16, 32, 32, 128), 79_250_000, 16.13e9),
    # Cadene's dpn68b (b=True) splits each block's last 1x1 conv into the residual and dense
    # outputs (c1x1_c1, c1x1_c2) after the same BN-ReLU: the same parameters and MACs as dpn68
    "dpn68b": (True, 10, 128, 32, (3, 4, 12, 3), (16, 32, 32, 64), 12_610_000, 2.36e9),
}


def _register(name, small, init, k_r, groups, k_sec, inc_sec, params, macs):
    @register(name, input_shape=(224, 224, 3),
              reference=Reference(params, macs, PTFLOPS, params_exact=False, tolerance=0.01,
                                  note="ptflops MACs count BN / ReLU / pooling too"))
    def build(*, rngs, num_classes=1000, dtype=None):
        return DPN(small, init, k_r, groups, k_sec, inc_sec, num_classes, rngs=rngs, dtype=dtype)

    build.__doc__ = f"{name}: k_sec {k_sec}, inc_sec {inc_sec}, k_r {k_r}, groups {groups}"


for _name, _spec in _VARIANTS.items():
    _register(_name, *_spec)
