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

Linen models go through the same pair finder: ``fold_batchnorm(apply_fn,
variables, *args)`` traces ``apply_fn`` under :func:`flax.linen.intercept_methods`
(recording ``nn.Conv`` / ``nn.Dense`` / ``nn.BatchNorm`` calls by module path)
and returns new variables plus an ``apply_fn`` that skips the folded BNs and
adds the new bias of convs declared without one.

Left out: only Conv/Linear/Dense (and subclasses) followed by BatchNorm are
considered (not ConvTranspose, Einsum, LayerNorm/GroupNorm, or BN folded
backwards into a following conv).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
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
    For linen, ``model`` is None and ``apply_fn(variables, *args)`` with
    ``variables`` is the folded model.
    """

    model: nnx.Module | None
    folded: list[tuple[str, str]]
    skipped: list[tuple[str, str]]
    params_removed: int
    params_added: int
    apply_fn: Callable | None = None
    variables: dict | None = None


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
    key: Any = None  # identity of the module (id for NNX, scope path for linen)
    path: tuple = ()


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


def _record(calls: list[_Call], module, kind: str, args, kwargs, call) -> Any:
    """Run ``call(*args, **kwargs)`` (one Conv/Linear/BN call) and record it; BN
    calls run inside a unique named scope so their equations can be recognised."""
    x = _first_arg(args, kwargs)
    if kind != "bn":
        out = call(*args, **kwargs)
        calls.append(_Call(module, kind, x, out, _var(x), _var(out)))
        return out
    scope = f"{_BN_SCOPE}{len(calls)}"
    with jax.named_scope(scope):
        out = call(*args, **kwargs)
    ura = kwargs.get("use_running_average", args[1] if len(args) > 1 else None)
    if ura is None:
        ura = module.use_running_average
    mask = kwargs.get("mask", args[2] if len(args) > 2 else None)
    calls.append(_Call(module, kind, x, out, _var(x), _var(out), bool(ura), mask is not None, scope))
    return out


def _trace(model, example_args, kwargs):
    """Trace ``model(*example_args)``; return (calls with their paths, closed jaxpr)."""
    graphdef, state = nnx.split(model)
    calls: list[_Call] = []
    paths: dict[int, tuple] = {}
    originals = {cls: cls.__call__ for cls in (nnx.Conv, nnx.Linear, nnx.BatchNorm)}

    def wrap(cls, orig):
        kind = "bn" if cls is nnx.BatchNorm else "conv"

        def __call__(self, *args, **kw):
            return _record(calls, self, kind, args, kw, lambda *a, **k: orig(self, *a, **k))

        __call__.__wrapped__ = orig
        return __call__

    def run(state, *args):
        m = nnx.merge(graphdef, state)
        paths.update(_module_paths(m))
        return m(*args, **kwargs)

    for cls, orig in originals.items():
        cls.__call__ = wrap(cls, orig)
    try:
        closed = jax.make_jaxpr(run)(state, *example_args)
    finally:
        for cls, orig in originals.items():
            cls.__call__ = orig
    for c in calls:
        c.key, c.path = id(c.module), paths[id(c.module)]
    return calls, closed


def _linen_kind(module) -> str | None:
    if isinstance(module, nn.BatchNorm):
        return "bn"
    if isinstance(module, (nn.Conv, nn.Dense)):
        return "conv"
    return None


def _trace_linen(apply_fn, variables, example_args, kwargs):
    """Trace ``apply_fn(variables, *example_args)`` recording linen Conv/Dense/BN calls."""
    calls: list[_Call] = []

    def interceptor(next_fun, args, kw, context):
        kind = _linen_kind(context.module) if context.method_name == "__call__" else None
        if kind is None:
            return next_fun(*args, **kw)
        return _record(calls, context.module, kind, args, kw, next_fun)

    def run(variables, *args):
        with nn.intercept_methods(interceptor):
            return apply_fn(variables, *args, **kwargs)

    closed = jax.make_jaxpr(run)(variables, *example_args)
    for c in calls:
        c.key = c.path = tuple(c.module.scope.path)
    return calls, closed


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


def _param_size(p) -> int:
    return 0 if p is None else int(p.get_value().size)


def _find_pairs(calls: list[_Call], closed) -> tuple[list[tuple[_Call, _Call]], list[tuple[str, str]]]:
    """(conv call, bn call) pairs to fold, and (bn path, reason) for each BN left alone."""
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

    n_calls: dict[Any, int] = {}
    for c in calls:
        n_calls[c.key] = n_calls.get(c.key, 0) + 1
    conv_by_out = {id(c.out): c for c in calls if c.kind == "conv"}
    conv_inputs = {id(c.inp) for c in calls if c.kind == "conv"}

    def other_consumers(conv_call, bn_call) -> bool:
        v = conv_call.out_var
        if v is None:  # no jaxpr variable to check (should not happen)
            return False
        if v in returned:  # an output of the model or of a sub-jaxpr: used elsewhere
            return True
        return any(bn_call.scope not in str(e.source_info.name_stack) for e in uses.get(v, []))

    pairs: list[tuple[_Call, _Call]] = []
    skipped: list[tuple[str, str]] = []
    seen_bn: set[Any] = set()
    for c in calls:
        if c.kind != "bn" or c.key in seen_bn:
            continue
        seen_bn.add(c.key)
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
        elif n_calls[c.key] > 1 or n_calls[src.key] > 1:
            reason = REASON_SHARED
        elif other_consumers(src, c):
            reason = REASON_CONSUMERS
        elif c.module.axis not in (-1, jnp.ndim(c.inp) - 1):
            reason = REASON_AXIS
        if reason is not None:
            skipped.append((_path_str(c.path), reason))
        else:
            pairs.append((src, c))
    return pairs, skipped


def _folded_arrays(kernel, bias, mean, var, scale, shift, eps):
    """(kernel', bias') of a folded pair, computed on the host in float64 (exact
    enough, and no small XLA kernel compiled per channel count); ``bias``,
    ``scale`` and ``shift`` may be None. Dtypes: the kernel's, the bias's (else
    the kernel's)."""
    f64 = lambda v: np.asarray(v, dtype=np.float64)
    mean, var = f64(mean), f64(var)
    gamma = f64(scale) if scale is not None else np.ones_like(mean)
    beta = f64(shift) if shift is not None else np.zeros_like(mean)
    s = gamma / np.sqrt(var + eps)
    b = f64(bias) if bias is not None else np.zeros_like(mean)
    bias_dtype = bias.dtype if bias is not None else kernel.dtype
    return (jnp.asarray(f64(kernel) * s, dtype=kernel.dtype),
            jnp.asarray((b - mean) * s + beta, dtype=bias_dtype))


def _check_concrete(pairs, leaves) -> None:
    if pairs and any(isinstance(x, jax.ShapeDtypeStruct) for x in leaves):
        raise ValueError(
            "fold_batchnorm: the model is abstract (jax.ShapeDtypeStruct weights, e.g. from "
            f"eval_shape); {len(pairs)} Conv/Linear+BN pairs were found but folding "
            "rewrites kernels and biases and needs real weights -- build the model with real "
            "arrays (e.g. nnx.Rngs / module.init) first")


def fold_batchnorm(model, *example_args, **kwargs) -> FoldResult:
    """Fold every inference-mode BatchNorm that directly follows a Conv or a
    Linear/Dense layer into that layer's kernel and bias.

    NNX: ``fold_batchnorm(model, *example_args)``; linen:
    ``fold_batchnorm(apply_fn, variables, *example_args)`` where ``apply_fn``
    is a linen ``Module`` (its ``apply``) or any ``f(variables, *args)``.
    ``kwargs`` are passed to the forward call (e.g. ``train=False``).

    ``example_args``: inputs for one forward pass (arrays or
    ``jax.ShapeDtypeStruct``); for NNX, if omitted, a ``(1, 32, .., 32, C)``
    input is guessed from the first Conv (or ``(1, C)`` from the first
    Linear). The model is traced once, abstractly, and never mutated.
    Returns a :class:`FoldResult`: for NNX its ``model`` is an equivalent
    clone in which folded BNs are replaced by :class:`Identity`; for linen,
    ``apply_fn`` and ``variables``.

    Raises ``ValueError`` if the weights are abstract (``eval_shape``) and
    something would be folded: folding needs real weights.
    """
    if not isinstance(model, nnx.Module):
        if not example_args or not isinstance(example_args[0], dict):
            raise TypeError(
                "fold_batchnorm: expected an nnx.Module, or a linen apply function/Module "
                f"followed by its variables dict and example inputs; got {type(model).__name__}")
        return _fold_linen(model, example_args[0], example_args[1:], kwargs)
    if not example_args:
        example_args = _default_args(model)
    calls, closed = _trace(model, example_args, kwargs)
    pairs, skipped = _find_pairs(calls, closed)

    # BNs in the graph that the forward pass never called.
    called = {c.path for c in calls if c.kind == "bn"}
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.BatchNorm) and tuple(path) not in called:
            skipped.append((_path_str(path), REASON_NOT_CALLED))
    _check_concrete(pairs, jax.tree.leaves(nnx.state(model)))

    new = nnx.clone(model)
    removed = added = 0
    for conv_call, bn_call in pairs:
        conv, bn = _get(new, conv_call.path), _get(new, bn_call.path)
        value = lambda p: None if p is None else p.get_value()
        kernel, bias = _folded_arrays(conv.kernel.get_value(), value(conv.bias), bn.mean.get_value(),
                                      bn.var.get_value(), value(bn.scale), value(bn.bias), bn.epsilon)
        conv.kernel.set_value(kernel)
        if conv.bias is None:
            added += int(bias.size)
            conv.use_bias = True
            conv.bias = nnx.Param(bias.astype(conv.param_dtype))
        else:
            conv.bias.set_value(bias)
        removed += _param_size(bn.scale) + _param_size(bn.bias)
        _set(new, bn_call.path, Identity())
    return FoldResult(new, [(_path_str(a.path), _path_str(b.path)) for a, b in pairs], skipped,
                      removed, added)


def _tree_get(tree: dict, path: tuple):
    for k in path:
        tree = tree[k]
    return tree


def _tree_set(tree: dict, path: tuple, value) -> None:
    """Set ``tree[path] = value``, creating dicts on the way."""
    for k in path[:-1]:
        tree = tree.setdefault(k, {})
    tree[path[-1]] = value


def _tree_pop(tree: dict, path: tuple) -> None:
    """Remove ``tree[path]`` and the dicts it leaves empty."""
    if len(path) > 1 and path[0] in tree:
        _tree_pop(tree[path[0]], path[1:])
        if not tree[path[0]]:
            del tree[path[0]]
    else:
        tree.pop(path[0], None)


def _plain(tree):
    """Nested mutable dicts (variables may be FrozenDicts)."""
    return {k: _plain(v) for k, v in tree.items()} if hasattr(tree, "items") else tree


def _fold_linen(apply_fn, variables, example_args, kwargs) -> FoldResult:
    """Linen half of :func:`fold_batchnorm` (see there)."""
    trace_fn = apply_fn
    if isinstance(apply_fn, nn.Module):
        module, apply_fn = apply_fn, apply_fn.apply
        # let training-mode BNs update their statistics while tracing (reported, not folded)
        trace_fn = lambda v, *a, **k: module.apply(v, *a, **{"mutable": ["batch_stats"], **k})
    if not example_args:
        raise ValueError("fold_batchnorm(apply_fn, variables, *example_args): linen models need "
                         "example inputs (arrays or jax.ShapeDtypeStruct)")
    variables = _plain(variables)
    calls, closed = _trace_linen(trace_fn, variables, example_args, kwargs)
    pairs, skipped = _find_pairs(calls, closed)
    called = {c.path for c in calls if c.kind == "bn"}

    def bn_paths(tree, path=()):
        if hasattr(tree, "items"):
            if "mean" in tree and "var" in tree:
                yield path
            for k, v in tree.items():
                yield from bn_paths(v, (*path, k))

    for path in bn_paths(variables.get("batch_stats", {})):
        if path not in called:
            skipped.append((_path_str(path), REASON_NOT_CALLED))
    _check_concrete(pairs, jax.tree.leaves(variables))

    new = jax.tree.map(lambda x: x, variables)  # fresh dicts, same arrays
    params, stats = new.setdefault("params", {}), new.get("batch_stats", {})
    removed = added = 0
    folded_bns, added_bias = set(), set()
    for conv_call, bn_call in pairs:
        conv_p, bn_p = _tree_get(params, conv_call.path), _tree_get(params, bn_call.path)
        bn_s = _tree_get(stats, bn_call.path)
        bn = bn_call.module
        kernel, bias = _folded_arrays(conv_p["kernel"], conv_p.get("bias"), bn_s["mean"], bn_s["var"],
                                      bn_p.get("scale"), bn_p.get("bias"), bn.epsilon)
        if "bias" not in conv_p:
            added += int(bias.size)
            added_bias.add(conv_call.path)
        conv_p["kernel"], conv_p["bias"] = kernel, bias
        removed += sum(int(np.size(v)) for v in bn_p.values())
        for col in new.values():
            _tree_pop(col, bn_call.path)
        folded_bns.add(bn_call.path)

    def interceptor(next_fun, args, kw, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kw)
        path = tuple(context.module.scope.path)
        if path in folded_bns:
            return _first_arg(args, kw)
        out = next_fun(*args, **kw)
        if path in added_bias:  # a conv declared without bias: add the folded one
            out = out + context.module.get_variable("params", "bias").astype(out.dtype)
        return out

    def folded_apply(variables, *args, **kw):
        with nn.intercept_methods(interceptor):
            return apply_fn(variables, *args, **kw)

    return FoldResult(None, [(_path_str(a.path), _path_str(b.path)) for a, b in pairs], skipped,
                      removed, added, apply_fn=folded_apply, variables=new)
