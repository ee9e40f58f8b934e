"""Inference-time BatchNorm folding for Flax NNX models (issue 6, part 1).

At inference a BatchNorm that directly follows a convolution (or a dense layer)
is an affine map per output channel and can be absorbed into that layer::

    s  = gamma / sqrt(var + eps)
    W' = W * s            (per output channel, i.e. the kernel's last axis)
    b' = (b - mean) * s + beta

Conv-BN-ReLU folds; Conv-ReLU-BN does not (a ReLU sits between them); a BN in
front of a conv is not folded (in general it cannot be: zero padding does not
commute with the shift); a BN in training mode (``use_running_average=False``)
is not folded (it normalises with batch statistics).

Pairs are found on the traced graph, never by layer names: the model is traced
once with :func:`jax.make_jaxpr` while ``__call__`` of ``nnx.Conv``,
``nnx.Linear`` and ``nnx.BatchNorm`` is wrapped to record, for each call, the
module instance and the jaxpr variables of its input and output.  A BN is
foldable when its input is exactly the output of a Conv/Linear call, that
output has no consumer other than the BN (checked by scanning the whole jaxpr,
sub-jaxprs included, for other uses of the variable), both modules are called
exactly once, and the BN normalises the last (channel) axis.

Tracing uses ``nnx.split``/``nnx.merge`` on the state, so it works with
abstract inputs (``jax.ShapeDtypeStruct``) and even abstract models (from
``nnx.eval_shape``) -- but *folding* rewrites weights, so it needs real
arrays: an abstract model raises :class:`ValueError` when there is something
to fold.  The input model is never mutated; the result holds a clone.

Left out: ``fold_batchnorm_linen`` (linen models) is not implemented; only
``nnx.Conv`` / ``nnx.Linear`` (and subclasses) followed by ``nnx.BatchNorm``
are considered (not ConvTranspose, Einsum, LayerNorm/GroupNorm, or BN folded
backwards into a following conv).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["FoldResult", "Identity", "fold_batchnorm"]

_BN_SCOPE = "__jaxcost_fold_bn"

REASON_TRAINING = "training mode (use_running_average=False)"
REASON_AFTER_OP = "follows a ReLU/other op, not a conv (Conv-ReLU-BN)"
REASON_BEFORE_CONV = "BN before conv"
REASON_CONSUMERS = "conv output has other consumers"
REASON_SHARED = "conv or BN module is called more than once (shared weights)"
REASON_AXIS = "BN does not normalise the conv's output-channel (last) axis"
REASON_MASK = "BN called with a mask"
REASON_NOT_CALLED = "BN not called in the traced forward pass"


class Identity(nnx.Module):
    """Stands in for a folded BatchNorm: returns its input (extra arguments ignored)."""

    def __call__(self, x, *args, **kwargs):
        return x


@dataclasses.dataclass
class FoldResult:
    """Outcome of :func:`fold_batchnorm`.

    ``model``: the folded clone; ``folded``: (conv path, bn path) pairs;
    ``skipped``: (bn path, reason) for every BN left in place;
    ``params_removed``: BN scale + bias parameters removed;
    ``params_added``: bias parameters created on convs that had none.
    Paths are ``"/"``-joined graph paths, e.g. ``"layer1/0/bn1"``.
    """

    model: nnx.Module
    folded: list[tuple[str, str]]
    skipped: list[tuple[str, str]]
    params_removed: int
    params_added: int


@dataclasses.dataclass
class _Call:
    module: Any
    kind: str  # "conv" | "bn"
    inp: Any  # tracer (or array)
    out: Any
    in_var: Any
    out_var: Any
    use_running_average: bool | None = None
    masked: bool = False
    scope: str = ""


def _var(x):
    """The jaxpr variable of a tracer (``DynamicJaxprTracer.val``), else None."""
    v = getattr(x, "val", None)
    return v if isinstance(v, jcore.Var) else None


def _first_arg(args, kwargs):
    if args:
        return args[0]
    for k in ("inputs", "x"):
        if k in kwargs:
            return kwargs[k]
    return None


def _path_str(path) -> str:
    return "/".join(str(k) for k in path)


def _module_paths(model) -> dict[int, tuple]:
    return {id(node): tuple(path) for path, node in nnx.iter_graph(model)
            if isinstance(node, nnx.Module)}


def _sub_jaxprs(params):
    for v in params.values():
        vs = v if isinstance(v, (list, tuple)) else (v,)
        for x in vs:
            if isinstance(x, jcore.ClosedJaxpr):
                yield x.jaxpr
            elif isinstance(x, jcore.Jaxpr):
                yield x


def _walk(jaxpr):
    """Yield (jaxpr, eqn) for every equation, sub-jaxprs included."""
    for eqn in jaxpr.eqns:
        yield jaxpr, eqn
        for sub in _sub_jaxprs(eqn.params):
            yield from _walk(sub)


def _all_outvars(jaxpr):
    yield from jaxpr.outvars
    for eqn in jaxpr.eqns:
        for sub in _sub_jaxprs(eqn.params):
            yield from _all_outvars(sub)


def _op_name(eqn) -> str:
    name = str(eqn.primitive)
    if isinstance(eqn.params.get("name"), str):
        return f"{name}[{eqn.params['name']}]"
    for sub in _sub_jaxprs(eqn.params):  # custom_jvp_call etc.: name of the wrapped function
        func = getattr(getattr(sub, "debug_info", None), "func_name", None)
        if func:
            return f"{name}[{func}]"
    return name


def _trace(model, example_args):
    """Trace ``model(*example_args)``; return (calls, closed jaxpr, id->path)."""
    graphdef, state = nnx.split(model)
    calls: list[_Call] = []
    paths: dict[int, tuple] = {}
    originals = {cls: cls.__call__ for cls in (nnx.Conv, nnx.Linear, nnx.BatchNorm)}

    def wrap(cls, orig):
        kind = "bn" if cls is nnx.BatchNorm else "conv"

        def __call__(self, *args, **kwargs):
            x = _first_arg(args, kwargs)
            if kind == "bn":
                scope = f"{_BN_SCOPE}{len(calls)}"
                with jax.named_scope(scope):
                    out = orig(self, *args, **kwargs)
                ura = kwargs.get("use_running_average", args[1] if len(args) > 1 else None)
                if ura is None:
                    ura = self.use_running_average
                calls.append(_Call(self, kind, x, out, _var(x), _var(out), bool(ura),
                                   kwargs.get("mask", args[2] if len(args) > 2 else None) is not None,
                                   scope))
            else:
                out = orig(self, *args, **kwargs)
                calls.append(_Call(self, kind, x, out, _var(x), _var(out)))
            return out

        __call__.__wrapped__ = orig
        return __call__

    def run(state, *args):
        m = nnx.merge(graphdef, state)
        paths.update(_module_paths(m))
        return m(*args)

    for cls, orig in originals.items():
        cls.__call__ = wrap(cls, orig)
    try:
        closed = jax.make_jaxpr(run)(state, *example_args)
    finally:
        for cls, orig in originals.items():
            cls.__call__ = orig
    return calls, closed, paths


def _default_args(model):
    """Guess a small example input from the first Conv/Linear in graph order."""
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Conv):
            nd = len(node.kernel_size)
            return (jax.ShapeDtypeStruct((1, *([32] * nd), node.in_features), jnp.float32),)
        if isinstance(node, nnx.Linear):
            return (jax.ShapeDtypeStruct((1, node.in_features), jnp.float32),)
    raise ValueError("fold_batchnorm: pass example inputs (no Conv/Linear to infer one from)")


def _get(root, path):
    node = root
    for k in path:
        node = node[k] if isinstance(k, int) else getattr(node, k)
    return node


def _set(root, path, value):
    parent = _get(root, path[:-1])
    k = path[-1]
    if isinstance(k, int):
        parent[k] = value
    else:
        setattr(parent, k, value)


def _is_abstract(model) -> bool:
    return any(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(nnx.state(model)))


def _param_size(p) -> int:
    return 0 if p is None else int(p.get_value().size)


def _fold_pair(conv, bn) -> int:
    """Fold ``bn`` into ``conv`` in place; return the number of bias params created.

    The arithmetic is done on the host in float64 (numpy): exact enough, and it
    avoids compiling one small XLA kernel per channel count."""
    kernel = conv.kernel.get_value()

    def f64(v):
        return np.asarray(v.get_value(), dtype=np.float64)

    mean, var = f64(bn.mean), f64(bn.var)
    gamma = f64(bn.scale) if bn.scale is not None else np.ones_like(mean)
    beta = f64(bn.bias) if bn.bias is not None else np.zeros_like(mean)
    s = gamma / np.sqrt(var + bn.epsilon)
    conv.kernel.set_value(jnp.asarray(np.asarray(kernel, np.float64) * s, dtype=kernel.dtype))
    if conv.bias is None:
        b, bias_dtype, added = np.zeros_like(mean), conv.param_dtype, int(mean.size)
    else:
        b, bias_dtype, added = f64(conv.bias), conv.bias.get_value().dtype, 0
    new_bias = jnp.asarray((b - mean) * s + beta, dtype=bias_dtype)
    if conv.bias is None:
        conv.use_bias = True
        conv.bias = nnx.Param(new_bias)
    else:
        conv.bias.set_value(new_bias)
    return added


def fold_batchnorm(model: nnx.Module, *example_args) -> FoldResult:
    """Fold every inference-mode ``nnx.BatchNorm`` that directly follows an
    ``nnx.Conv`` / ``nnx.Linear`` into that layer's kernel and bias.

    ``example_args``: inputs for one forward pass (arrays or
    ``jax.ShapeDtypeStruct``); if omitted, a ``(1, 32, .., 32, C)`` input is
    guessed from the first Conv (or ``(1, C)`` from the first Linear) --
    pass real inputs for models whose forward needs other shapes/arguments.
    The model is traced once, abstractly; it is not mutated.  Returns a
    :class:`FoldResult` whose ``model`` is an equivalent clone in which folded
    BNs are replaced by :class:`Identity`.

    Raises ``ValueError`` if the model is abstract (``nnx.eval_shape``) and
    something would be folded: folding needs real weights.
    """
    if not example_args:
        example_args = _default_args(model)
    calls, closed, paths = _trace(model, example_args)
    jaxpr = closed.jaxpr

    # Who produces / consumes each variable (anywhere in the jaxpr).
    producer: dict[Any, Any] = {}
    uses: dict[Any, list] = {}
    for _, eqn in _walk(jaxpr):
        for v in eqn.outvars:
            producer[v] = eqn
        for v in eqn.invars:
            if isinstance(v, jcore.Var):
                uses.setdefault(v, []).append(eqn)
    returned = {v for v in _all_outvars(jaxpr) if isinstance(v, jcore.Var)}

    n_calls: dict[int, int] = {}
    for c in calls:
        n_calls[id(c.module)] = n_calls.get(id(c.module), 0) + 1
    conv_by_out = {id(c.out): c for c in calls if c.kind == "conv"}
    conv_inputs = {id(c.inp) for c in calls if c.kind == "conv"}

    def other_consumers(conv_call, bn_call) -> bool:
        v = conv_call.out_var
        if v is None:  # no jaxpr variable to check (should not happen)
            return False
        if v in returned:  # an output of the model or of a sub-jaxpr: used elsewhere
            return True
        return any(bn_call.scope not in str(e.source_info.name_stack) for e in uses.get(v, []))

    folded_pairs: list[tuple[tuple, tuple]] = []
    skipped: list[tuple[str, str]] = []
    seen_bn: set[int] = set()
    for c in calls:
        if c.kind != "bn" or id(c.module) in seen_bn:
            continue
        seen_bn.add(id(c.module))
        bn_path = paths[id(c.module)]
        src = conv_by_out.get(id(c.inp))
        reason = None
        if not c.use_running_average:
            reason = REASON_TRAINING
        elif c.masked:
            reason = REASON_MASK
        elif src is None:
            if id(c.out) in conv_inputs:
                reason = REASON_BEFORE_CONV
            else:
                eqn = producer.get(c.in_var)
                what = _op_name(eqn) if eqn is not None else "a model input"
                reason = f"{REASON_AFTER_OP}: input comes from {what}"
        elif n_calls[id(c.module)] > 1 or n_calls[id(src.module)] > 1:
            reason = REASON_SHARED
        elif other_consumers(src, c):
            reason = REASON_CONSUMERS
        elif c.module.axis not in (-1, jnp.ndim(c.inp) - 1):
            reason = REASON_AXIS
        if reason is not None:
            skipped.append((_path_str(bn_path), reason))
        else:
            folded_pairs.append((paths[id(src.module)], bn_path))

    # BNs in the graph that the forward pass never called.
    called = {paths[i] for i in seen_bn}
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.BatchNorm) and tuple(path) not in called:
            skipped.append((_path_str(path), REASON_NOT_CALLED))

    if folded_pairs and _is_abstract(model):
        raise ValueError(
            "fold_batchnorm: the model is abstract (jax.ShapeDtypeStruct weights, e.g. from "
            f"nnx.eval_shape); {len(folded_pairs)} Conv/Linear+BN pairs were found but folding "
            "rewrites kernels and biases and needs real weights -- build the model with real "
            "arrays (e.g. nnx.Rngs) first")

    new = nnx.clone(model)
    removed = added = 0
    for conv_path, bn_path in folded_pairs:
        conv, bn = _get(new, conv_path), _get(new, bn_path)
        added += _fold_pair(conv, bn)
        removed += _param_size(bn.scale) + _param_size(bn.bias)
        _set(new, bn_path, Identity())
    return FoldResult(new, [(_path_str(a), _path_str(b)) for a, b in folded_pairs], skipped,
                      removed, added)
