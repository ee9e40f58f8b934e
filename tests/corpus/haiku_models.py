"""dm-haiku: ``hk.transform`` (and ``hk.transform_with_state`` for BatchNorm) turns a module
function into ``init``/``apply``; parameters come from ``jax.eval_shape(init)`` and the
framework's count is ``hk.data_structures.tree_size(params)``."""

from __future__ import annotations

import jax

from corpus import Program, case, spec


def _stateless(forward, x: jax.ShapeDtypeStruct) -> Program:
    import haiku as hk

    net = hk.without_apply_rng(hk.transform(forward))
    params = jax.eval_shape(net.init, jax.random.key(0), x)
    return Program(net.apply, (params, x), hk.data_structures.tree_size(params), params_argnums=(0,))


@case("haiku/mlp", needs="haiku")
def mlp() -> Program:
    import haiku as hk

    return _stateless(lambda x: hk.nets.MLP([64, 64, 10])(x), spec((8, 32)))


@case("haiku/convnet", needs="haiku")
def convnet() -> Program:
    import haiku as hk

    def forward(x):
        x = jax.nn.relu(hk.Conv2D(8, 3)(x))
        x = hk.max_pool(x, window_shape=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="VALID")
        x = jax.nn.relu(hk.Conv2D(16, 3)(x))
        return hk.Linear(10)(hk.Flatten()(x))

    return _stateless(forward, spec((4, 16, 16, 3)))


@case("haiku/resnet18", needs="haiku")
def resnet18() -> Program:
    """``hk.nets.ResNet18`` at 32x32 in inference mode (BatchNorm moving averages are state)."""
    import haiku as hk

    net = hk.without_apply_rng(hk.transform_with_state(
        lambda x, is_training: hk.nets.ResNet18(10)(x, is_training=is_training)))
    x = spec((2, 32, 32, 3))
    # BatchNorm's moving averages are created only by a training-mode init.
    params, state = jax.eval_shape(lambda key, x: net.init(key, x, is_training=True), jax.random.key(0), x)

    def forward(params, state, x):
        return net.apply(params, state, x, is_training=False)[0]

    return Program(forward, (params, state, x), hk.data_structures.tree_size(params), params_argnums=(0,))
