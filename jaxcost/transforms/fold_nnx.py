"""BatchNorm folding for Flax NNX models: trace with ``nnx.Conv``/``nnx.Linear``/``nnx.BatchNorm``
calls recorded, fold the pairs into a clone (BNs replaced by :class:`Identity`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxcost.target import wrapped_calls
from jaxcost.transforms.bn_core import (
    REASON_NOT_CALLED,
    Call,
    FoldResult,
    check_concrete,
    find_pairs,
    folded_arrays,
    path_str,
    record,
)


class Identity(nnx.Module):
    """Stands in for a folded BatchNorm: returns its input (extra arguments ignored)."""

    def __call__(self, x, *args, **kwargs):
        return x


def _module_paths(model) -> dict[int, tuple]:
    return {id(node): tuple(path) for path, node in nnx.iter_graph(model)
            if isinstance(node, nnx.Module)}


def _trace(model, example_args, kwargs):
    """Trace ``model(*example_args)``; return (calls with their paths, closed jaxpr)."""
    graphdef, state = nnx.split(model)
    calls: list[Call] = []
    paths: dict[int, tuple] = {}

    def wrap(orig):
        def __call__(self, *args, **kw):
            kind = "bn" if isinstance(self, nnx.BatchNorm) else "conv"
            return record(calls, self, kind, args, kw, lambda *a, **k: orig(self, *a, **k))

        __call__.__wrapped__ = orig
        return __call__

    def run(state, *args):
        m = nnx.merge(graphdef, state)
        paths.update(_module_paths(m))
        return m(*args, **kwargs)

    with wrapped_calls((nnx.Conv, nnx.Linear, nnx.BatchNorm), wrap):
        closed = jax.make_jaxpr(run)(state, *example_args)
    for c in calls:
        c.key, c.path = id(c.module), paths[id(c.module)]
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


def fold_nnx(model, example_args, kwargs) -> FoldResult:
    """NNX half of :func:`jaxcost.transforms.fold_bn.fold_batchnorm`."""
    if not example_args:
        example_args = _default_args(model)
    calls, closed = _trace(model, example_args, kwargs)
    pairs, skipped = find_pairs(calls, closed)

    # BNs in the graph that the forward pass never called.
    called = {c.path for c in calls if c.kind == "bn"}
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.BatchNorm) and tuple(path) not in called:
            skipped.append((path_str(path), REASON_NOT_CALLED))
    check_concrete(pairs, jax.tree.leaves(nnx.state(model)))

    new = nnx.clone(model)
    removed = added = 0
    for conv_call, bn_call in pairs:
        conv, bn = _get(new, conv_call.path), _get(new, bn_call.path)
        value = lambda p: None if p is None else p.get_value()
        kernel, bias = folded_arrays(conv.kernel.get_value(), value(conv.bias), bn.mean.get_value(),
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
    return FoldResult(new, [(path_str(a.path), path_str(b.path)) for a, b in pairs], skipped,
                      removed, added)


