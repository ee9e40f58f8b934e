"""Keras 3 on the JAX backend: ``keras.applications`` built with ``weights=None`` at small
input sizes, analysed through ``Layer.stateless_call`` (the function Keras's own JAX training
loop jits), and a ``Sequential`` training step with a Keras optimizer's ``stateless_apply``.

Models are built inside ``keras.StatelessScope(initialize_variables=False)``: the variables
keep their shapes and are never initialised (initialising compiles one XLA kernel per weight
shape, seconds per model). The analysed function opens the same scope, so ``stateless_call``
does not initialise them from inside the trace either.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported anywhere

import jax

from corpus import Program, case, spec

BATCH = 2


def keras():
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras runs on {keras.backend.backend()!r}; set KERAS_BACKEND=jax "
                           "before keras is first imported")
    return keras


def _specs(variables) -> list[jax.ShapeDtypeStruct]:
    return [spec(v.shape, v.dtype) for v in variables]


def _build(make):
    k = keras()
    with k.StatelessScope(initialize_variables=False):
        return make(k)


def trainable_count(model) -> int:
    """Keras's own count of trainable parameters (what ``model.summary()`` prints)."""
    from keras.src.utils.summary_utils import count_params

    return count_params(model.trainable_weights)


def _forward(model, image: int, *, training: bool = False) -> Program:
    """``stateless_call`` on a batch of images; in training mode the updated non-trainable
    variables are outputs too."""
    k = keras()

    def forward(tv, ntv, x):
        with k.StatelessScope(initialize_variables=False):
            y, new_ntv = model.stateless_call(tv, ntv, x, training=training)
        return (y, new_ntv) if training else y

    return Program(forward, (_specs(model.trainable_variables), _specs(model.non_trainable_variables),
                             spec((BATCH, image, image, 3))),
                   trainable_count(model), params_argnums=(0,))


def _application(name: str, image: int, **kw):
    return _build(lambda k: getattr(k.applications, name)(input_shape=(image, image, 3), weights=None,
                                                          **kw))


@case("keras/mobilenet_v2", needs="keras")
def mobilenet_v2() -> Program:
    return _forward(_application("MobileNetV2", 96, alpha=0.35), 96)


@case("keras/mobilenet_v2_train", needs="keras")
def mobilenet_v2_train() -> Program:
    """Training-mode forward: BatchNorm uses batch statistics and returns its updated moving
    averages (the non-trainable variables) as outputs."""
    return _forward(_application("MobileNetV2", 32, alpha=0.35), 32, training=True)


@case("keras/resnet50", needs="keras")
def resnet50() -> Program:
    return _forward(_application("ResNet50", 64), 64)


@case("keras/efficientnet_b0", needs="keras")
def efficientnet_b0() -> Program:
    return _forward(_application("EfficientNetB0", 64), 64)


@case("keras/densenet121", needs="keras")
def densenet121() -> Program:
    return _forward(_application("DenseNet121", 64), 64)


@case("keras/mlp_train_step", needs="keras")
def mlp_train_step() -> Program:
    """One step of the training loop of Keras's guide "Writing a training loop from scratch in
    JAX": ``jax.value_and_grad`` of ``stateless_call`` plus ``optimizer.stateless_apply``."""
    k = keras()

    model = _build(lambda k: k.Sequential([k.Input((32,)), k.layers.Dense(64, activation="relu"),
                                           k.layers.Dropout(0.1), k.layers.Dense(10)]))
    optimizer = k.optimizers.Adam(1e-3)  # its step counter is a concrete scalar variable
    _build(lambda k: optimizer.build(model.trainable_variables))  # the moments are not
    loss_fn = k.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compute_loss(tv, ntv, x, y):
        logits, ntv = model.stateless_call(tv, ntv, x, training=True)
        return loss_fn(y, logits), ntv

    def train_step(tv, ntv, opt_vars, x, y):
        with k.StatelessScope(initialize_variables=False):
            (loss, ntv), grads = jax.value_and_grad(compute_loss, has_aux=True)(tv, ntv, x, y)
            tv, opt_vars = optimizer.stateless_apply(opt_vars, grads, tv)
        return loss, tv, ntv, opt_vars

    args = (_specs(model.trainable_variables), _specs(model.non_trainable_variables),
            _specs(optimizer.variables), spec((16, 32)), spec((16,), "int32"))
    return Program(train_step, args, trainable_count(model), params_argnums=(0,))
