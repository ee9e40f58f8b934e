"""Turn what the user hands us into a pure function of abstract arguments.

``analyze`` accepts a jittable callable, an ``nnx.Module`` or a linen
``Module``. Each becomes a :class:`Target`: a pure function, its abstract
arguments (``jax.ShapeDtypeStruct`` leaves, never real parameters), and where
the parameters are, so they can be counted exactly per layer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from jaxcost.errors import AnalysisError

try:  # linen is optional in principle; flax ships it today
    from flax import linen
except ImportError:  # pragma: no cover
    linen = None


@dataclasses.dataclass
class Target:
    """A pure function ``fn(*args)`` with abstract ``args``; ``param_argnums``
    says which arguments hold parameters, ``params_by_layer`` their counts."""

    name: str
    fn: Callable
    args: tuple
    static_argnums: tuple[int, ...]
    param_argnums: tuple[int, ...]
    params_by_layer: dict[str, int]
    kind: str  # "function" | "nnx" | "linen"
    failures: list = dataclasses.field(default_factory=list)  # (path, module) where tracing failed

    @property
    def params(self) -> int:
        return sum(self.params_by_layer.values())


def abstract(tree: Any) -> Any:
    """Replace array leaves by ``jax.ShapeDtypeStruct`` (Python scalars stay)."""

    def leaf(x):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)
                                        if isinstance(x, jax.ShapeDtypeStruct) else None)
        return x

    return jax.tree.map(leaf, tree)


def _count(tree) -> int:
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree) if hasattr(x, "shape"))


def _key(k) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _by_layer(tree, prefix: str = "") -> dict[str, int]:
    """Parameter counts keyed by layer path (the path without the leaf's name)."""
    out: dict[str, int] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not hasattr(leaf, "shape"):
            continue
        keys = [_key(k) for k in path]
        keys = [k for k in keys if k != "value"][:-1]
        layer = "/".join(([prefix] if prefix else []) + keys)
        out[layer] = out.get(layer, 0) + math.prod(leaf.shape)
    return out


@contextlib.contextmanager
def named_module_scopes(root: nnx.Module, failures: list | None = None):
    """While active, every submodule call of ``root`` runs inside
    ``jax.named_scope`` so its HLO carries the module path (``layer1/0/conv1``),
    as linen does by itself. ``__call__`` of the classes involved is wrapped; a
    call nested in its parent's call opens only the remaining part of its path."""
    modules = list(nnx.iter_modules(root))  # one walk of the graph (it is the slow part)
    paths = {id(m): "/".join(map(str, p)) for p, m in modules if p}
    active: list[str] = []
    saved = {}
    for cls in {type(m) for _, m in modules}:
        original = cls.__dict__.get("__call__")
        if original is None:
            continue

        def wrapped(self, *a, __original=original, **k):
            path = paths.get(id(self))
            if not path:
                return __original(self, *a, **k)
            top = active[-1] if active else ""
            scope = path[len(top) + 1:] if top and path.startswith(top + "/") else path
            active.append(path)
            try:
                with jax.named_scope(scope):
                    return __original(self, *a, **k)
            except Exception:
                if failures is not None and not failures:  # the innermost module fails first
                    failures.append((path, self))
                raise
            finally:
                active.pop()

        saved[cls] = original
        cls.__call__ = wrapped
    try:
        yield
    finally:
        for cls, original in saved.items():
            cls.__call__ = original


def describe_expectation(path: str, m) -> str:
    """What a layer expects of its input, where it is knowable."""
    if isinstance(m, nnx.Conv):
        return f"{path} (Conv) expects {m.in_features} input channels on the last axis"
    if isinstance(m, nnx.Linear):
        return f"{path} (Linear) expects {m.in_features} features on the last axis"
    return f"{path} ({type(m).__name__})"


def _nnx_target(module: nnx.Module, args: tuple, kwargs: dict) -> Target:
    graphdef, state = nnx.split(module)
    params = nnx.filter_state(state, nnx.Param)
    failures: list = []

    def run(state, *a):
        model = nnx.merge(graphdef, state)
        with named_module_scopes(model, failures):
            return model(*a, **kwargs)

    return Target(type(module).__name__, run, (abstract(state), *args), (), (0,),
                  _by_layer(params), "nnx", failures)


def _linen_target(module, args: tuple, rng) -> Target:
    try:
        variables = jax.eval_shape(module.init, rng, *args)
    except Exception as e:
        raise AnalysisError(f"could not initialise {type(module).__name__} abstractly: "
                            f"{type(e).__name__}: {e}") from e

    def run(variables, *a):
        return module.apply(variables, *a)

    return Target(type(module).__name__, run, (variables, *args), (), (0,),
                  _by_layer(variables.get("params", {}), type(module).__name__), "linen")


def make_target(fn, args: tuple, kwargs: dict, *, static_argnums=(), params_argnums=(),
                rng=None) -> Target:
    """Classify ``fn`` and build its :class:`Target` (keyword args are closed over)."""
    args = abstract(tuple(args))
    if isinstance(fn, nnx.Module):
        return _nnx_target(fn, args, kwargs)
    if linen is not None and isinstance(fn, linen.Module):
        return _linen_target(fn, args, rng if rng is not None else jax.random.key(0))
    if not callable(fn):
        raise AnalysisError(f"expected a callable, an nnx.Module or a linen Module, got {type(fn).__name__}")
    name = getattr(fn, "__name__", type(fn).__name__)
    call = (lambda *a: fn(*a, **kwargs)) if kwargs else fn
    params_argnums = tuple(params_argnums)
    by_layer: dict[str, int] = {}
    for i in params_argnums:
        if i >= len(args):
            raise AnalysisError(f"params_argnums={i} but {name} got {len(args)} arguments")
        for layer, n in _by_layer(args[i]).items():
            by_layer[layer] = by_layer.get(layer, 0) + n
    return Target(name, call, args, tuple(static_argnums), params_argnums, by_layer, "function")
