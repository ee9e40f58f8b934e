"""Peak compute and memory bandwidth of a device: measured, cached, or published.

``measure_peaks`` runs micro-benchmarks on the device itself:

- FLOP/s: a square ``n x n @ n x n`` matmul counts ``2 n^3`` FLOPs; the size
  grows until one run takes at least ~50 ms, the best of several runs is kept.
- Bandwidth: STREAM-like kernels on arrays far bigger than any cache:
  copy-scale ``y = 2 x`` moves ``2 N`` elements (read + write), triad
  ``z = x + s y`` moves ``3 N``. Best of several runs, max over both kernels.

- Kernel classes (:mod:`jaxcost.perf.kernels`): synthetic dense, 1x1, grouped and
  depthwise convolutions, matmuls, pools and elementwise kernels timed in place
  (:mod:`jaxcost.perf.calibrate`), the rate model fitted to them
  (:mod:`jaxcost.perf.rates`), the paging-in of fresh allocations, and the fixed
  cost per kernel (a chain of tiny unfusable kernels).
- In-program factor: synthetic networks timed whole against their kernels' priced
  time (:mod:`jaxcost.perf.programs`).

Results are cached per device in ``$JAXCOST_CACHE_DIR/peaks.json`` (default
``~/.cache/jaxcost/peaks.json``). ``get_peaks`` returns the cached numbers,
else measures, else falls back to ``PUBLISHED_PEAKS``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from jaxcost.hardware import CHIPS, Chip
from jaxcost.perf.calibrate import (
    CALIBRATION_VERSION,
    measure_dispatch_overhead,
    measure_kernel_table,
    prepare_kernels,
)
from jaxcost.perf.programs import PROGRAMS, ProgramFactor, prepare_programs, program_rows
from jaxcost.perf.rates import RateFit, Rates, class_rates, fit_rates
from jaxcost.perf.stats import best_time


@dataclasses.dataclass(frozen=True)
class DevicePeaks:
    """Peak dense FLOP/s per dtype name and memory bandwidth of one device; when
    measured, also the effective float32 FLOP/s per kernel class
    (``kernel_flops_per_s``), the calibration kernels behind them
    (``kernel_table``, rows as in :mod:`jaxcost.perf.calibrate`), the rate model
    fitted to them (``kernel_fits``, :class:`jaxcost.perf.rates.RateFit` fields), the
    fixed seconds per kernel (``kernel_overhead_s``) and how much slower kernels run inside
    a program than alone (``program_factor``, from the synthetic programs of
    ``program_rows``: :mod:`jaxcost.perf.programs`)."""

    device_kind: str
    platform: str
    flops_per_s: dict[str, float]
    bandwidth_bytes_per_s: float
    source: str  # 'measured' | 'published'
    notes: str = ""
    kernel_flops_per_s: dict[str, float] = dataclasses.field(default_factory=dict)
    kernel_overhead_s: float | None = None
    kernel_table: list[list] = dataclasses.field(default_factory=list, repr=False)
    calibration: int = 0  # jaxcost.perf.calibrate.CALIBRATION_VERSION of kernel_table
    kernel_fits: list[dict] = dataclasses.field(default_factory=list, repr=False)
    program_factor: float = 1.0  # kernels in a program run this much slower (jaxcost.perf.programs)
    program_rows: list[list] = dataclasses.field(default_factory=list, repr=False)
    rounds: int = 1  # timing rounds the calibration averaged (jaxcost.perf.stats.median_over_passes)

    def peak_flops(self, dtype: str = "float32") -> float:
        try:
            return self.flops_per_s[str(jnp.dtype(dtype)) if dtype != "tfloat32" else dtype]
        except KeyError:
            raise KeyError(f"no peak for dtype {dtype!r} on {self.device_kind}; "
                           f"known: {sorted(self.flops_per_s)}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def rates(self, dtype: str = "float32") -> Rates:
        """The per-kernel rates of ``dtype`` (:class:`jaxcost.perf.rates.Rates`): the calibration
        table and its fits for float32 (the dtype calibrated), the peaks alone for others."""
        cache = self.__dict__.setdefault("_rates", {})  # built once per dtype (not a field)
        if dtype not in cache:
            calibrated = dtype == "float32"
            fits = [RateFit(**f) for f in self.kernel_fits] if calibrated else []
            cache[dtype] = Rates(self.kernel_table if calibrated else [], fits,
                                 self.kernel_flops_per_s if calibrated else {}, self.peak_flops(dtype),
                                 self.bandwidth_bytes_per_s)
        return cache[dtype]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DevicePeaks:
        """From :meth:`to_dict`'s output; keys this version does not know are ignored
        (a cache written by a newer jaxcost stays readable)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


T = 1e12
TB = 1e12

# Published dense peaks (no structured sparsity). Keys of flops_per_s are jnp
# dtype names plus "tfloat32" for NVIDIA's TF32 tensor-core mode.
# Each entry: (device_kind patterns, lower-case substrings all of which must
# match; DevicePeaks). The first matching entry wins, so specific ones first.
PUBLISHED_PEAKS: list[tuple[tuple[str, ...], DevicePeaks]] = [
    (("h100", "pcie"), DevicePeaks(
        "NVIDIA H100 PCIe", "gpu",
        {"float32": 51 * T, "tfloat32": 378 * T, "bfloat16": 756 * T, "float16": 756 * T},
        2.0 * TB, "published",
        "NVIDIA H100 Tensor Core GPU datasheet (PCIe column; dense = half the sparsity figures)")),
    (("h100",), DevicePeaks(
        "NVIDIA H100 SXM", "gpu",
        {"float32": 67 * T, "tfloat32": 494.7 * T, "bfloat16": 989.4 * T, "float16": 989.4 * T},
        3.35 * TB, "published",
        "NVIDIA H100 Tensor Core GPU datasheet (SXM column; dense = half the sparsity figures)")),
    (("h200",), DevicePeaks(
        "NVIDIA H200 SXM", "gpu",
        {"float32": 67 * T, "tfloat32": 494.7 * T, "bfloat16": 989.4 * T, "float16": 989.4 * T},
        4.8 * TB, "published",
        "NVIDIA H200 Tensor Core GPU datasheet (SXM column; dense = half the sparsity figures)")),
    (("a100", "80gb"), DevicePeaks(
        "NVIDIA A100 80GB SXM", "gpu",
        {"float32": 19.5 * T, "tfloat32": 156 * T, "bfloat16": 312 * T, "float16": 312 * T},
        2.039 * TB, "published",
        "NVIDIA A100 Tensor Core GPU datasheet (80GB SXM column, dense)")),
    (("a100",), DevicePeaks(
        "NVIDIA A100 40GB SXM", "gpu",
        {"float32": 19.5 * T, "tfloat32": 156 * T, "bfloat16": 312 * T, "float16": 312 * T},
        1.555 * TB, "published",
        "NVIDIA A100 Tensor Core GPU datasheet (40GB SXM column, dense)")),
]


def chip_peaks(chip: Chip, share: int = 1) -> DevicePeaks:
    """A :class:`jaxcost.hardware.Chip`'s published peaks as DevicePeaks, divided among
    ``share`` devices (libtpu's compile-only v4 topology makes one device per TensorCore:
    ``share=chip.devices_per_chip``)."""
    flops = {k: v / share for k, v in (("bfloat16", chip.bf16_flops), ("int8", chip.int8_ops)) if v}
    label = chip.device_kind if chip.name == "cpu" else f"TPU {chip.name}"
    return DevicePeaks(label, "tpu" if chip.name != "cpu" else "cpu", flops,
                       (chip.hbm_bandwidth or 0.0) / share, "published", chip.source)


# TPUs: the chips of jaxcost.hardware (datasheet figures, cited there), by jax device_kind.
PUBLISHED_PEAKS += [(patterns, chip_peaks(CHIPS[name])) for patterns, name in (
    (("tpu", "v4"), "v4"), (("tpu", "v5", "lite"), "v5e"), (("tpu", "v5e"), "v5e"),
    (("tpu", "v6"), "v6e"), (("tpu", "v5"), "v5p"))]


def published_peaks(device_kind: str) -> DevicePeaks | None:
    """Published peaks for a jax ``device_kind`` string, or None if unknown.

    >>> published_peaks("NVIDIA H100 80GB HBM3").device_kind
    'NVIDIA H100 SXM'
    """
    kind = device_kind.lower()
    for patterns, peaks in PUBLISHED_PEAKS:
        if all(p in kind for p in patterns):
            return peaks
    return None


# ---------------------------------------------------------------- measuring

def measure_matmul_flops(device: jax.Device, dtype: str = "float32",
                         sizes: Sequence[int] | None = None, repeats: int = 5,
                         target_s: float = 0.05) -> tuple[float, int]:
    """Best FLOP/s of a square matmul, and the size used.

    With ``sizes=None`` the size doubles from 256 until one run takes at least
    ``target_s`` (cap 16384); otherwise the best over the given sizes.
    """
    mm = jax.jit(jnp.matmul)

    def rate(n: int) -> tuple[float, float]:
        a = jax.device_put(jnp.ones((n, n), dtype), device)
        b = jax.device_put(jnp.ones((n, n), dtype), device)
        t = best_time(lambda: mm(a, b), repeats)
        return 2.0 * n**3 / t, t

    if sizes is not None:
        return max((rate(n)[0], n) for n in sizes)
    n = 256
    while True:
        r, t = rate(n)
        if t >= target_s or n >= 16384:
            return r, n
        n *= 2


def measure_bandwidth(device: jax.Device, n_elements: int = 2**25,
                      repeats: int = 5) -> float:
    """Best bytes/s of STREAM-like scale and triad on float32 arrays
    (default 2**25 elements = 128 MiB each, far beyond caches).

    The output buffer is donated back as the next input (``x = -x``,
    ``x = x + s y`` in place), so runs time memory traffic rather than the
    page faults of freshly allocated outputs.
    """
    # non-constant data, so no page can be shared or compressed by the host
    x = jax.device_put(jnp.linspace(0.0, 1.0, n_elements, dtype=jnp.float32), device)
    y = jax.device_put(jnp.linspace(1.0, 2.0, n_elements, dtype=jnp.float32), device)
    scale = jax.jit(lambda x: -x, donate_argnums=0)
    triad = jax.jit(lambda x, y: x + 1e-3 * y, donate_argnums=0)
    nbytes = 4 * n_elements

    def best(step: Callable[[jax.Array], jax.Array], x: jax.Array) -> tuple[float, jax.Array]:
        x = jax.block_until_ready(step(x))  # warm-up (and compile)
        t_best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            x = jax.block_until_ready(step(x))
            t_best = min(t_best, time.perf_counter() - t)
        return t_best, x

    t_scale, x = best(scale, x)
    t_triad, x = best(lambda x: triad(x, y), x)
    return max(2 * nbytes / t_scale, 3 * nbytes / t_triad)


def measure_peaks(backend: str | None = None, dtypes: Sequence[str] = ("float32",),
                  sizes: Sequence[int] | None = None, repeats: int = 5,
                  stream_elements: int = 2**25, rounds: int = 1) -> DevicePeaks:
    """Measure peak matmul FLOP/s per dtype and STREAM bandwidth on ``backend``, and calibrate
    its kernels and programs, timed in ``rounds`` rounds (see
    :func:`jaxcost.perf.calibrate.measure_kernel_table`: each round adds ~12 s on a 2-core CPU
    and makes the predictions steadier)."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    from jaxcost.perf.calibrate import FAULT_SIZES, calibration_kernels
    from jaxcost.report.progress import progress

    device = jax.devices(backend)[0]
    flops: dict[str, float] = {}
    notes = []
    steps = len(dtypes) + 3 + len(calibration_kernels()) + len(FAULT_SIZES) + PROGRAMS
    with progress(steps, f"measuring {device.device_kind} peaks") as step:
        for dt in dtypes:
            name = str(jnp.dtype(dt))
            step(f"{name} matmul")
            flops[name], n = measure_matmul_flops(device, name, sizes, repeats)
            notes.append(f"{name} matmul n={n}")
        step("memory bandwidth")
        bw = measure_bandwidth(device, stream_elements, repeats)
        notes.append(f"stream copy/triad on {stream_elements} float32; best of {repeats}")
        with ThreadPoolExecutor(1) as background:  # the synthetic programs compile while the kernels do,
            compiling = background.submit(prepare_programs, device, step) if "float32" in flops else None
            background.submit(importlib.import_module, "scipy.optimize")  # and the rate fits' solver loads (~0.5 s)
            kernels = prepare_kernels(device, on_kernel=step)
            programs = compiling.result() if compiling is not None else []
        table, program_s = measure_kernel_table(device, on_kernel=step, alongside=[p.run for p in programs],
                                                rounds=rounds, prepared=kernels)
        overhead = measure_dispatch_overhead(device, repeats=repeats)
        step("fitting the rate model")
        fits = fit_rates(table)
        rates = Rates(table, fits, class_rates(table), flops.get("float32", 0.0), bw)
        programs = program_rows(programs, program_s, rates, overhead)
    factor = ProgramFactor.fit(programs)
    notes.append(f"kernel classes: {len(table)} synthetic kernels timed in {rounds} round(s), spread over "
                 "jaxcost.perf.calibrate.CONV_GRID, DOT_GRID, POOL_GRID, ATTENTION_GRID; rate model " + ", ".join(
                     f"{f.cls}/{f.impl.split(':')[-1]} LOO median {f.loo_median:.0%}" for f in fits))
    if programs:
        notes.append(repr(factor))
    return DevicePeaks(device.device_kind, device.platform, flops, bw, "measured", "; ".join(notes),
                       class_rates(table), overhead, table, CALIBRATION_VERSION, [dataclasses.asdict(f) for f in fits],
                       factor.factor, [list(r) for r in programs], rounds)


# ---------------------------------------------------------------- cache

def cache_path() -> Path:
    """``$JAXCOST_CACHE_DIR/peaks.json``, default ``~/.cache/jaxcost/peaks.json``."""
    root = os.environ.get("JAXCOST_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "jaxcost")
    return Path(root) / "peaks.json"


def _cache_key(device: jax.Device) -> str:
    return f"{device.platform}:{device.device_kind}"


def _read_cache() -> dict[str, Any]:
    p = cache_path()
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_cache(key: str, peaks: DevicePeaks) -> None:
    p = cache_path()
    data = _read_cache()
    data[key] = peaks.to_dict()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(p)


def get_peaks(backend: str | None = None, measure: bool = True, refresh: bool = False,
              rounds: int = 1) -> DevicePeaks:
    """Peaks of ``backend``'s first device.

    Order: the cache (unless ``refresh``, or when ``measure`` and the cached calibration is of
    an older version or timed in fewer than ``rounds`` rounds); then a measurement in
    ``rounds`` timing rounds (:func:`measure_peaks`), stored in the cache (if ``measure``);
    then ``PUBLISHED_PEAKS``. Raises LookupError when none applies.
    """
    device = jax.devices(backend)[0]
    key = _cache_key(device)
    if not refresh:
        cached = _read_cache().get(key)
        # entries calibrated by an older version of the kernel table, or in fewer rounds, are measured again
        current = cached is not None and cached.get("calibration", 0) >= CALIBRATION_VERSION
        if cached is not None and (not measure or current and cached.get("rounds", 1) >= rounds):
            return DevicePeaks.from_dict(cached)
    if measure:
        peaks = measure_peaks(backend, rounds=rounds)
        _write_cache(key, peaks)
        return peaks
    published = published_peaks(device.device_kind)
    if published is None:
        raise LookupError(f"no cached, measured or published peaks for {device.device_kind!r}")
    return published
