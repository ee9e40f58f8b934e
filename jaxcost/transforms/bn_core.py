"""The core of BatchNorm folding, shared by the NNX and linen adapters: the recorded calls,
the pair finder on the traced graph, and the folded arrays (see :mod:`jaxcost.transforms.fold_bn`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.extend.core as jcore
import jax.numpy as jnp
import numpy as np
from flax import nnx

_BN_SCOPE = "__jaxcost_fold_bn"

REASON_TRAINING = "training mode (use_running_average=False)"
REASON_AFTER_OP = "follows a ReLU/other op, not a conv (Conv-ReLU-BN)"
REASON_BEFORE_CONV = "BN before conv"
REASON_CONSUMERS = "conv output has other consumers"
REASON_SHARED = "conv or BN module is called more than once (shared weights)"
REASON_AXIS = "BN does not normalise the conv's output-channel (last) axis"
REASON_MASK = "BN called with a mask"
REASON_NOT_CALLED = "BN not called in the traced forward pass"


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
class Call:
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


def jaxpr_var(x):
    """The jaxpr variable of a tracer (``DynamicJaxprTracer.val``), else None."""
    v = getattr(x, "val", None)
    return v if isinstance(v, jcore.Var) else None


def first_arg(args, kwargs):
    if args:
        return args[0]
    for k in ("inputs", "x"):
        if k in kwargs:
            return kwargs[k]
    return None


def path_str(path) -> str:
    return "/".join(str(k) for k in path)


def sub_jaxprs(params):
    for v in params.values():
        vs = v if isinstance(v, (list, tuple)) else (v,)
        for x in vs:
            if isinstance(x, jcore.ClosedJaxpr):
                yield x.jaxpr
            elif isinstance(x, jcore.Jaxpr):
                yield x


def walk(jaxpr):
    """Yield (jaxpr, eqn) for every equation, sub-jaxprs included."""
    for eqn in jaxpr.eqns:
        yield jaxpr, eqn
        for sub in sub_jaxprs(eqn.params):
            yield from walk(sub)


def all_outvars(jaxpr):
    yield from jaxpr.outvars
    for eqn in jaxpr.eqns:
        for sub in sub_jaxprs(eqn.params):
            yield from all_outvars(sub)


def op_name(eqn) -> str:
    name = str(eqn.primitive)
    if isinstance(eqn.params.get("name"), str):
        return f"{name}[{eqn.params['name']}]"
    for sub in sub_jaxprs(eqn.params):  # custom_jvp_call etc.: name of the wrapped function
        func = getattr(getattr(sub, "debug_info", None), "func_name", None)
        if func:
            return f"{name}[{func}]"
    return name


def record(calls: list[Call], module, kind: str, args, kwargs, call) -> Any:
    """Run ``call(*args, **kwargs)`` (one Conv/Linear/BN call) and record it; BN
    calls run inside a unique named scope so their equations can be recognised."""
    x = first_arg(args, kwargs)
    if kind != "bn":
        out = call(*args, **kwargs)
        calls.append(Call(module, kind, x, out, jaxpr_var(x), jaxpr_var(out)))
        return out
    scope = f"{_BN_SCOPE}{len(calls)}"
    with jax.named_scope(scope):
        out = call(*args, **kwargs)
    ura = kwargs.get("use_running_average", args[1] if len(args) > 1 else None)
    if ura is None:
        ura = module.use_running_average
    mask = kwargs.get("mask", args[2] if len(args) > 2 else None)
    calls.append(Call(module, kind, x, out, jaxpr_var(x), jaxpr_var(out), bool(ura), mask is not None, scope))
    return out


def find_pairs(calls: list[Call], closed) -> tuple[list[tuple[Call, Call]], list[tuple[str, str]]]:
    """(conv call, bn call) pairs to fold, and (bn path, reason) for each BN left alone."""
    jaxpr = closed.jaxpr
    # Who produces / consumes each variable (anywhere in the jaxpr).
    producer: dict[Any, Any] = {}
    uses: dict[Any, list] = {}
    for _, eqn in walk(jaxpr):
        for v in eqn.outvars:
            producer[v] = eqn
        for v in eqn.invars:
            if isinstance(v, jcore.Var):
                uses.setdefault(v, []).append(eqn)
    returned = {v for v in all_outvars(jaxpr) if isinstance(v, jcore.Var)}

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

    pairs: list[tuple[Call, Call]] = []
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
                what = op_name(eqn) if eqn is not None else "a model input"
                reason = f"{REASON_AFTER_OP}: input comes from {what}"
        elif n_calls[c.key] > 1 or n_calls[src.key] > 1:
            reason = REASON_SHARED
        elif other_consumers(src, c):
            reason = REASON_CONSUMERS
        elif c.module.axis not in (-1, jnp.ndim(c.inp) - 1):
            reason = REASON_AXIS
        if reason is not None:
            skipped.append((path_str(c.path), reason))
        else:
            pairs.append((src, c))
    return pairs, skipped


def folded_arrays(kernel, bias, mean, var, scale, shift, eps):
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


def check_concrete(pairs, leaves) -> None:
    if pairs and any(isinstance(x, jax.ShapeDtypeStruct) for x in leaves):
        raise ValueError(
            "fold_batchnorm: the model is abstract (jax.ShapeDtypeStruct weights, e.g. from "
            f"eval_shape); {len(pairs)} Conv/Linear+BN pairs were found but folding "
            "rewrites kernels and biases and needs real weights -- build the model with real "
            "arrays (e.g. nnx.Rngs / module.init) first")


