"""Flax linen and NNX models in inference and training mode, and training steps with optax:
``jax.value_and_grad`` + ``optax.adam`` in plain JAX, and NNX's ``nnx.Optimizer`` updated in
place. Expected parameter counts are the layer formulas, written out."""

from __future__ import annotations

import jax
import optax
from flax import linen, nnx

from corpus import Program, case, spec

# conv 3->8 3x3 with bias, BatchNorm(8) scale+bias, Dense 8->10 with bias
CNN_PARAMS = (3 * 9 * 8 + 8) + 2 * 8 + (8 * 10 + 10)


class LinenCNN(linen.Module):
    """Conv -> BatchNorm -> ReLU -> Dropout -> global average pool -> Dense."""

    @linen.compact
    def __call__(self, x, train: bool):
        x = linen.Conv(8, (3, 3))(x)
        x = linen.BatchNorm(use_running_average=not train)(x)
        x = linen.Dropout(0.25, deterministic=not train)(jax.nn.relu(x))
        return linen.Dense(10)(x.mean(axis=(1, 2)))


class NnxCNN(nnx.Module):
    """The same network in NNX; ``train()``/``eval()`` switch BatchNorm and Dropout."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.dropout = nnx.Dropout(0.25, rngs=rngs)
        self.head = nnx.Linear(8, 10, rngs=rngs)

    def __call__(self, x):
        x = self.dropout(jax.nn.relu(self.bn(self.conv(x))))
        return self.head(x.mean(axis=(1, 2)))


def _nnx_model(train: bool) -> NnxCNN:
    model = nnx.eval_shape(lambda: NnxCNN(nnx.Rngs(0)))
    model.train() if train else model.eval()
    return model


IMAGES = spec((4, 16, 16, 3))


@case("linen/cnn_eval")
def linen_cnn_eval() -> Program:
    """The linen module handed to ``analyze`` directly, ``train=False`` as a keyword."""
    return Program(LinenCNN(), (IMAGES,), CNN_PARAMS, kwargs={"train": False})


@case("linen/cnn_train")
def linen_cnn_train() -> Program:
    """``apply`` in training mode as users write it: batch statistics mutable, a dropout key."""
    model = LinenCNN()
    variables = jax.eval_shape(lambda k, x: model.init(k, x, train=False), jax.random.key(0), IMAGES)

    def forward(params, batch_stats, x, key):
        return model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                           mutable=["batch_stats"], rngs={"dropout": key})

    key = jax.eval_shape(jax.random.key, 0)
    return Program(forward, (variables["params"], variables["batch_stats"], IMAGES, key), CNN_PARAMS,
                   params_argnums=(0,))


def _nnx_forward(train: bool) -> Program:
    model = _nnx_model(train)
    return Program(model, (IMAGES,), CNN_PARAMS,
                   lower=lambda: nnx.jit(lambda m, x: m(x)).lower(model, IMAGES))


@case("nnx/cnn_eval")
def nnx_cnn_eval() -> Program:
    return _nnx_forward(train=False)


@case("nnx/cnn_train")
def nnx_cnn_train() -> Program:
    """Training mode: batch statistics (the running averages are updated in place) and
    Dropout drawing from the module's own RNG stream."""
    return _nnx_forward(train=True)


def _xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@case("nnx/optimizer_step")
def nnx_optimizer_step() -> Program:
    """The NNX training step of Flax's documentation: ``nnx.value_and_grad`` and an
    ``nnx.Optimizer(model, optax.adam(...), wrt=nnx.Param)`` updated in place."""
    model = _nnx_model(train=True)
    optimizer = nnx.eval_shape(lambda m: nnx.Optimizer(m, optax.adam(1e-3), wrt=nnx.Param), model)

    def train_step(model, optimizer, x, y):
        loss, grads = nnx.value_and_grad(lambda m: _xent(m(x), y))(model)
        optimizer.update(model, grads)
        return loss

    args = (model, optimizer, IMAGES, spec((4,), "int32"))
    return Program(train_step, args, CNN_PARAMS, params_argnums=(0,),
                   lower=lambda: nnx.jit(train_step).lower(*args))


class LinenMLP(linen.Module):
    @linen.compact
    def __call__(self, x):
        return linen.Dense(10)(jax.nn.gelu(linen.Dense(64)(x)))


@case("optax/adam_step")
def optax_adam_step() -> Program:
    """A training step in plain JAX: ``jax.value_and_grad`` of a linen MLP's loss, then
    ``optax.adam``'s ``update`` and ``optax.apply_updates``."""
    model, tx = LinenMLP(), optax.adam(1e-3)
    x = spec((16, 32))
    params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    opt_state = jax.eval_shape(tx.init, params)

    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(lambda p: _xent(model.apply({"params": p}, x), y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return Program(train_step, (params, opt_state, x, spec((16,), "int32")),
                   (32 * 64 + 64) + (64 * 10 + 10), params_argnums=(0,))


@case("optax/chain_clip_adamw_step")
def optax_chain_step() -> Program:
    """``optax.chain(clip_by_global_norm, adamw)`` with a cosine schedule: global norms, the
    step counter and the schedule are all in the program."""
    model = LinenMLP()
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(optax.cosine_decay_schedule(1e-3, 1000), weight_decay=1e-4))
    x = spec((16, 32))
    params = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    opt_state = jax.eval_shape(tx.init, params)

    def train_step(params, opt_state, x, y):
        grads = jax.grad(lambda p: _xent(model.apply({"params": p}, x), y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return Program(train_step, (params, opt_state, x, spec((16,), "int32")),
                   (32 * 64 + 64) + (64 * 10 + 10), params_argnums=(0,))




@case("flax/linen_trainstate_step")
def linen_trainstate_step() -> Program:
    """The step of Flax's linen tutorials: a ``flax.training.train_state.TrainState`` carrying
    the params, ``apply_fn`` and optax state, ``jax.value_and_grad`` with batch statistics as
    auxiliary output, then ``state.apply_gradients`` and the new batch statistics."""
    from flax.training import train_state

    class State(train_state.TrainState):
        batch_stats: dict

    model = LinenCNN()
    variables = jax.eval_shape(lambda k, x: model.init(k, x, train=False), jax.random.key(0), IMAGES)
    tx = optax.sgd(1e-2, momentum=0.9)
    state = State(step=spec((), "int32"), apply_fn=model.apply, params=variables["params"],
                  tx=tx, opt_state=jax.eval_shape(tx.init, variables["params"]),
                  batch_stats=variables["batch_stats"])

    def train_step(state, x, y, key):
        def loss_fn(params):
            logits, updates = state.apply_fn({"params": params, "batch_stats": state.batch_stats}, x, train=True,
                                             mutable=["batch_stats"], rngs={"dropout": key})
            return _xent(logits, y), updates

        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        state = state.apply_gradients(grads=grads).replace(batch_stats=updates["batch_stats"])
        return state, loss

    key = jax.eval_shape(jax.random.key, 0)
    return Program(train_step, (state, IMAGES, spec((4,), "int32"), key), CNN_PARAMS,
                   lower=lambda: jax.jit(train_step).lower(state, IMAGES, spec((4,), "int32"), key))
