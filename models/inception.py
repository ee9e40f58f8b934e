"""GoogLeNet (Szegedy et al., "Going Deeper with Convolutions", arXiv 1409.4842) and
Inception-v3 (Szegedy et al., "Rethinking the Inception Architecture", arXiv 1512.00567),
laid out as torchvision's (BasicConv2d = conv without bias + BN eps 1e-3 + ReLU)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models._registry import PTFLOPS, TORCHVISION, Reference, register
from models.blocks import bn


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class BasicConv2d(nnx.Module):
    """Conv (no bias) + BN (eps 1e-3) + ReLU."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, *, rngs, dtype=None):
        kh, kw = _pair(kernel)
        ph, pw = _pair(padding)
        self.conv = nnx.Conv(cin, cout, (kh, kw), strides=stride, padding=((ph, ph), (pw, pw)),
                             use_bias=False, dtype=dtype, rngs=rngs)
        self.bn = bn(cout, eps=1e-3, rngs=rngs, dtype=dtype)

    def __call__(self, x):
        return jax.nn.relu(self.bn(self.conv(x)))


def _max_pool_ceil(x, k, s):
    """torch ``MaxPool2d(k, s, ceil_mode=True)``: pad the bottom / right with -inf."""
    pads = []
    for n in x.shape[1:3]:
        out = -(-(n - k) // s) + 1
        if (out - 1) * s >= n:  # torch drops a window that starts in the padding
            out -= 1
        pads.append((0, max(0, (out - 1) * s + k - n)))
    return nnx.max_pool(x, (k, k), (s, s), tuple(pads))


# ----------------------------------------------------------------------------- GoogLeNet


class Inception(nnx.Module):
    """Four branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 (torchvision's "5x5" branch uses a 3x3
    kernel); 3x3 max-pool -> 1x1."""

    def __init__(self, cin, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.branch1 = BasicConv2d(cin, ch1x1, 1, **kw)
        self.branch2 = nnx.List([BasicConv2d(cin, ch3x3red, 1, **kw),
                                 BasicConv2d(ch3x3red, ch3x3, 3, padding=1, **kw)])
        self.branch3 = nnx.List([BasicConv2d(cin, ch5x5red, 1, **kw),
                                 BasicConv2d(ch5x5red, ch5x5, 3, padding=1, **kw)])
        self.branch4 = nnx.List([BasicConv2d(cin, pool_proj, 1, **kw)])

    def __call__(self, x):
        b2 = self.branch2[1](self.branch2[0](x))
        b3 = self.branch3[1](self.branch3[0](x))
        b4 = self.branch4[0](nnx.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1))))
        return jnp.concatenate([self.branch1(x), b2, b3, b4], axis=-1)


class GoogLeNetAux(nnx.Module):
    """Auxiliary head: 4x4 adaptive average pool, 1x1 conv 128, FC 1024, FC classes."""

    def __init__(self, cin, num_classes, *, rngs, dtype=None):
        self.conv = BasicConv2d(cin, 128, 1, rngs=rngs, dtype=dtype)
        self.fc1 = nnx.Linear(2048, 1024, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(1024, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        n, h, w, c = x.shape  # 14x14 at 224x224 -> adaptive 4x4 (exact when h, w divisible by 4)
        x = x[:, : h // 4 * 4, : w // 4 * 4].reshape(n, 4, h // 4, 4, w // 4, c).mean(axis=(2, 4))
        x = self.conv(x).reshape(n, -1)
        return self.fc2(jax.nn.relu(self.fc1(x)))


_GOOGLENET_CFG = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nnx.Module):
    """torchvision GoogLeNet; ``aux=True`` adds the two auxiliary heads (after 4a and 4d),
    whose logits ``__call__(x, return_aux=True)`` returns as ``(logits, aux1, aux2)``."""

    def __init__(self, num_classes=1000, aux=False, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.conv1 = BasicConv2d(3, 64, 7, 2, 3, **kw)
        self.conv2 = BasicConv2d(64, 64, 1, **kw)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1, **kw)
        for name, cfg in _GOOGLENET_CFG.items():
            setattr(self, name, Inception(*cfg, **kw))
        self.aux1 = nnx.data(None)
        self.aux2 = nnx.data(None)
        if aux:
            self.aux1 = GoogLeNetAux(512, num_classes, **kw)
            self.aux2 = GoogLeNetAux(528, num_classes, **kw)
        self.fc = nnx.Linear(1024, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x, return_aux=False):
        x = _max_pool_ceil(self.conv1(x), 3, 2)
        x = _max_pool_ceil(self.conv3(self.conv2(x)), 3, 2)
        x = _max_pool_ceil(self.inception3b(self.inception3a(x)), 3, 2)
        x = self.inception4a(x)
        a1 = self.aux1(x) if (return_aux and self.aux1 is not None) else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        a2 = self.aux2(x) if (return_aux and self.aux2 is not None) else None
        x = _max_pool_ceil(self.inception4e(x), 2, 2)
        x = self.inception5b(self.inception5a(x))
        logits = self.fc(x.mean(axis=(1, 2)))
        return (logits, a1, a2) if return_aux else logits


@register("googlenet", input_shape=(224, 224, 3),
          reference=Reference(6_624_904, 1.498e9, TORCHVISION, note="no auxiliary heads"))
def googlenet(*, rngs, num_classes=1000, aux=False, dtype=None):
    """GoogLeNet (Inception v1), torchvision layout; ``aux=True`` adds the auxiliary heads."""
    return GoogLeNet(num_classes, aux, rngs=rngs, dtype=dtype)


# ----------------------------------------------------------------------------- Inception-v3


def _avg3(x):
    return nnx.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=True)


def _max3s2(x):
    return nnx.max_pool(x, (3, 3), (2, 2))


def _seq(mods, x):
    for m in mods:
        x = m(x)
    return x


class InceptionA(nnx.Module):
    def __init__(self, cin, pool_features, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.branch1x1 = BasicConv2d(cin, 64, 1, **kw)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1, **kw)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2, **kw)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1, **kw)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1, **kw)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1, **kw)
        self.branch_pool = BasicConv2d(cin, pool_features, 1, **kw)

    def __call__(self, x):
        return jnp.concatenate([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            _seq((self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3), x),
            self.branch_pool(_avg3(x)),
        ], axis=-1)


class InceptionB(nnx.Module):
    def __init__(self, cin, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.branch3x3 = BasicConv2d(cin, 384, 3, 2, **kw)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1, **kw)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1, **kw)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, 2, **kw)

    def __call__(self, x):
        return jnp.concatenate([
            self.branch3x3(x),
            _seq((self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3), x),
            _max3s2(x),
        ], axis=-1)


class InceptionC(nnx.Module):
    def __init__(self, cin, c7, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.branch1x1 = BasicConv2d(cin, 192, 1, **kw)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1, **kw)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), **kw)
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0), **kw)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1, **kw)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), **kw)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3), **kw)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0), **kw)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3), **kw)
        self.branch_pool = BasicConv2d(cin, 192, 1, **kw)

    def __call__(self, x):
        return jnp.concatenate([
            self.branch1x1(x),
            _seq((self.branch7x7_1, self.branch7x7_2, self.branch7x7_3), x),
            _seq((self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                  self.branch7x7dbl_5), x),
            self.branch_pool(_avg3(x)),
        ], axis=-1)


class InceptionD(nnx.Module):
    def __init__(self, cin, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.branch3x3_1 = BasicConv2d(cin, 192, 1, **kw)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, 2, **kw)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1, **kw)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3), **kw)
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0), **kw)
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, 2, **kw)

    def __call__(self, x):
        return jnp.concatenate([
            self.branch3x3_2(self.branch3x3_1(x)),
            _seq((self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4), x),
            _max3s2(x),
        ], axis=-1)


class InceptionE(nnx.Module):
    def __init__(self, cin, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.branch1x1 = BasicConv2d(cin, 320, 1, **kw)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1, **kw)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1), **kw)
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0), **kw)
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1, **kw)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1, **kw)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1), **kw)
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0), **kw)
        self.branch_pool = BasicConv2d(cin, 192, 1, **kw)

    def __call__(self, x):
        b3 = self.branch3x3_1(x)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return jnp.concatenate([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd),
            self.branch_pool(_avg3(x)),
        ], axis=-1)


class InceptionAux(nnx.Module):
    """5x5/3 average pool, 1x1 conv 128, 5x5 conv 768, global average pool, FC."""

    def __init__(self, cin, num_classes, *, rngs, dtype=None):
        self.conv0 = BasicConv2d(cin, 128, 1, rngs=rngs, dtype=dtype)
        self.conv1 = BasicConv2d(128, 768, 5, rngs=rngs, dtype=dtype)
        self.fc = nnx.Linear(768, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = nnx.avg_pool(x, (5, 5), (3, 3))
        x = self.conv1(self.conv0(x))
        return self.fc(x.mean(axis=(1, 2)))


class Inception3(nnx.Module):
    """torchvision Inception3. The auxiliary head is built (its parameters count, as in
    torchvision) when ``aux=True`` but only runs with ``__call__(x, return_aux=True)``, which
    returns ``(logits, aux_logits)``; the default (eval) forward returns the logits only."""

    def __init__(self, num_classes=1000, aux=True, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, 2, **kw)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3, **kw)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1, **kw)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1, **kw)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3, **kw)
        self.Mixed_5b = InceptionA(192, 32, **kw)
        self.Mixed_5c = InceptionA(256, 64, **kw)
        self.Mixed_5d = InceptionA(288, 64, **kw)
        self.Mixed_6a = InceptionB(288, **kw)
        self.Mixed_6b = InceptionC(768, 128, **kw)
        self.Mixed_6c = InceptionC(768, 160, **kw)
        self.Mixed_6d = InceptionC(768, 160, **kw)
        self.Mixed_6e = InceptionC(768, 192, **kw)
        self.AuxLogits = InceptionAux(768, num_classes, **kw) if aux else nnx.data(None)
        self.Mixed_7a = InceptionD(768, **kw)
        self.Mixed_7b = InceptionE(1280, **kw)
        self.Mixed_7c = InceptionE(2048, **kw)
        self.fc = nnx.Linear(2048, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x, return_aux=False):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = _max3s2(x)
        x = _max3s2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = _seq((self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                  self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e), x)
        aux = self.AuxLogits(x) if (return_aux and self.AuxLogits is not None) else None
        x = _seq((self.Mixed_7a, self.Mixed_7b, self.Mixed_7c), x)
        logits = self.fc(x.mean(axis=(1, 2)))
        return (logits, aux) if return_aux else logits


@register("inception_v3", input_shape=(299, 299, 3),
          reference=Reference(27_161_264, 5.713e9, TORCHVISION,
                              note="params include the auxiliary head; MACs are the eval forward"))
def inception_v3(*, rngs, num_classes=1000, aux=True, dtype=None):
    """Inception-v3, torchvision layout (auxiliary head built, run only on request)."""
    return Inception3(num_classes, aux, rngs=rngs, dtype=dtype)


# ----------------------------------------------------------------------------- Inception-v4


def _avg3_excl(x):
    return nnx.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


class _Branches(nnx.Module):
    """Parallel branches (each a list of BasicConv2d run in sequence; a ``"max"`` branch is a
    3x3/2 max-pool, an ``"avg"`` first step a 3x3/1 average pool), concatenated. Specs are
    ``(cin, cout, kernel, stride, padding)``."""

    def __init__(self, specs, *, rngs, dtype=None):
        self.pools = tuple(tuple(s for s in b if isinstance(s, str)) for b in specs)
        self.branches = nnx.List([
            nnx.List([BasicConv2d(*s, rngs=rngs, dtype=dtype) for s in b if not isinstance(s, str)])
            for b in specs])

    def __call__(self, x):
        outs = []
        for pools, convs in zip(self.pools, self.branches):
            y = x
            if "max" in pools:
                y = _max3s2(y)
            if "avg" in pools:
                y = _avg3_excl(y)
            outs.append(_seq(convs, y))
        return jnp.concatenate(outs, axis=-1)


_V4_STEM = [
    [[(64, 96, 3, 2, 0)], ["max"]],                                               # Mixed_3a
    [[(160, 64, 1, 1, 0), (64, 96, 3, 1, 0)],                                     # Mixed_4a
     [(160, 64, 1, 1, 0), (64, 64, (1, 7), 1, (0, 3)), (64, 64, (7, 1), 1, (3, 0)),
      (64, 96, 3, 1, 0)]],
    [[(192, 192, 3, 2, 0)], ["max"]],                                             # Mixed_5a
]
_INCEPTION_A = [[(384, 96, 1, 1, 0)],
                [(384, 64, 1, 1, 0), (64, 96, 3, 1, 1)],
                [(384, 64, 1, 1, 0), (64, 96, 3, 1, 1), (96, 96, 3, 1, 1)],
                ["avg", (384, 96, 1, 1, 0)]]
_REDUCTION_A = [[(384, 384, 3, 2, 0)],
                [(384, 192, 1, 1, 0), (192, 224, 3, 1, 1), (224, 256, 3, 2, 0)],
                ["max"]]
_INCEPTION_B = [[(1024, 384, 1, 1, 0)],
                [(1024, 192, 1, 1, 0), (192, 224, (1, 7), 1, (0, 3)), (224, 256, (7, 1), 1, (3, 0))],
                [(1024, 192, 1, 1, 0), (192, 192, (7, 1), 1, (3, 0)), (192, 224, (1, 7), 1, (0, 3)),
                 (224, 224, (7, 1), 1, (3, 0)), (224, 256, (1, 7), 1, (0, 3))],
                ["avg", (1024, 128, 1, 1, 0)]]
_REDUCTION_B = [[(1024, 192, 1, 1, 0), (192, 192, 3, 2, 0)],
                [(1024, 256, 1, 1, 0), (256, 256, (1, 7), 1, (0, 3)), (256, 320, (7, 1), 1, (3, 0)),
                 (320, 320, 3, 2, 0)],
                ["max"]]


class InceptionV4C(nnx.Module):
    """Inception-C block of Inception-v4 (two branches split into 1x3 / 3x1 pairs)."""

    def __init__(self, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.branch0 = BasicConv2d(1536, 256, 1, **kw)
        self.branch1_0 = BasicConv2d(1536, 384, 1, **kw)
        self.branch1_1a = BasicConv2d(384, 256, (1, 3), padding=(0, 1), **kw)
        self.branch1_1b = BasicConv2d(384, 256, (3, 1), padding=(1, 0), **kw)
        self.branch2_0 = BasicConv2d(1536, 384, 1, **kw)
        self.branch2_1 = BasicConv2d(384, 448, (3, 1), padding=(1, 0), **kw)
        self.branch2_2 = BasicConv2d(448, 512, (1, 3), padding=(0, 1), **kw)
        self.branch2_3a = BasicConv2d(512, 256, (1, 3), padding=(0, 1), **kw)
        self.branch2_3b = BasicConv2d(512, 256, (3, 1), padding=(1, 0), **kw)
        self.branch3 = BasicConv2d(1536, 256, 1, **kw)

    def __call__(self, x):
        b1 = self.branch1_0(x)
        b2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        return jnp.concatenate([
            self.branch0(x), self.branch1_1a(b1), self.branch1_1b(b1),
            self.branch2_3a(b2), self.branch2_3b(b2), self.branch3(_avg3_excl(x)),
        ], axis=-1)


class InceptionV4(nnx.Module):
    """Inception-v4 as Cadene's ``pretrainedmodels`` (the port ptflops measured): stem,
    4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B, 3 x Inception-C, GAP, FC."""

    def __init__(self, num_classes=1000, *, rngs, dtype=None):
        kw = {"rngs": rngs, "dtype": dtype}
        self.conv1 = BasicConv2d(3, 32, 3, 2, **kw)
        self.conv2 = BasicConv2d(32, 32, 3, **kw)
        self.conv3 = BasicConv2d(32, 64, 3, padding=1, **kw)
        specs = [*_V4_STEM, *[_INCEPTION_A] * 4, _REDUCTION_A, *[_INCEPTION_B] * 7, _REDUCTION_B]
        blocks = [_Branches(s, **kw) for s in specs]
        blocks += [InceptionV4C(**kw) for _ in range(3)]
        self.features = nnx.List(blocks)
        self.last_linear = nnx.Linear(1536, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = self.conv3(self.conv2(self.conv1(x)))
        x = _seq(self.features, x)
        return self.last_linear(x.mean(axis=(1, 2)))


@register("inception_v4", input_shape=(299, 299, 3),
          reference=Reference(42_680_000, 12.31e9, PTFLOPS, params_exact=False, tolerance=0.01,
                              note="pretrainedmodels port: 42,679,816 params; ptflops MACs count BN/ReLU"))
def inception_v4(*, rngs, num_classes=1000, dtype=None):
    """Inception-v4 (Szegedy et al., arXiv 1602.07261), 299x299."""
    return InceptionV4(num_classes, rngs=rngs, dtype=dtype)
