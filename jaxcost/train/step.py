"""A standard training step for any NNX or linen module: what ``jaxcost.train_step`` builds.

One step is ``loss, grads = value_and_grad(loss)(params)`` followed by the optimizer's update,
written as the frameworks' own tutorials write it:

- NNX: ``nnx.value_and_grad`` on the model, then ``nnx.Optimizer.update(model, grads)``, the
  model in training mode (``model.train()``: batch statistics, dropout); jaxcost analyses what
  ``nnx.jit`` compiles (the in-place updates of parameters, moments and batch statistics are
  outputs of the program);
- linen: ``jax.value_and_grad`` of ``module.apply`` (written collections such as
  ``batch_stats`` returned, as ``mutable=[...]`` does), then ``optax`` ``update`` +
  ``apply_updates``.

The loss is softmax cross-entropy of the model's output against integer labels (one per
output row), or ``loss_fn(output, labels)``; the optimizer an ``optax`` transform (default
SGD). ``remat=True`` wraps every *repeated block* (the outermost modules held at an integer
index of a list: ResNet's bottlenecks, a transformer's layers) in ``nnx.remat``, so their
forward pass is recomputed in the backward pass (``recompute`` rows).

Nothing is allocated: the model, the optimizer state and the inputs stay abstract.

Why not ``analyze(model, x, train=True)``: the keyword ``train`` already reaches modules'
calls (linen and NNX models take ``train=``); ``jaxcost.analyze(*jaxcost.train_step(model, x))``
keeps both meanings apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxcost.errors import AnalysisError
from jaxcost.target import abstract, wrapped_calls

try:
    from flax import linen
except ImportError:  # pragma: no cover
    linen = None

#: Optimizers by name (the CLI's ``--optimizer``); learning rates are irrelevant to the cost.
OPTIMIZERS: dict[str, Callable[[], Any]] = {
    "sgd": lambda: _optax().sgd(1e-2),
    "momentum": lambda: _optax().sgd(1e-2, momentum=0.9),
    "adam": lambda: _optax().adam(1e-3),
    "adamw": lambda: _optax().adamw(1e-3),
    "lion": lambda: _optax().lion(1e-4),
}


def _optax():
    try:
        import optax
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise AnalysisError("training steps need optax: pip install optax") from e
    return optax


def optimizer_named(optimizer) -> tuple[Any, str]:
    """``(optax transform, name)`` of a name (``"adam"``), a transform, or None (SGD)."""
    if optimizer is None:
        optimizer = "sgd"
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise AnalysisError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)} "
                                "or pass an optax GradientTransformation")
        return OPTIMIZERS[optimizer](), optimizer
    if not hasattr(optimizer, "update") or not hasattr(optimizer, "init"):
        raise AnalysisError(f"optimizer must be an optax GradientTransformation, got {type(optimizer).__name__}")
    return optimizer, type(optimizer).__name__


def cross_entropy(output, labels):
    """Mean softmax cross-entropy of logits ``output[..., classes]`` against integer ``labels``."""
    return _optax().softmax_cross_entropy_with_integer_labels(output, labels).mean()


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """A training step ready for :func:`jaxcost.analyze` / :func:`jaxcost.benchmark`:
    ``analyze(step.fn, *step.args, **step.options)``, or ``step.analyze()``.

    ``args``: ``(model, optimizer, x, labels)`` (NNX objects, abstract) or ``(params,
    opt_state, collections, x, labels)`` (linen); ``remat``: the layer paths whose forward
    pass is recomputed; ``functional``: the same step as a pure function of one state pytree,
    ``(state, x, labels) -> (state, loss)``, for timing steady-state steps with donated buffers.
    """

    name: str
    fn: Callable
    args: tuple
    options: dict
    optimizer: str
    remat: tuple[str, ...]
    functional: Callable[[], tuple[Callable, Any]] = dataclasses.field(repr=False, default=None)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.args[-2:])
        remat = f", remat={len(self.remat)} blocks" if self.remat else ""
        return f"TrainStep({self.name}, inputs=[{shapes}], optimizer={self.optimizer}{remat})"

    def analyze(self, **kwargs):
        """:func:`jaxcost.analyze` of this step (keyword arguments pass through)."""
        from jaxcost.analysis import analyze

        return analyze(self.fn, *self.args, **{"name": self.name, **self.options, **kwargs})

    def benchmark(self, analysis=None, **kwargs):
        """Steady-state step time, MFU and HFU (a :class:`jaxcost.train.bench.TrainBenchmark`)."""
        from jaxcost.train.bench import benchmark_step

        return benchmark_step(self, analysis, **kwargs)


def _output_shape(model, x) -> jax.ShapeDtypeStruct:
    out = nnx.eval_shape(lambda m, x: m(x), model, x)
    if not hasattr(out, "shape"):
        raise AnalysisError("the model returns a pytree, not one array of logits: pass loss_fn and labels")
    return out


def _default_labels(output) -> jax.ShapeDtypeStruct:
    if not output.shape:
        raise AnalysisError("the model's output is a scalar: pass loss_fn and labels")
    return jax.ShapeDtypeStruct(output.shape[:-1], jnp.int32)


def repeated_blocks(model: nnx.Module) -> dict[str, type]:
    """``{layer path: class}`` of the outermost modules held at an integer index of a list
    and holding modules of their own (blocks, not the convs of an ``nnx.Sequential``)."""
    blocks: dict[str, type] = {}
    for path, node in nnx.iter_graph(model):
        if not (isinstance(node, nnx.Module) and path and isinstance(path[-1], int)):
            continue
        text = "/".join(map(str, path))
        if any(text.startswith(b + "/") for b in blocks):
            continue
        if any(isinstance(n, nnx.Module) for p, n in nnx.iter_graph(node) if p):
            blocks[text] = type(node)
    return blocks


def _remat(original):
    def call(self, *a, **k):
        return nnx.remat(lambda module, *args: original(module, *args, **k))(self, *a)

    return call


def _nnx_step(model: nnx.Module, x, labels, loss_fn, tx, opt_name: str, remat: bool) -> TrainStep:
    model = abstract_model(model)
    model.train()
    blocks = repeated_blocks(model) if remat else {}
    classes = tuple(dict.fromkeys(blocks.values()))
    output = _output_shape(model, x)
    labels = _default_labels(output) if labels is None else abstract(labels)
    optimizer = nnx.eval_shape(lambda m: nnx.Optimizer(m, tx, wrt=nnx.Param), model)

    def train_step(model, optimizer, x, labels):
        def loss(model):
            return loss_fn(model(x), labels)

        with wrapped_calls(classes, _remat) if classes else contextlib.nullcontext():
            value, grads = nnx.value_and_grad(loss)(model)
        optimizer.update(model, grads)
        return value

    def functional():
        graphdef, state = nnx.split((model, optimizer))

        def pure(state, x, labels):
            m, o = nnx.merge(graphdef, state)
            value = train_step(m, o, x, labels)
            return nnx.state((m, o)), value

        return pure, state

    name = type(model).__name__
    return TrainStep(f"{name} train step", train_step, (model, optimizer, abstract(x), labels), {}, opt_name,
                     tuple(blocks), functional)


def abstract_model(model: nnx.Module) -> nnx.Module:
    """An abstract copy of ``model`` (``ShapeDtypeStruct`` leaves): nothing allocated, the
    user's model left untouched (``train()`` changes modes in place)."""
    graphdef, state = nnx.split(model)
    return nnx.merge(graphdef, abstract(state))


def _linen_step(module, x, labels, loss_fn, tx, opt_name: str, call_kwargs: dict) -> TrainStep:
    optax = _optax()
    x = abstract(x)
    key = jax.random.key(0)
    try:
        variables = jax.eval_shape(lambda k, x: module.init(k, x, **call_kwargs), key, x)
    except Exception as e:
        raise AnalysisError(f"could not initialise {type(module).__name__} abstractly: {type(e).__name__}: {e}") from e
    variables = dict(variables)
    params, others = variables.pop("params"), variables
    opt_state = jax.eval_shape(tx.init, params)
    rngs = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)

    def apply(params, others, x, rng):
        out = module.apply({"params": params, **others}, x, rngs={"dropout": rng}, mutable=list(others) or False,
                           **call_kwargs)
        return out if others else (out, {})

    if labels is None:
        labels = _default_labels(jax.eval_shape(apply, params, others, x, rngs)[0])

    def train_step(params, opt_state, others, rng, x, labels):
        def loss(params):
            out, written = apply(params, others, x, rng)
            return loss_fn(out, labels), written

        (value, written), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, {**others, **written}, value

    def functional():
        def pure(state, x, labels):
            *state, value = train_step(*state, x, labels)
            return tuple(state), value

        return pure, (params, opt_state, others, rngs)

    return TrainStep(f"{type(module).__name__} train step", train_step,
                     (params, opt_state, others, rngs, x, abstract(labels)),
                     {"params_argnums": (0,), "opt_state_argnums": (1,)}, opt_name, (), functional)


def train_step(model, x, labels=None, *, loss_fn: Callable | None = None, optimizer=None,
               remat: bool = False, **call_kwargs) -> TrainStep:
    """A standard training step of ``model`` on input ``x`` (see the module docstring).

    ``labels``: an array or ``ShapeDtypeStruct`` (default: int32 labels, one per output row);
    ``loss_fn(output, labels)`` (default: softmax cross-entropy); ``optimizer``: an optax
    transform or one of :data:`OPTIMIZERS` (default ``"sgd"``); ``remat``: recompute every
    repeated block in the backward pass (NNX). ``call_kwargs`` go to a linen module's
    ``apply`` (e.g. ``train=True``).

    >>> step = jaxcost.train_step(model, jax.ShapeDtypeStruct((8, 224, 224, 3), jnp.float32))
    >>> a = step.analyze(); a.training()        # doctest: +SKIP
    """
    tx, opt_name = optimizer_named(optimizer)
    loss_fn = loss_fn or cross_entropy
    if isinstance(model, nnx.Module):
        if call_kwargs:
            raise AnalysisError(f"keyword arguments {sorted(call_kwargs)} are for linen modules; an NNX model "
                                "is put in training mode with model.train()")
        return _nnx_step(model, abstract(x), labels, loss_fn, tx, opt_name, remat)
    if linen is not None and isinstance(model, linen.Module):
        if remat:
            raise AnalysisError("remat=True is for NNX models; wrap linen blocks in nn.remat instead")
        return _linen_step(model, x, labels, loss_fn, tx, opt_name, call_kwargs)
    raise AnalysisError(f"train_step needs an nnx.Module or a linen Module, got {type(model).__name__}; "
                        "for a function, write the step and pass it to jaxcost.analyze")
