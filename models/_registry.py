"""The zoo registry: a name -> (builder, example input shape, published reference)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

from flax import nnx

# The public sources of the reference figures (``Reference.source``, printed by ``jaxcost models``):
# torchvision's weights.meta "num_params" and "_ops" (its docs' GFLOPS column, which counts MACs), and
# the ptflops README's table, measured on Cadene's pretrainedmodels ports.
TORCHVISION = "torchvision 0.29 weights metadata"
PTFLOPS = "ptflops README table"


@dataclasses.dataclass(frozen=True)
class Reference:
    """Published figures a model must reproduce, and ``source``, where they are published.

    ``params``: parameter count; ``params_exact``: True when it is an exact
    integer (torchvision / keras), False for a rounded paper figure.
    ``macs``: multiply-accumulates of conv + linear layers, dense convention
    (padded taps counted), batch 1, at ``input_shape``.
    ``tolerance``: relative tolerance the tests allow for inexact figures.
    """

    params: int | None
    macs: float | None
    source: str
    params_exact: bool = True
    tolerance: float = 0.0
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., nnx.Module]
    input_shape: tuple[int, ...]
    reference: Reference | None
    family: str


_REGISTRY: dict[str, Entry] = {}


def register(name: str, *, input_shape: tuple[int, ...], reference: Reference | None = None,
             family: str = ""):
    """Decorator: register ``builder(*, rngs, **options) -> nnx.Module`` under ``name``."""

    def wrap(builder):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = Entry(name, builder, tuple(input_shape), reference,
                                family or builder.__module__.rsplit(".", 1)[-1])
        return builder

    return wrap


def _entry(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    """All registered model names, sorted."""
    return sorted(_REGISTRY)


def build(name: str, *, rngs: nnx.Rngs | None = None, **options) -> nnx.Module:
    """Build model ``name`` (``rngs=None`` -> ``nnx.Rngs(0)``). Wrap in
    ``nnx.eval_shape(lambda: build(name))`` to get it without allocating weights."""
    return _entry(name).builder(rngs=rngs if rngs is not None else nnx.Rngs(0), **options)


@contextlib.contextmanager
def fast_abstract_tracing():
    """Skip building tracer error messages nobody reads while tracing abstractly.

    With jax 0.10 / flax 0.12 every ``nnx.Rngs`` draw inside ``nnx.eval_shape``
    probes ``tracer.sharding``; the AttributeError it raises formats a message
    that walks the whole trace so far, so deep models build in quadratic time
    (densenet121: 5.2 s -> 1.0 s with this). The message is caught and dropped
    by flax, never shown; we replace its builder for the duration only.
    """
    try:
        from jax._src.interpreters import partial_eval as pe

        saved = pe.DynamicJaxprTracer._origin_msg
    except (ImportError, AttributeError):  # a jax without the slow path
        yield
        return
    pe.DynamicJaxprTracer._origin_msg = lambda self: ""
    try:
        yield
    finally:
        pe.DynamicJaxprTracer._origin_msg = saved


def build_abstract(name: str, **options) -> nnx.Module:
    """``nnx.eval_shape(lambda: build(name))``: the model with ``ShapeDtypeStruct``
    leaves, no weights allocated; fast for deep models (see :func:`fast_abstract_tracing`)."""
    with fast_abstract_tracing():
        return nnx.eval_shape(lambda: build(name, **options))


def input_shape(name: str) -> tuple[int, ...]:
    """One example input shape without the batch dimension (NHWC for images)."""
    return _entry(name).input_shape


def reference(name: str) -> Reference | None:
    """The published figures ``name`` must reproduce, with their source."""
    return _entry(name).reference


def family(name: str) -> str:
    return _entry(name).family
