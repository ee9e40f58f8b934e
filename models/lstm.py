"""LSTM language model: Zaremba, Sutskever & Vinyals, "Recurrent Neural Network
Regularization" (arXiv 1409.2329), the "medium" PTB model: 2 layers of 650 units,
vocabulary 10,000, unrolled 35 steps.

Input: token ids of shape (batch, 35) (a float array is cast to int32, so the zoo's
float example inputs work). The recurrence is a ``jax.lax.scan`` over time: per step
and layer the gates cost 4 (d_in + d_h) d_h MACs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models._registry import Reference, register


class LSTMLayer(nnx.Module):
    """One LSTM layer: gates = x W_x + h W_h + b (i, f, g, o), scanned over time."""

    def __init__(self, d_in, d_h, *, rngs, dtype=None):
        self.d_h = d_h
        self.wx = nnx.Linear(d_in, 4 * d_h, dtype=dtype, rngs=rngs)
        self.wh = nnx.Linear(d_h, 4 * d_h, use_bias=False, dtype=dtype, rngs=rngs)

    def __call__(self, x):  # (b, t, d_in) -> (b, t, d_h)
        b = x.shape[0]
        wx_k, wx_b, wh_k = self.wx.kernel[...], self.wx.bias[...], self.wh.kernel[...]

        def step(carry, xt):
            h, c = carry
            gates = xt @ wx_k + wx_b + h @ wh_k
            i, f, g, o = jnp.split(gates, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        zeros = jnp.zeros((b, self.d_h), x.dtype)
        _, hs = jax.lax.scan(step, (zeros, zeros), x.swapaxes(0, 1))
        return hs.swapaxes(0, 1)


class LSTMLanguageModel(nnx.Module):
    """Embedding, stacked LSTM layers, linear softmax layer over the vocabulary."""

    def __init__(self, vocab=10_000, d=650, layers=2, *, rngs, dtype=None):
        self.embed = nnx.Embed(vocab, d, dtype=dtype, rngs=rngs)
        self.layers = nnx.List([LSTMLayer(d, d, rngs=rngs, dtype=dtype) for _ in range(layers)])
        self.out = nnx.Linear(d, vocab, dtype=dtype, rngs=rngs)

    def __call__(self, tokens):
        x = self.embed(tokens.astype(jnp.int32))
        for layer in self.layers:
            x = layer(x)
        return self.out(x)


def _params(v, d, n):
    return v * d + n * (8 * d * d + 4 * d) + d * v + v


def _macs(v, d, n, t):
    return t * (n * 8 * d * d + d * v)  # per step: n layers x 4 (d + d) d gates, softmax d v


@register("lstm", input_shape=(35,),
          reference=Reference(_params(10_000, 650, 2), float(_macs(10_000, 650, 2, 35)),
                              "closed form, arXiv 1409.2329 (medium)",
                              note="2 x 650 units, vocabulary 10k, 35 steps; the paper gives no counts"))
def lstm(*, rngs, vocab=10_000, hidden=650, layers=2, dtype=None):
    """2-layer 650-unit LSTM language model (Zaremba et al. medium)."""
    return LSTMLanguageModel(vocab, hidden, layers, rngs=rngs, dtype=dtype)
