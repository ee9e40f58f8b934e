"""equinox: models are pytrees; the idiom is ``params, static = eqx.partition(model, ...)``
and ``eqx.combine(params, static)(x)`` inside the jitted function, batched with ``jax.vmap``.
Models are built with ``eqx.filter_eval_shape`` (array leaves become ``ShapeDtypeStruct``s);
expected parameter counts are the layer formulas, written out."""

from __future__ import annotations

import jax

from corpus import Program, case, spec


def _program(make, x: jax.ShapeDtypeStruct, params: int) -> Program:
    import equinox as eqx

    model = eqx.filter_eval_shape(make, jax.random.key(0))
    arrays, static = eqx.partition(model, lambda leaf: isinstance(leaf, jax.ShapeDtypeStruct))

    def forward(arrays, x):
        return jax.vmap(eqx.combine(arrays, static))(x)

    return Program(forward, (arrays, x), params, params_argnums=(0,))


@case("equinox/mlp", needs="equinox")
def mlp() -> Program:
    """``eqx.nn.MLP(32, 10, width_size=64, depth=2)``: three Linear layers with biases."""
    import equinox as eqx

    return _program(lambda key: eqx.nn.MLP(32, 10, 64, 2, key=key), spec((8, 32)),
                    (32 * 64 + 64) + (64 * 64 + 64) + (64 * 10 + 10))


@case("equinox/cnn", needs="equinox")
def cnn() -> Program:
    """Conv 3->8 (3x3) -> ReLU -> max pool 2 -> Conv 8->16 (3x3) -> ReLU -> mean -> Linear 16->10."""
    import equinox as eqx

    class CNN(eqx.Module):
        conv1: eqx.nn.Conv2d
        pool: eqx.nn.MaxPool2d
        conv2: eqx.nn.Conv2d
        head: eqx.nn.Linear

        def __init__(self, key):
            k1, k2, k3 = jax.random.split(key, 3)
            self.conv1 = eqx.nn.Conv2d(3, 8, 3, padding=1, key=k1)
            self.pool = eqx.nn.MaxPool2d(2, stride=2)
            self.conv2 = eqx.nn.Conv2d(8, 16, 3, padding=1, key=k2)
            self.head = eqx.nn.Linear(16, 10, key=k3)

        def __call__(self, x):  # x: (channels, height, width), equinox's layout
            x = self.pool(jax.nn.relu(self.conv1(x)))
            x = jax.nn.relu(self.conv2(x))
            return self.head(x.mean(axis=(1, 2)))

    return _program(CNN, spec((4, 3, 16, 16)), (3 * 9 * 8 + 8) + (8 * 9 * 16 + 16) + (16 * 10 + 10))


@case("equinox/attention", needs="equinox")
def attention() -> Program:
    """``eqx.nn.MultiheadAttention(num_heads=4, query_size=32)``, self-attention over 16
    tokens: four 32x32 projections, no biases (equinox's default)."""
    import equinox as eqx

    class SelfAttention(eqx.Module):
        attn: eqx.nn.MultiheadAttention

        def __init__(self, key):
            self.attn = eqx.nn.MultiheadAttention(4, 32, key=key)

        def __call__(self, x):
            return self.attn(x, x, x)

    return _program(SelfAttention, spec((2, 16, 32)), 4 * 32 * 32)
