"""Transformer base (Vaswani et al., "Attention Is All You Need", arXiv 1706.03762):
6 + 6 layers, d_model 512, 8 heads, d_ff 2048, post-LN, sinusoidal positions, one
embedding matrix (shared BPE vocabulary 37,000) tied across source, target and output.

Input: shape (batch, 2, 128): row 0 the source token ids, row 1 the (shifted) target
token ids, sequence length 128 each (a float array is cast to int32, so the zoo's float
example inputs work). Output: logits (batch, 128, vocab). Causal mask in the decoder."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from models._registry import Reference, register


def _sinusoid(n, d):
    pos = np.arange(n)[:, None]
    div = np.exp(np.arange(0, d, 2) * (-math.log(10000.0) / d))
    pe = np.zeros((n, d), np.float32)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * div), np.cos(pos * div)
    return pe


class Attention(nnx.Module):
    """Multi-head attention with separate Q, K, V, O projections."""

    def __init__(self, d, heads, *, rngs, dtype=None):
        self.heads = heads
        self.q, self.k, self.v, self.o = (nnx.Linear(d, d, dtype=dtype, rngs=rngs) for _ in range(4))

    def __call__(self, x, mem, causal=False):
        b, n, d = x.shape
        hd = d // self.heads
        q = self.q(x).reshape(b, n, self.heads, hd)
        k = self.k(mem).reshape(b, mem.shape[1], self.heads, hd)
        v = self.v(mem).reshape(b, mem.shape[1], self.heads, hd)
        a = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
        if causal:
            a = jnp.where(jnp.tril(jnp.ones((n, mem.shape[1]), bool)), a, -1e9)
        y = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(a, axis=-1), v)
        return self.o(y.reshape(b, n, d))


class FeedForward(nnx.Module):
    def __init__(self, d, ff, *, rngs, dtype=None):
        self.fc1 = nnx.Linear(d, ff, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(ff, d, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        return self.fc2(jax.nn.relu(self.fc1(x)))


def _ln(d, rngs, dtype):
    return nnx.LayerNorm(d, epsilon=1e-6, dtype=dtype, rngs=rngs)


class EncoderLayer(nnx.Module):
    """LN(x + SelfAttn(x)); LN(x + FFN(x))."""

    def __init__(self, d, heads, ff, *, rngs, dtype=None):
        self.attn, self.ln1 = Attention(d, heads, rngs=rngs, dtype=dtype), _ln(d, rngs, dtype)
        self.ffn, self.ln2 = FeedForward(d, ff, rngs=rngs, dtype=dtype), _ln(d, rngs, dtype)

    def __call__(self, x):
        x = self.ln1(x + self.attn(x, x))
        return self.ln2(x + self.ffn(x))


class DecoderLayer(nnx.Module):
    """LN(y + MaskedSelfAttn(y)); LN(y + CrossAttn(y, memory)); LN(y + FFN(y))."""

    def __init__(self, d, heads, ff, *, rngs, dtype=None):
        self.self_attn, self.ln1 = Attention(d, heads, rngs=rngs, dtype=dtype), _ln(d, rngs, dtype)
        self.cross_attn, self.ln2 = Attention(d, heads, rngs=rngs, dtype=dtype), _ln(d, rngs, dtype)
        self.ffn, self.ln3 = FeedForward(d, ff, rngs=rngs, dtype=dtype), _ln(d, rngs, dtype)

    def __call__(self, y, mem):
        y = self.ln1(y + self.self_attn(y, y, causal=True))
        y = self.ln2(y + self.cross_attn(y, mem))
        return self.ln3(y + self.ffn(y))


class Transformer(nnx.Module):
    """Encoder-decoder Transformer with tied input/output embeddings."""

    def __init__(self, vocab=37_000, d=512, heads=8, ff=2048, layers=6, *, rngs, dtype=None):
        self.d = d
        self.embed = nnx.Embed(vocab, d, dtype=dtype, rngs=rngs)
        self.encoder = nnx.List([EncoderLayer(d, heads, ff, rngs=rngs, dtype=dtype) for _ in range(layers)])
        self.decoder = nnx.List([DecoderLayer(d, heads, ff, rngs=rngs, dtype=dtype) for _ in range(layers)])

    def _embed(self, ids):
        return self.embed(ids) * math.sqrt(self.d) + _sinusoid(ids.shape[1], self.d)

    def __call__(self, x):
        ids = x.astype(jnp.int32)
        mem = self._embed(ids[:, 0])
        for layer in self.encoder:
            mem = layer(mem)
        y = self._embed(ids[:, 1])
        for layer in self.decoder:
            y = layer(y, mem)
        return self.embed.attend(y)


def _macs(v, d, ff, n_layers, s):
    attn = 4 * s * d * d + 2 * s * s * d  # Q, K, V, O projections + QK^T and AV
    enc = attn + 2 * s * d * ff
    dec = 2 * attn + 2 * s * d * ff
    return n_layers * (enc + dec) + s * d * v


@register("transformer_base", input_shape=(2, 128),
          reference=Reference(65_000_000, float(_macs(37_000, 512, 2048, 6, 128)),
                              "arXiv 1706.03762 Table 3 (base); MACs: closed form", params_exact=False,
                              tolerance=0.05, note="65 M is the paper's rounded figure, tied embeddings give "
                                                   "~63.1 M; MACs at source = target length 128"))
def transformer_base(*, rngs, vocab=37_000, dtype=None):
    """Transformer base (N=6, d_model=512, h=8, d_ff=2048), input (2, seq) = (source, target) ids."""
    return Transformer(vocab, 512, 8, 2048, 6, rngs=rngs, dtype=dtype)
