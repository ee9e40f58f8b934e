"""Turn what the user hands us into a pure function of abstract arguments.

``analyze`` accepts a jittable callable, an ``nnx.Module`` or a linen
``Module``. Each becomes a :class:`Target`: a pure function, its abstract
arguments (``jax.ShapeDtypeStruct`` leaves, never real parameters), and where
the parameters are, so they can be counted exactly per layer.

The program analysed is the one a user would run:

- A linen module is ``module.apply`` with the keyword arguments given (also to
  ``init``), an abstract PRNG key for every stream it asks for (dropout), and
  the collections it writes (``batch_stats`` in training mode) returned as
  outputs, as ``mutable=[...]`` does.
- NNX objects (modules, ``nnx.Optimizer``, ``nnx.Rngs``, variables) passed to a
  function, or a module called directly, are handled the way ``nnx.jit``
  compiles them: split into a graph definition and a state of abstract
  arrays, merged inside the pure function, and every state leaf the call
  changed (parameters after an optimizer step, optimizer moments, batch
  statistics, RNG counters) is returned with the output. Without that, XLA
  would drop the updates as dead code and a training step would cost only
  its forward pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx

from jaxcost.errors import AnalysisError

try:  # linen is optional in principle; flax ships it today
    from flax import linen
except ImportError:  # pragma: no cover
    linen = None

_PATH = "_jaxcost_path"  # attribute carrying a module's layer path through nnx transforms


@dataclasses.dataclass(frozen=True)
class Target:
    """A pure function ``fn(*args)`` with abstract ``args``.

    ``param_argnums`` says which arguments hold parameters (``params_by_layer``
    their counts), ``input_argnums`` which hold the user's data inputs (the
    rest is state: batch statistics, optimizer moments, RNG keys).
    ``optimizer_state`` counts the elements held by ``nnx.Optimizer``
    arguments (Adam: two per trained parameter, plus its step counts).

    ``args`` is laid out as ``(params, state, *inputs, kwargs)`` for NNX and
    linen targets (``state``: the other NNX variables; linen's other
    collections and its PRNG keys), and as the user's arguments (plus a dict of
    the array keyword arguments, if any) for plain functions.
    """

    name: str
    fn: Callable
    args: tuple
    static_argnums: tuple[int, ...]
    param_argnums: tuple[int, ...]
    params_by_layer: dict[str, int]
    kind: str  # "function" | "nnx" | "nnx-function" | "linen"
    failures: list = dataclasses.field(default_factory=list)  # (path, module) where tracing failed
    # layer path -> (input, output) as "float32[8, 56, 56, 64]", in call order (model order);
    # filled while tracing NNX and linen modules
    shapes: dict = dataclasses.field(default_factory=dict)
    input_argnums: tuple[int, ...] = ()
    optimizer_state: int = 0
    optimizer_state_bytes: int = 0

    @property
    def params(self) -> int:
        return sum(self.params_by_layer.values())

    @property
    def param_bytes(self) -> int:
        return _nbytes(self._leaves(self.param_argnums))

    @property
    def param_dtypes(self) -> tuple[str, ...]:
        """Distinct parameter dtypes, in order of appearance (``('bfloat16',)``)."""
        return _dtypes(self._leaves(self.param_argnums))

    @property
    def input_dtypes(self) -> tuple[str, ...]:
        return _dtypes(self.inputs())

    def inputs(self) -> list:
        """The array leaves of the user's data inputs (never parameters or state)."""
        return self._leaves(self.input_argnums)

    def describe_inputs(self) -> str:
        """``float32[8, 224, 224, 3], int32[8]``: the inputs as given."""
        return ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.inputs())

    def _leaves(self, argnums) -> list:
        return [x for i in argnums for x in jax.tree.leaves(self.args[i]) if hasattr(x, "shape")]


def _is_node(x) -> bool:
    """An NNX graph node: module, optimizer, ``Rngs``, variable."""
    return nnx.graphlib.is_graph_node(x)


def _nbytes(leaves) -> int:
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves)


def _dtypes(leaves) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(x.dtype) for x in leaves))


def abstract(tree: Any) -> Any:
    """Replace array leaves by ``jax.ShapeDtypeStruct`` (Python scalars and NNX
    objects stay). A concrete array sharded over several devices keeps its
    sharding, so a sharded program is analysed as sharded; a single-device
    placement is dropped (``analyze`` picks the device)."""

    def leaf(x):
        if isinstance(x, jax.ShapeDtypeStruct) or _is_node(x):
            return x
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            sharding = getattr(x, "sharding", None)
            if sharding is not None and len(sharding.device_set) < 2:
                sharding = None
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding,
                                        weak_type=bool(getattr(x, "weak_type", False)))
        return x

    return jax.tree.map(leaf, tree, is_leaf=_is_node)


def cast_floating(tree: Any, dtype) -> Any:
    """``tree`` with its floating array leaves as abstract leaves in ``dtype`` (concrete
    arrays too; integer, boolean and key leaves unchanged; abstract shardings kept)."""
    if dtype is None:
        return tree
    dtype = np.dtype(dtype)

    def leaf(x):
        if hasattr(x, "shape") and hasattr(x, "dtype") and jax.numpy.issubdtype(x.dtype, jax.numpy.floating):
            return jax.ShapeDtypeStruct(x.shape, dtype, sharding=getattr(x, "sharding", None)
                                        if isinstance(x, jax.ShapeDtypeStruct) else None)
        return x

    return jax.tree.map(leaf, tree)


def _key(k) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _flat(tree) -> dict[tuple[str, ...], Any]:
    return {tuple(_key(k) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _snapshot(*trees) -> dict[tuple[str, ...], Any]:
    """The leaves of ``trees`` by path, taken before a call (NNX writes into the
    very ``Variable`` objects a state holds, so the state cannot be read after)."""
    return {path: leaf for tree in trees for path, leaf in _flat(tree).items()}


def _changed(before: dict, after) -> list:
    """Leaves of ``after`` that are not the very leaf ``before`` held at that path:
    the state a traced call wrote (an untouched leaf is the same tracer)."""
    return [leaf for path, leaf in _flat(after).items() if before.get(path) is not leaf]


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


def _split_kwargs(kwargs: dict) -> tuple[dict, dict]:
    """(static, dynamic): a keyword argument holding arrays or NNX objects is an
    argument of the program; flags such as ``train=True`` are closed over."""
    static, dynamic = {}, {}
    for k, v in kwargs.items():
        leaves = jax.tree.leaves(v, is_leaf=_is_node)
        (dynamic if any(_is_node(x) or hasattr(x, "shape") for x in leaves) else static)[k] = v
    return static, dynamic


# --------------------------------------------------------------------------- NNX


def module_paths(root, prefix: dict[str, str]) -> list[tuple[tuple, str]]:
    """``(key path, layer path)`` of every module under ``root`` (a dict of NNX
    objects); ``prefix`` renames each object's key (``""`` drops it)."""
    out = []
    for path, node in nnx.iter_graph(root):
        if isinstance(node, nnx.Module) and path:
            layer = [prefix.get(path[0], path[0]), *map(str, path[1:])]
            out.append((path, "/".join(k for k in layer if k)))
    return out


def label_modules(root, paths: list[tuple[tuple, str]]) -> set[type]:
    """Write each module's layer path (``layer1/0/conv1``) on the module itself, so it
    survives the split/merge of nnx transforms (``nnx.value_and_grad`` builds new
    module objects from the graph definition); returns the module classes."""
    classes = set()
    for keys, layer in paths:
        node = root
        try:
            for k in keys:
                node = node[k] if isinstance(k, int) or isinstance(node, dict) else getattr(node, k)
        except (LookupError, AttributeError, TypeError):
            continue  # a container nnx walks but Python cannot index: that module goes unnamed
        object.__setattr__(node, _PATH, layer)  # bypasses nnx's attribute bookkeeping
        classes.add(type(node))
    return classes


@contextlib.contextmanager
def wrapped_calls(classes, wrap):
    """While active, ``cls.__call__`` is ``wrap(original)`` for each class, where ``original`` is
    the call the class runs (its own or inherited, resolved before anything is wrapped, so a
    subclass never wraps its parent's wrapper); the classes are restored afterwards."""
    classes = list(classes)
    own = {cls: cls.__dict__.get("__call__") for cls in classes}  # what to restore
    calls = {cls: getattr(cls, "__call__", None) for cls in classes}  # noqa: B004 - the function itself
    for cls in classes:
        if calls[cls] is not None:
            cls.__call__ = wrap(calls[cls])
    try:
        yield
    finally:
        for cls in classes:
            if own[cls] is not None:
                cls.__call__ = own[cls]
            elif "__call__" in cls.__dict__:
                del cls.__call__


def describe(tree) -> str:
    """The array leaves of ``tree`` as ``float32[8, 224, 224, 3]`` (several joined by ``, ``)."""
    leaves = [x for x in jax.tree.leaves(tree) if hasattr(x, "shape") and hasattr(x, "dtype")]
    return ", ".join(f"{x.dtype}{list(x.shape)}" for x in leaves[:3]) + (", ..." if len(leaves) > 3 else "")


@contextlib.contextmanager
def recorded_shapes(shapes: dict | None, path: str, inputs):
    """Record ``path``'s input on entry (so ``shapes`` is in call order) and its output, via
    the yielded setter, on exit; the first call of a path wins."""
    first = shapes is not None and path not in shapes
    if first:
        shapes[path] = (describe(inputs), "")
    out: list = []
    yield out.append
    if first and out:
        shapes[path] = (shapes[path][0], describe(out[0]))


def named_module_scopes(classes, failures: list | None = None, shapes: dict | None = None):
    """While active, every call of a labelled module runs inside
    ``jax.named_scope`` so its HLO carries the module path (``layer1/0/conv1``),
    as linen does by itself, in the forward pass and in the backward pass
    (``transpose(jvp(layer1/0/conv1))``). ``__call__`` of ``classes`` is wrapped;
    a call nested in its parent's call opens only the remaining part of its path.
    ``shapes`` collects each path's input and output (:func:`recorded_shapes`)."""
    active: list[str] = []

    def wrap(original):
        def wrapped(self, *a, **k):
            path = getattr(self, _PATH, "")
            if not path:
                return original(self, *a, **k)
            top = active[-1] if active else ""
            scope = path[len(top) + 1:] if top and path.startswith(top + "/") else path
            active.append(path)
            try:
                with jax.named_scope(scope), recorded_shapes(shapes, path, a) as record:
                    out = original(self, *a, **k)
                    record(out)
                    return out
            except Exception:
                if failures is not None and not failures:  # the innermost module fails first
                    failures.append((path, self))
                raise
            finally:
                active.pop()

        return wrapped

    return wrapped_calls(classes, wrap)


def describe_expectation(path: str, m) -> str:
    """What a layer expects of its input, where it is knowable."""
    if isinstance(m, nnx.Conv):
        return f"{path} (Conv) expects {m.in_features} input channels on the last axis"
    if isinstance(m, nnx.Linear):
        return f"{path} (Linear) expects {m.in_features} features on the last axis"
    return f"{path} ({type(m).__name__})"


def _arg_names(fn, n: int) -> list[str]:
    try:
        ps = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        ps = []
    return [ps[i].name if i < len(ps) else f"arg{i}" for i in range(n)]


def _take_nodes(tree, names: list[str]) -> tuple[dict[str, Any], dict[int, str], Any]:
    """Pull the NNX objects out of ``(args, kwargs)``: ``{label: object}`` (labelled by
    argument name, ``model`` or ``models/0``), ``{flat position: label}``, and the
    tree with ``None`` in their place (a ``None`` leaf flattens to nothing)."""
    hole = lambda x: x is None or _is_node(x)
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=hole)
    nodes: dict[str, Any] = {}
    where: dict[int, str] = {}
    for j, (path, x) in enumerate(with_paths):
        if _is_node(x):
            head = names[path[1].idx] if path[0].idx == 0 else str(path[1].key)
            label = "/".join([head, *(_key(k) for k in path[2:])])
            nodes[label], where[j] = x, label
    holes = treedef.unflatten([None if j in where else x for j, (_, x) in enumerate(with_paths)])
    return nodes, where, holes


def _put_nodes(holes, where: dict[int, str], objects: dict[str, Any]):
    leaves, treedef = jax.tree_util.tree_flatten(holes, is_leaf=lambda x: x is None)
    for j, label in where.items():
        leaves[j] = objects[label]
    return treedef.unflatten(leaves)


_JAX_JIT = type(jax.jit(abs))


def _nnx_function_target(fn, name: str, kind: str, args: tuple, kwargs: dict,
                         static_argnums, params_argnums, param_dtype) -> Target:
    """``fn(*args, **kwargs)`` with NNX objects among its arguments, as ``nnx.jit``
    compiles it: ``run(params, state, *inputs, kwargs)`` merges the objects, calls
    ``fn`` and returns its output with every state leaf the call wrote.

    (``nnx.jit`` in graph mode also returns the state the call left untouched, as
    copies: same flops, a few more bytes; those copies are not part of the step.)"""
    jitted = isinstance(fn, _JAX_JIT)
    call = fn.__wrapped__ if jitted else fn
    static = set(static_argnums)
    dyn = [i for i in range(len(args)) if i not in static]
    static_kw, dyn_kw = _split_kwargs(kwargs)
    names = _arg_names(call, len(args))
    nodes, where, (dyn_args, dyn_kw) = _take_nodes((tuple(args[i] for i in dyn), dyn_kw),
                                                   [names[i] for i in dyn])
    try:
        graphdef, params, state = nnx.split(nodes, nnx.Param, ...)
    except Exception as e:
        raise AnalysisError(f"cannot split the NNX objects passed to {name}: {type(e).__name__}: {e}") from e
    params, state = cast_floating(abstract(params), param_dtype), abstract(state)

    # Layer paths: relative to the one object holding parameters (as for a module
    # analysed alone), else prefixed by the argument's name ("generator/conv1").
    holders = [k for k in nodes if k in params]
    prefix = {k: "" if len(holders) == 1 else k for k in nodes}
    by_layer: dict[str, int] = {}
    for k in holders:
        for layer, n in _by_layer(params[k], prefix[k]).items():
            by_layer[layer] = by_layer.get(layer, 0) + n
    user_params = {2 + j for j, i in enumerate(dyn) if i in set(params_argnums)}
    dyn_args = tuple(cast_floating(a, param_dtype) if 2 + j in user_params else a
                     for j, a in enumerate(dyn_args))
    for i in sorted(user_params):  # plain parameter pytrees next to the NNX objects
        for layer, n in _by_layer(dyn_args[i - 2]).items():
            by_layer[layer] = by_layer.get(layer, 0) + n
    paths = module_paths(nodes, prefix)
    opt_leaves = [x for k, node in nodes.items() if isinstance(node, nnx.Optimizer) and k in state
                  for x in jax.tree.leaves(nnx.filter_state(state[k], nnx.OptState))]
    failures: list = []
    shapes: dict = {}

    def run(params, state, *a):
        objects = nnx.merge(graphdef, params, state)  # new objects: the user's stay untouched
        classes = label_modules(objects, paths)
        pos, kw = _put_nodes((tuple(a[:-1]), a[-1]), where, objects)
        it = iter(pos)
        before = _snapshot(params, state)
        with named_module_scopes(classes, failures, shapes):
            out = call(*[args[i] if i in static else next(it) for i in range(len(args))], **static_kw, **kw)
        updates = _changed(before, nnx.state(objects))
        if updates and jitted:
            raise AnalysisError(f"{name} is wrapped in jax.jit, which drops the {len(updates)} state arrays "
                                "it writes into the NNX objects it is given: pass it unwrapped or nnx.jit-ed")
        return (out, updates) if updates else out

    run.__name__ = run.__qualname__ = name
    return Target(name, run, (params, state, *dyn_args, dyn_kw), (), (0, *sorted(user_params)), by_layer,
                  kind, failures, shapes,
                  input_argnums=tuple(i for i in range(2, len(dyn_args) + 3) if i not in user_params),
                  optimizer_state=sum(math.prod(x.shape) for x in opt_leaves),
                  optimizer_state_bytes=_nbytes(opt_leaves))


# --------------------------------------------------------------------------- linen


def _linen_target(module, args: tuple, kwargs: dict, rng, param_dtype) -> Target:
    """``module.apply`` with the keyword arguments given (also to ``init``), the
    collections it writes (``batch_stats`` in training mode) returned as outputs,
    as ``mutable=[...]`` does, and PRNG keys as abstract arguments: the user's
    ``rngs=`` or one ``params`` key (linen draws any stream it is not given, such
    as ``dropout``, from ``params``)."""
    name = type(module).__name__
    static_kw, dyn_kw = _split_kwargs(kwargs)
    rngs = dyn_kw.pop("rngs", None) or {"params": abstract(rng)}
    try:
        variables = jax.eval_shape(lambda r, a, kw: module.init(r, *a, **static_kw, **kw), rng, args, dyn_kw)
    except Exception as e:
        raise AnalysisError(f"could not initialise {name} abstractly: {type(e).__name__}: {e}") from e
    collections = dict(variables)
    collections.pop("intermediates", None)  # values sown by init are outputs, not state
    params = cast_floating(collections.pop("params", {}), param_dtype)

    shapes: dict = {}

    def record(call, args, kwargs, context):
        """linen's method interceptor: the input and output of each module's ``__call__``."""
        if context.method_name != "__call__":
            return call(*args, **kwargs)
        path = "/".join((name, *context.module.path))
        with recorded_shapes(shapes, path, args) as done:
            out = call(*args, **kwargs)
            done(out)
        return out

    def run(params, state, *a):
        others, rngs = state
        with linen.intercept_methods(record):
            out = module.apply({"params": params, **others}, *a[:-1], rngs=rngs,
                               mutable=list(others) or False, **static_kw, **a[-1])
        if not others:
            return out
        out, written = out
        updates = _changed(_snapshot(others), written)
        return (out, updates) if updates else out

    run.__name__ = run.__qualname__ = name
    return Target(name, run, (params, (collections, rngs), *args, dyn_kw), (), (0,),
                  _by_layer(params, name), "linen", shapes=shapes, input_argnums=tuple(range(2, len(args) + 3)))


# --------------------------------------------------------------------------- TrainState


def _is_train_state(x) -> bool:
    """A ``flax.training.train_state.TrainState`` (or a subclass, or anything shaped like one)."""
    return all(hasattr(x, a) for a in ("params", "opt_state", "apply_gradients", "replace"))


def _train_state_target(fn, name: str, args: tuple, kwargs: dict, i: int, static_argnums, param_dtype) -> Target:
    """A step taking a ``TrainState`` as argument ``i``: its ``params`` become argument 0 (the
    parameters, counted per layer), the rest of the state argument 1 (its ``opt_state`` counted
    as optimizer state); the program is the same."""
    if i in static_argnums or static_argnums:
        raise AnalysisError(f"{name}: static arguments next to a TrainState are not supported")
    state = args[i]
    params, rest = cast_floating(state.params, param_dtype), state.replace(params=None)
    others = [a for j, a in enumerate(args) if j != i]
    static_kw, dyn_kw = _split_kwargs(kwargs)

    def call(params, rest, *a):
        full = list(a[:-1])
        full.insert(i, rest.replace(params=params))
        return fn(*full, **static_kw, **a[-1])

    call.__name__ = call.__qualname__ = name
    opt_leaves = [x for x in jax.tree.leaves(state.opt_state) if hasattr(x, "shape")]
    return Target(name, call, (params, rest, *others, dyn_kw), (), (0,), _by_layer(params), "function",
                  input_argnums=tuple(range(2, len(others) + 3)),
                  optimizer_state=sum(math.prod(x.shape) for x in opt_leaves), optimizer_state_bytes=_nbytes(opt_leaves))


# --------------------------------------------------------------------------- entry


def make_target(fn, args: tuple, kwargs: dict, *, static_argnums=(), params_argnums=(),
                rng=None, param_dtype=None, opt_state_argnums=()) -> Target:
    """Classify ``fn`` and build its :class:`Target`.

    ``param_dtype`` (``"bfloat16"``) casts the floating parameter leaves of a
    module or of the ``params_argnums`` arguments, so an all-bf16 program is
    analysed without building one. Keyword arguments holding arrays are
    arguments of the program; the others (``train=True``) are closed over.
    ``opt_state_argnums``: the arguments of a plain function that hold optimizer state
    (counted in ``optimizer_state``; an ``nnx.Optimizer`` argument is found by itself).
    """
    args = abstract(tuple(args))
    kwargs = abstract(dict(kwargs))
    static_argnums = tuple(static_argnums)
    params_argnums = tuple(params_argnums)
    if isinstance(fn, nnx.Module):
        name = type(fn).__name__
        return _nnx_function_target(lambda module, *a, **k: module(*a, **k), name, "nnx",
                                    (fn, *args), kwargs, (), (), param_dtype)
    if linen is not None and isinstance(fn, linen.Module):
        return _linen_target(fn, args, kwargs, rng if rng is not None else jax.random.key(0), param_dtype)
    if not callable(fn):
        raise AnalysisError(f"expected a callable, an nnx.Module or a linen Module, got {type(fn).__name__}")
    name = getattr(fn, "__name__", type(fn).__name__)
    opt_state_argnums = tuple(opt_state_argnums)
    for what, nums in (("params_argnums", params_argnums), ("opt_state_argnums", opt_state_argnums)):
        for i in nums:
            if i >= len(args):
                raise AnalysisError(f"{what}={i} but {name} got {len(args)} arguments")
    if any(_is_node(x) for x in jax.tree.leaves((args, kwargs), is_leaf=_is_node)):
        if any(_is_node(x) for i in static_argnums for x in jax.tree.leaves(args[i], is_leaf=_is_node)):
            raise AnalysisError(f"{name}: NNX objects cannot be static arguments")
        return _nnx_function_target(fn, name, "nnx-function", args, kwargs, static_argnums,
                                     params_argnums, param_dtype)
    if not params_argnums and (states := [i for i, a in enumerate(args) if _is_train_state(a)]):
        return _train_state_target(fn, name, args, kwargs, states[0], static_argnums, param_dtype)
    args = tuple(cast_floating(a, param_dtype) if i in params_argnums else a for i, a in enumerate(args))
    by_layer: dict[str, int] = {}
    for i in params_argnums:
        for layer, n in _by_layer(args[i]).items():
            by_layer[layer] = by_layer.get(layer, 0) + n
    static_kw, dyn_kw = _split_kwargs(kwargs)
    call = fn
    if dyn_kw:
        args = (*args, dyn_kw)

        def call(*a):
            return fn(*a[:-1], **static_kw, **a[-1])
    elif static_kw:

        def call(*a):
            return fn(*a, **static_kw)
    if call is not fn:
        call.__name__ = call.__qualname__ = name
    inputs = tuple(i for i in range(len(args))
                   if i not in params_argnums and i not in static_argnums and i not in opt_state_argnums)
    opt_leaves = [x for i in opt_state_argnums for x in jax.tree.leaves(args[i]) if hasattr(x, "shape")]
    return Target(name, call, args, static_argnums, params_argnums, by_layer, "function",
                  input_argnums=inputs, optimizer_state=sum(math.prod(x.shape) for x in opt_leaves),
                  optimizer_state_bytes=_nbytes(opt_leaves))
