"""AlexNet (Krizhevsky et al., "ImageNet Classification with Deep CNNs", NeurIPS 2012),
laid out as torchvision's single-tower variant (64/192/384/256/256 filters, adaptive
average pool to 6x6 before the classifier)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models._registry import TORCHVISION, Reference, register


def adaptive_avg_pool(x, size):
    """torchvision's ``AdaptiveAvgPool2d(size)`` on NHWC: bins [floor(i H/s), ceil((i+1) H/s))."""
    h, w = x.shape[1:3]
    if (h, w) == (size, size):
        return x

    def bins(n):
        return [(i * n // size, -(-(i + 1) * n // size)) for i in range(size)]

    rows = [jnp.stack([x[:, a:b, c:d].mean(axis=(1, 2)) for c, d in bins(w)], axis=1) for a, b in bins(h)]
    return jnp.stack(rows, axis=1)


class AlexNet(nnx.Module):
    """Five convs (11x11/4, 5x5, three 3x3) with max-pools, then three FC layers."""

    def __init__(self, num_classes=1000, dropout=0.5, *, rngs, dtype=None):
        specs = [(3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1), (384, 256, 3, 1, 1),
                 (256, 256, 3, 1, 1)]
        self.convs = nnx.List([nnx.Conv(i, o, (k, k), strides=s, padding=p, dtype=dtype, rngs=rngs)
                               for i, o, k, s, p in specs])
        self.fc = nnx.List([nnx.Linear(256 * 6 * 6, 4096, dtype=dtype, rngs=rngs),
                            nnx.Linear(4096, 4096, dtype=dtype, rngs=rngs),
                            nnx.Linear(4096, num_classes, dtype=dtype, rngs=rngs)])
        self.dropout = nnx.Dropout(dropout, deterministic=True, rngs=rngs)

    def __call__(self, x):
        for i, conv in enumerate(self.convs):
            x = jax.nn.relu(conv(x))
            if i in (0, 1, 4):
                x = nnx.max_pool(x, (3, 3), (2, 2))
        x = adaptive_avg_pool(x, 6).reshape(x.shape[0], -1)
        x = jax.nn.relu(self.fc[0](self.dropout(x)))
        x = jax.nn.relu(self.fc[1](self.dropout(x)))
        return self.fc[2](x)


@register("alexnet", input_shape=(224, 224, 3), reference=Reference(61_100_840, 0.714e9, TORCHVISION))
def alexnet(*, rngs, num_classes=1000, dtype=None):
    """alexnet: torchvision layout."""
    return AlexNet(num_classes, rngs=rngs, dtype=dtype)
