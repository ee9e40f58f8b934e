"""BatchNorm folding for linen models: trace ``apply_fn`` under :func:`flax.linen.intercept_methods`
(``nn.Conv`` / ``nn.Dense`` / ``nn.BatchNorm`` calls by module path), fold into new variables, and
an ``apply_fn`` that skips the folded BNs."""

from __future__ import annotations

import jax
import numpy as np
from flax import linen as nn

from jaxcost.transforms.bn_core import (
    REASON_NOT_CALLED,
    Call,
    FoldResult,
    check_concrete,
    find_pairs,
    first_arg,
    folded_arrays,
    path_str,
    record,
)


def _linen_kind(module) -> str | None:
    if isinstance(module, nn.BatchNorm):
        return "bn"
    if isinstance(module, (nn.Conv, nn.Dense)):
        return "conv"
    return None


def _trace_linen(apply_fn, variables, example_args, kwargs):
    """Trace ``apply_fn(variables, *example_args)`` recording linen Conv/Dense/BN calls."""
    calls: list[Call] = []

    def interceptor(next_fun, args, kw, context):
        kind = _linen_kind(context.module) if context.method_name == "__call__" else None
        if kind is None:
            return next_fun(*args, **kw)
        return record(calls, context.module, kind, args, kw, next_fun)

    def run(variables, *args):
        with nn.intercept_methods(interceptor):
            return apply_fn(variables, *args, **kwargs)

    closed = jax.make_jaxpr(run)(variables, *example_args)
    for c in calls:
        c.key = c.path = tuple(c.module.scope.path)
    return calls, closed


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


def fold_linen(apply_fn, variables, example_args, kwargs) -> FoldResult:
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
    pairs, skipped = find_pairs(calls, closed)
    called = {c.path for c in calls if c.kind == "bn"}

    def bn_paths(tree, path=()):
        if hasattr(tree, "items"):
            if "mean" in tree and "var" in tree:
                yield path
            for k, v in tree.items():
                yield from bn_paths(v, (*path, k))

    for path in bn_paths(variables.get("batch_stats", {})):
        if path not in called:
            skipped.append((path_str(path), REASON_NOT_CALLED))
    check_concrete(pairs, jax.tree.leaves(variables))

    new = jax.tree.map(lambda x: x, variables)  # fresh dicts, same arrays
    params, stats = new.setdefault("params", {}), new.get("batch_stats", {})
    removed = added = 0
    folded_bns, added_bias = set(), set()
    for conv_call, bn_call in pairs:
        conv_p, bn_p = _tree_get(params, conv_call.path), _tree_get(params, bn_call.path)
        bn_s = _tree_get(stats, bn_call.path)
        bn = bn_call.module
        kernel, bias = folded_arrays(conv_p["kernel"], conv_p.get("bias"), bn_s["mean"], bn_s["var"],
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
            return first_arg(args, kw)
        out = next_fun(*args, **kw)
        if path in added_bias:  # a conv declared without bias: add the folded one
            out = out + context.module.get_variable("params", "bias").astype(out.dtype)
        return out

    def folded_apply(variables, *args, **kw):
        with nn.intercept_methods(interceptor):
            return apply_fn(variables, *args, **kw)

    return FoldResult(None, [(path_str(a.path), path_str(b.path)) for a, b in pairs], skipped,
                      removed, added, apply_fn=folded_apply, variables=new)
