"""The efficient convolutional layers of Wang, Liu & Foroosh, "Design of
Efficient Convolutional Layers using Single Intra-channel Convolution, Topological
Subdivisioning and Spatial 'Bottleneck' Structure" (arXiv 1608.04337).

A standard kxk conv of an n-channel h x w map costs n^2 k^2 hw MACs.

* ``SIC``: b sequential steps, each a per-channel (intra-channel) kxk conv followed by a
  1x1 linear channel mapping, with a residual: b (n k^2 + n^2) hw MACs.
* ``TopologicalSubdivisionConv``: channels laid out on a (d1, .., ds) torus; each output
  channel sees only the c = c1 * .. * cs input channels in its neighbourhood: c/n of the
  standard conv, i.e. n c k^2 hw MACs.
* ``SpatialBottleneck``: kxk conv with stride k, then a non-overlapping kxk stride-k
  deconvolution back to h x w (written as a 1x1 conv to n k^2 channels + depth-to-space):
  2 n^2 hw MACs.

Each layer has a block (layer + BN + ReLU) and a small registered network: a 3x3 stem,
two blocks, global average pooling and a linear classifier.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models._registry import Reference, register
from models.blocks import bn, conv

PAPER = "closed form, arXiv 1608.04337 (Wang, Liu & Foroosh)"


class SIC(nnx.Module):
    """Single intra-channel convolution (Algorithm 2): b x [depthwise kxk, 1x1 map, residual]."""

    def __init__(self, n, k=3, b=2, *, rngs, dtype=None):
        self.intra = nnx.List([conv(n, n, k, groups=n, rngs=rngs, dtype=dtype) for _ in range(b)])
        self.maps = nnx.List([conv(n, n, 1, rngs=rngs, dtype=dtype) for _ in range(b)])

    def __call__(self, x):
        for dw, pw in zip(self.intra, self.maps):
            x = x + pw(dw(x))
        return x


def _neighbours(dims, nbhd):
    """For each channel (on a torus of shape ``dims``) the indices of its neighbourhood ``nbhd``."""
    idx = np.arange(math.prod(dims)).reshape(dims)
    offsets = list(itertools.product(*[range(-(c // 2), c - c // 2) for c in nbhd]))
    out = np.empty((math.prod(dims), len(offsets)), dtype=np.int32)
    for pos in itertools.product(*[range(d) for d in dims]):
        o = idx[pos]
        out[o] = [idx[tuple((p + d) % s for p, d, s in zip(pos, off, dims))] for off in offsets]
    return out


class TopologicalSubdivisionConv(nnx.Module):
    """Topological subdivisioning: n = prod(dims) channels on a torus; output channel i is a kxk
    conv of only its c = prod(nbhd) neighbouring input channels (gather + grouped conv)."""

    def __init__(self, dims=(8, 8), nbhd=(3, 3), k=3, *, rngs, dtype=None):
        n, c = math.prod(dims), math.prod(nbhd)
        self.index = tuple(int(i) for i in _neighbours(dims, nbhd).reshape(-1))  # static
        self.conv = conv(n * c, n, k, groups=n, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        return self.conv(jnp.take(x, jnp.asarray(self.index), axis=-1))


class SpatialBottleneck(nnx.Module):
    """Spatial bottleneck: kxk conv stride k (n -> n), then kxk stride-k deconv back (n -> n)."""

    def __init__(self, n, k=2, *, rngs, dtype=None):
        self.k, self.n = k, n
        self.down = nnx.Conv(n, n, (k, k), strides=k, padding="VALID", use_bias=False, dtype=dtype, rngs=rngs)
        self.up = conv(n, n * k * k, 1, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        b, h, w, _ = x.shape
        y = self.up(self.down(x))  # (b, h/k, w/k, k*k*n): the non-overlapping deconvolution
        k = self.k
        y = y.reshape(b, h // k, w // k, k, k, self.n).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(b, h, w, self.n)


class Block(nnx.Module):
    """layer -> BN -> ReLU."""

    def __init__(self, layer, n, *, rngs, dtype=None):
        self.layer = layer
        self.bn = bn(n, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        return jax.nn.relu(self.bn(self.layer(x)))


class SmallNet(nnx.Module):
    """3x3 stem conv (3 -> n) + BN + ReLU, blocks, global average pooling, linear classifier."""

    def __init__(self, make_layer, n, depth=2, num_classes=10, *, rngs, dtype=None):
        self.stem = conv(3, n, 3, rngs=rngs, dtype=dtype)
        self.bn = bn(n, rngs=rngs, dtype=dtype)
        self.blocks = nnx.List([Block(make_layer(), n, rngs=rngs, dtype=dtype) for _ in range(depth)])
        self.fc = nnx.Linear(n, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn(self.stem(x)))
        for blk in self.blocks:
            x = blk(x)
        return self.fc(x.mean(axis=(1, 2)))


def _net_macs(h, w, n, layer_macs, depth=2, num_classes=10):
    return 27 * n * h * w + depth * layer_macs + n * num_classes


@register("sic_net", input_shape=(32, 32, 3),
          reference=Reference(None, _net_macs(32, 32, 64, 2 * (64 * 9 + 64 * 64) * 32 * 32), PAPER))
def sic_net(*, rngs, n=64, k=3, b=2, depth=2, num_classes=10, dtype=None):
    """Small network of SIC blocks (n channels, b intra-channel convolutions per layer)."""
    return SmallNet(lambda: SIC(n, k, b, rngs=rngs, dtype=dtype), n, depth, num_classes, rngs=rngs, dtype=dtype)


@register("topological_subdivision_net", input_shape=(32, 32, 3),
          reference=Reference(None, _net_macs(32, 32, 64, 64 * 9 * 9 * 32 * 32), PAPER))
def topological_subdivision_net(*, rngs, dims=(8, 8), nbhd=(3, 3), k=3, depth=2, num_classes=10, dtype=None):
    """Small network of topological-subdivisioning blocks (2-D channel torus ``dims``)."""
    n = math.prod(dims)
    return SmallNet(lambda: TopologicalSubdivisionConv(dims, nbhd, k, rngs=rngs, dtype=dtype), n, depth,
                    num_classes, rngs=rngs, dtype=dtype)


@register("spatial_bottleneck_net", input_shape=(32, 32, 3),
          reference=Reference(None, _net_macs(32, 32, 64, 2 * 64 * 64 * 32 * 32), PAPER))
def spatial_bottleneck_net(*, rngs, n=64, k=2, depth=2, num_classes=10, dtype=None):
    """Small network of spatial-bottleneck blocks (stride-k conv + stride-k deconv)."""
    return SmallNet(lambda: SpatialBottleneck(n, k, rngs=rngs, dtype=dtype), n, depth, num_classes, rngs=rngs,
                    dtype=dtype)
