"""Wall-clock benchmarks of a jitted function on any JAX backend.

``benchmark`` lowers and compiles ``fn`` once (lower and compile times are
measured apart from the runs), warms it up, then repeats it until the time
budget is spent, between ``min_repeats`` and ``max_repeats`` runs, each run
ended by ``jax.block_until_ready``.

Arguments may be arrays or ``jax.ShapeDtypeStruct``. A ShapeDtypeStruct is
materialized on the target device as ones (floating and complex dtypes) or
zeros (integer and bool dtypes): ones keep float kernels off any all-zero
fast path, zeros keep integer inputs valid as indices.

``sweep`` runs a grid of batch sizes x backends x compiler-option sets; a
point that fails (out of memory, an option the backend rejects, any
exception) is recorded with its ``error`` and the sweep goes on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcost.perf.results import BenchmarkResult
from jaxcost.perf.stats import TimingStats
from jaxcost.target import make_target

#: Compiler-option sets worth comparing, per platform. Each set is passed as
#: ``Lowered.compile(compiler_options=...)``. All CPU sets were checked to be
#: accepted by jaxlib 0.10.2.
DEFAULT_OPTION_SETS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "default": {},
        "no-fusion": {"xla_disable_hlo_passes": "fusion"},
        "no-ynn-fusion": {"xla_cpu_experimental_ynn_fusion_type": ""},
    },
    "gpu": {
        "default": {},
        "no-fusion": {"xla_disable_hlo_passes": "fusion"},
    },
    "tpu": {
        "default": {},
    },
}


def _platform_of(backend: str | None) -> str:
    return jax.devices(backend)[0].platform


def _materialize(arg: Any, device: jax.Device) -> Any:
    """Place a pytree on ``device``; ``ShapeDtypeStruct`` leaves become ones (floats) or zeros."""

    def leaf(x):
        if isinstance(x, jax.ShapeDtypeStruct) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            keys = jax.random.split(jax.random.key(0), max(1, math.prod(x.shape)))
            return jax.device_put(keys.reshape(x.shape) if x.shape else keys[0], device)
        if isinstance(x, jax.ShapeDtypeStruct):
            dtype = np.dtype(x.dtype)
            fill = jnp.ones if jnp.issubdtype(dtype, jnp.inexact) else jnp.zeros
            return jax.device_put(fill(x.shape, dtype), device)
        return jax.device_put(x, device)

    return jax.tree.map(leaf, arg)


def _is_module(fn) -> bool:
    from flax import nnx

    try:
        from flax import linen
    except ImportError:  # pragma: no cover - linen ships with flax
        linen = None
    return isinstance(fn, nnx.Module) or (linen is not None and isinstance(fn, linen.Module))


def benchmark(
    fn: Callable[..., Any],
    *args: Any,
    backend: str | None = None,
    compiler_options: Mapping[str, Any] | None = None,
    warmup: int = 2,
    min_repeats: int = 5,
    max_repeats: int = 1000,
    time_budget_s: float = 2.0,
    batch_size: int | None = None,
    static_argnums: int | Sequence[int] = (),
    options_name: str | None = None,
    donate_argnums: Sequence[int] = (),
    carry: bool = False,
) -> BenchmarkResult:
    """Time ``fn(*args)`` compiled for ``backend`` (default: JAX's default).

    ``fn`` may be a function or an ``nnx.Module`` / linen ``Module`` (as for
    :func:`jaxcost.analyze`; abstract parameters and inputs are materialised as
    ones/zeros on the device, for timing only). ``batch_size`` (for items/s)
    defaults to the leading dimension of a module's first input.
    Raises whatever lowering, compiling or running raises; ``sweep`` is the
    variant that records failures instead.

    Steady-state training steps: with ``carry=True`` the first argument is the state,
    ``fn`` returns ``(state, aux)`` and every run gets the state the previous one returned;
    ``donate_argnums=(0,)`` lets XLA update it in place, as a training loop does.
    """
    if min_repeats < 1 or max_repeats < min_repeats:
        raise ValueError(f"need 1 <= min_repeats <= max_repeats, got {min_repeats}, {max_repeats}")
    if _is_module(fn):
        target = make_target(fn, args, {})
        fn, args, static_argnums = target.fn, target.args, target.static_argnums
        if batch_size is None:
            data = target.inputs()
            shape = getattr(data[0], "shape", ()) if data else ()
            batch_size = shape[0] if shape else None
    device = jax.devices(backend)[0]
    static = {static_argnums} if isinstance(static_argnums, int) else set(static_argnums)
    placed = tuple(a if i in static else _materialize(a, device) for i, a in enumerate(args))
    options = dict(compiler_options or {})

    jitted = jax.jit(fn, static_argnums=tuple(sorted(static)), donate_argnums=tuple(donate_argnums))
    t0 = time.perf_counter()
    lowered = jitted.lower(*placed)
    t1 = time.perf_counter()
    compiled = lowered.compile(compiler_options=options or None)
    t2 = time.perf_counter()
    dyn = [a for i, a in enumerate(placed) if i not in static]

    def run():
        out = jax.block_until_ready(compiled(*dyn))
        if carry:
            dyn[0] = out[0]

    for _ in range(warmup):
        run()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < max_repeats:
        s = time.perf_counter()
        run()
        samples.append(time.perf_counter() - s)
        if len(samples) >= min_repeats and time.perf_counter() - start >= time_budget_s:
            break
    stats = TimingStats.from_samples(samples)
    throughput = batch_size / stats.median if batch_size and stats.median > 0 else None
    return BenchmarkResult(
        backend=device.platform,
        device_kind=device.device_kind,
        batch_size=batch_size,
        compile_s=t2 - t1,
        lower_s=t1 - t0,
        stats=stats,
        latency_s=stats.median,
        throughput=throughput,
        compiler_options=options,
        options_name=options_name,
        error=None,
    )


def available_backends(candidates: Iterable[str] = ("cpu", "gpu", "tpu")) -> list[str]:
    """The backends among ``candidates`` that have at least one device."""
    present = []
    for b in candidates:
        try:
            devices = jax.devices(b)
        except Exception:  # noqa: BLE001 - jax raises RuntimeError, plugins may differ
            devices = []
        if devices:
            present.append(b)
    return present


def sweep(
    make_args: Callable[[int], tuple],
    fn: Callable[..., Any],
    batches: Sequence[int] = (1, 8, 32),
    backends: Sequence[str] | None = None,
    option_sets: Mapping[str, Mapping[str, Any]] | None = None,
    quiet: bool = False,
    **benchmark_kwargs: Any,
) -> list[BenchmarkResult]:
    """Benchmark ``fn(*make_args(b))`` for each batch size, backend and option set
    (``fn`` a function or a Flax module, as for :func:`benchmark`).

    ``backends`` defaults to every present backend; an absent one (its
    ``jax.devices`` raises) is skipped. ``option_sets`` maps a name to a
    compiler-options dict (see ``DEFAULT_OPTION_SETS``); default: one set,
    ``benchmark_kwargs.get("compiler_options")``. Any exception at a point is
    recorded in that point's ``error``. A rich progress bar is shown when
    there are more than two points, unless ``quiet``.
    """
    names = available_backends(backends) if backends is not None else available_backends()
    if option_sets is None:
        option_sets = {"default": benchmark_kwargs.pop("compiler_options", None) or {}}
    else:
        benchmark_kwargs.pop("compiler_options", None)
    points = [(b, n, dict(o), bs) for b in names for n, o in option_sets.items() for bs in batches]

    def run_point(backend: str, oname: str, opts: dict, bs: int) -> BenchmarkResult:
        try:
            return benchmark(fn, *make_args(bs), backend=backend, compiler_options=opts,
                             batch_size=bs, options_name=oname, **benchmark_kwargs)
        except Exception as e:  # noqa: BLE001 - a failed point is data, not a crash
            try:
                kind = jax.devices(backend)[0].device_kind
            except RuntimeError:
                kind = ""
            return BenchmarkResult(backend=backend, device_kind=kind, batch_size=bs,
                                   compile_s=None, lower_s=None, stats=None, latency_s=None,
                                   throughput=None, compiler_options=opts, options_name=oname,
                                   error=f"{type(e).__name__}: {e}")

    results: list[BenchmarkResult] = []
    if quiet or len(points) <= 2:
        for p in points:
            results.append(run_point(*p))
        return results
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("benchmark sweep", total=len(points))
        for b, n, o, bs in points:
            progress.update(task, description=f"{b} {n} batch={bs}")
            results.append(run_point(b, n, o, bs))
            progress.advance(task)
    return results


# ---------------------------------------------------------------- writers
