"""Swin Transformer Swin-T (Liu et al., "Swin Transformer: Hierarchical Vision Transformer
using Shifted Windows", arXiv 2103.14030), laid out as torchvision's ``swin_t``:
4x4 patch embedding, (2, 2, 6, 2) blocks, window 7 with cyclic shift 3 on every second
block, relative position bias, patch merging between stages."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models._registry import TORCHVISION, Reference, register


def _relative_index(w):
    coords = np.stack(np.meshgrid(np.arange(w), np.arange(w), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (w - 1)
    return rel[..., 0] * (2 * w - 1) + rel[..., 1]  # (w*w, w*w)


def _shift_mask(h, w, win, shift):
    """Attention mask (nW, win*win, win*win): -100 between tokens from different regions."""
    img = np.zeros((h, w))
    cnt = 0
    for hs in (slice(0, -win), slice(-win, -shift), slice(-shift, None)):
        for ws in (slice(0, -win), slice(-win, -shift), slice(-shift, None)):
            img[hs, ws] = cnt
            cnt += 1
    win_ids = img.reshape(h // win, win, w // win, win).transpose(0, 2, 1, 3).reshape(-1, win * win)
    return np.where(win_ids[:, None, :] != win_ids[:, :, None], -100.0, 0.0).astype(np.float32)


class WindowAttention(nnx.Module):
    """(Shifted-)window multi-head self-attention with a learned relative position bias table."""

    def __init__(self, dim, heads, window, shift, *, rngs, dtype=None):
        self.heads, self.window, self.shift = heads, window, shift
        self.qkv = nnx.Linear(dim, 3 * dim, dtype=dtype, rngs=rngs)
        self.proj = nnx.Linear(dim, dim, dtype=dtype, rngs=rngs)
        self.relative_position_bias_table = nnx.Param(
            jax.random.truncated_normal(rngs.params(), -2, 2, ((2 * window - 1) ** 2, heads)) * 0.02)

    def __call__(self, x):
        b, h, w, c = x.shape
        win = self.window
        shift = 0 if win >= h and win >= w else self.shift  # torchvision: no shift when one window
        if shift:
            x = jnp.roll(x, (-shift, -shift), axis=(1, 2))
        nh, nw = h // win, w // win
        t = x.reshape(b, nh, win, nw, win, c).transpose(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, win * win, c)
        hd = c // self.heads
        qkv = self.qkv(t).reshape(t.shape[0], win * win, 3, self.heads, hd)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        a = jnp.einsum("bqhd,bkhd->bhqk", q * hd ** -0.5, k)
        bias = self.relative_position_bias_table[...][_relative_index(win)]  # (N, N, heads)
        a = a + bias.transpose(2, 0, 1)[None]
        if shift:
            mask = jnp.asarray(_shift_mask(h, w, win, shift))  # (nW, N, N)
            a = (a.reshape(b, nh * nw, self.heads, win * win, win * win) + mask[None, :, None]).reshape(a.shape)
        y = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(a, axis=-1), v).reshape(t.shape[0], win * win, c)
        y = self.proj(y)
        y = y.reshape(b, nh, nw, win, win, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if shift:
            y = jnp.roll(y, (shift, shift), axis=(1, 2))
        return y


class SwinBlock(nnx.Module):
    """x + W-MSA/SW-MSA(LN(x)); x + MLP(LN(x)) (ratio 4, GELU)."""

    def __init__(self, dim, heads, window, shift, *, rngs, dtype=None):
        self.norm1 = nnx.LayerNorm(dim, epsilon=1e-5, dtype=dtype, rngs=rngs)
        self.attn = WindowAttention(dim, heads, window, shift, rngs=rngs, dtype=dtype)
        self.norm2 = nnx.LayerNorm(dim, epsilon=1e-5, dtype=dtype, rngs=rngs)
        self.fc1 = nnx.Linear(dim, 4 * dim, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(4 * dim, dim, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(jax.nn.gelu(self.fc1(self.norm2(x)), approximate=False))


class PatchMerging(nnx.Module):
    """2x2 neighbourhood concat (4C), LN, linear 4C -> 2C without bias."""

    def __init__(self, dim, *, rngs, dtype=None):
        self.norm = nnx.LayerNorm(4 * dim, epsilon=1e-5, dtype=dtype, rngs=rngs)
        self.reduction = nnx.Linear(4 * dim, 2 * dim, use_bias=False, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = jnp.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinTransformer(nnx.Module):
    """Patch embedding (4x4/4 conv + LN), four stages, LN, GAP, linear head."""

    def __init__(self, embed=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24), window=7, num_classes=1000,
                 *, rngs, dtype=None):
        self.patch_embed = nnx.Conv(3, embed, (4, 4), strides=4, padding="VALID", dtype=dtype, rngs=rngs)
        self.patch_norm = nnx.LayerNorm(embed, epsilon=1e-5, dtype=dtype, rngs=rngs)
        layers = []
        dim = embed
        for i, (d, nh) in enumerate(zip(depths, heads)):
            for j in range(d):
                layers.append(SwinBlock(dim, nh, window, 0 if j % 2 == 0 else window // 2, rngs=rngs,
                                        dtype=dtype))
            if i < len(depths) - 1:
                layers.append(PatchMerging(dim, rngs=rngs, dtype=dtype))
                dim *= 2
        self.layers = nnx.List(layers)
        self.norm = nnx.LayerNorm(dim, epsilon=1e-5, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(dim, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = self.patch_norm(self.patch_embed(x))
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(axis=(1, 2)))


@register("swin_t", input_shape=(224, 224, 3),
          reference=Reference(28_288_354, 4.491e9,
                              TORCHVISION, tolerance=0.005,
                              note="MACs include the window-attention matmuls QK^T and AV"))
def swin_t(*, rngs, num_classes=1000, dtype=None):
    """Swin-T: C=96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), window 7."""
    return SwinTransformer(96, (2, 2, 6, 2), (3, 6, 12, 24), 7, num_classes, rngs=rngs, dtype=dtype)
