"""How fast this device runs a kernel of a class at a size: a model fitted to the calibration
table (:mod:`jaxcost.perf.calibrate`), never to a model.

For each class (:mod:`jaxcost.perf.kernels`), and each kind of kernel (:func:`kernel_impl`)
of which the table has :data:`MIN_ROWS` rows, the time of a kernel of ``groups`` matrix
products ``(M x K) @ (K x N)`` with ``taps`` window taps, ``P`` output pixels per image and
``B = M / P`` images is::

    t = t0 + flops / (R e(M, m) e(K, k) e(N, n) e(P, p) e(G, g) [e(B, b)]) + bytes / B'
                                                                  e(x, h) = x / (x + h)

    flops = 2 M K N groups
    bytes = 4 (M K groups / taps  +  K N groups  +  M N groups)       input, weights, output

a fixed cost ``t0``; the rate ``R`` reached when every dimension is large; the size at which
each dimension reaches half of it (short reductions starve the vector units, few output
channels the register tiles, few output rows the cores, small maps spend their time on the
borders, few depthwise channels the vectors that run across channels; the batch factor where
leave-one-out prefers it: one image may keep one core busy); a bandwidth ``B'``. The
parameters are fitted by robust least squares on log time (soft L1, so one noisy timing does
not drag the curve; with the law's analytic Jacobian: 2.5x faster than finite differences, the same
fits). Then, where leave-one-out on the calibration kernels says it helps, the
fit's errors on the calibration kernels nearest in log feature space (3, inverse-distance
weighted) correct it: what a smooth curve misses, such as a kernel library's fast path.

A class of :data:`SPILL_CLASSES` may also slow down by a step once a windowed kernel's input
outgrows a cache: the law times ``spill`` past ``spill_bytes`` of input, both found in the
calibration kernels (:func:`_spill`) -- a step no smooth factor follows, and no neighbour
correction either (the kernels past it are few and far apart in feature space).

A kernel of :data:`SERIAL_CLASSES` may run on one thread where the device has more: its compute
term takes ``serial`` times the law's where its weights are ``serial_bytes`` or fewer, or its
output channels :data:`SERIAL_N` or fewer (:func:`_serial`), the size and factor found in the
calibration kernels (:func:`_serial_sizes`) and kept where leave-one-out prefers them.

With fewer rows than that, and for the kinds no law suits (:data:`NOT_FITTED`, unpadded convs),
the rate of a kernel is interpolated from its class's nearest calibration kernels of the same
kind (:func:`kernel_rate`). Memory-bound kernels run at the
bandwidth an elementwise kernel of their size reaches (:func:`memory_bandwidth`); a fresh
allocation costs the paging-in measured for its size (:func:`first_touch_seconds`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np

from jaxcost.perf.kernels import LOOP, UNPADDED

# Rows no law is fitted to: memory and paging rows have their own models; a pooling kernel
# (no matmul) and an attention kernel (two matmuls and a softmax) are interpolated among their
# neighbours (kernel_rate), and so is an unpadded conv (kernels.UNPADDED): YNNPACK runs some as
# fast as padded ones, others up to 10x slower, which no smooth law follows. On 139 random unpadded
# convs outside the calibration (benchmarks/unpadded_convs.py and two more draws) interpolation
# erred 27 % (median) and the padded law 28 % (a law fitted to the unpadded kernels: 28 % on 79 of
# them) -- but the padded law priced their total time at 0.41x, interpolation at 0.72x.
NOT_FITTED = ("memory", "fault", "window", "attention", "chain")
# The names of kernel_features' dimensions, and of their flops ``2 M K N groups``
# (:meth:`Rates.outside`).
FEATURES = ("M", "K", "N", "taps", "groups", "pixels", "flops")
# Fewest calibration kernels a fit is made from (up to nine parameters).
MIN_ROWS = 10
# Classes whose windowed kernels may slow down by a step once their input outgrows a cache
# (:func:`_spill`): XLA:CPU's YNNPACK (jax 0.10) runs a grouped conv on one core, and past ~3.6 MiB
# of input at half its rate -- on a 2-core x86 VM four families of 3x3 grouped convs, groups added
# one at a time, took 0.6-0.9 ms a group up to 3.45 MiB of input and 1.2-1.9 ms from 3.83 MiB
# (benchmarks/results/grouped_spill.md); a 32-group conv of 4-channel groups on 8 56x56 maps
# (DPN-68, ResNeXt) ran at 2 GFLOP/s, half the rate the law fitted below the step gave it.
SPILL_CLASSES = ("grouped",)
SPILL_MIN_ROWS = 2  # calibration kernels past a step, at least
SPILL_MIN = 1.25  # a smaller factor is no step
# Classes whose kernels may run on one thread of several (:func:`_serial`): XLA:CPU's YNNPACK (jax
# 0.10) splits a matrix product among threads by blocks of its weights' columns, and runs one whose
# weights fit one block, or whose output channels are too few to split, on one thread whatever its
# rows. On a 2-core x86 VM (AMD EPYC, 1 MiB of L2 a core), of 66 1x1 and 3x3 convs of 64-1024
# channels, the 34 with 256 KiB of weights or less ran as fast pinned to one core as on both
# (speed-up 0.91-0.93, median), the 26 with 512 KiB or more and over 64 output channels 1.83x faster
# on two, the 2 of 64 output channels 0.98x (benchmarks/results/serial_kernels.md); 1x1 convs of
# 512->128 and 128->512 channels on 8 28x28 maps ran at 80-90 GFLOP/s, 512->256 at 150.
SERIAL_CLASSES = ("conv", "conv1x1")
SERIAL_N = 64
SERIAL_MIN_ROWS = 3  # calibration kernels on each side of a size, at least
SERIAL_SIZES = 3  # sizes leave-one-out picks among (rates._serial_sizes)
NEIGHBOURS = 3
# A loop kind's rows (kernels.LOOP: a dozen recurrent-cell trips) are pooled: a kernel of that kind
# is priced at the inverse-distance mean of all of them. On a 2-core VM a batch-1 cell's dot ran at
# 25 GB/s or at 47 GB/s from one calibration to the next (benchmarks/results/rnn_loops.md), and the
# three nearest rows followed one noisy row.
POOLED = 1 << 30
_NAMES = ("t0", "rate", "m_half", "k_half", "n_half", "p_half", "g_half", "bandwidth", "b_half")
_START = (5e-6, 2e11, 100.0, 30.0, 30.0, 10.0, 1.0, 5e10, 1.0)


def _features(rows) -> np.ndarray:
    """``(M, K, N, taps, groups, pixels)`` of calibration rows."""
    return np.array([[r[1], r[2], r[3], r[7], r[8], r[10]] for r in rows], dtype=float)


def _input_bytes(f: np.ndarray) -> np.ndarray:
    """The float32 bytes of the input of kernels with features ``f``: ``4 M K groups / taps``
    (output pixels x input channels: a stride-1 conv's input)."""
    m, k, _, taps, groups, _ = f.T
    return 4 * m * k * groups / taps


def _spilled(f: np.ndarray, spill_bytes: float | None) -> np.ndarray:
    """Which kernels of features ``f`` are windowed (taps > 1) with more than ``spill_bytes`` of input."""
    if spill_bytes is None:
        return np.zeros(len(f), bool)
    return (f[:, 3] > 1) & (_input_bytes(f) > spill_bytes)


def _without_spill(f: np.ndarray, log_t: np.ndarray, spill_bytes: float | None, spill: float) -> np.ndarray:
    """Log seconds ``log_t`` of kernels of features ``f`` with the step ``spill`` past
    ``spill_bytes`` taken out."""
    return log_t - math.log(spill) * _spilled(f, spill_bytes)


def _spill(f: np.ndarray, log_t: np.ndarray) -> tuple[float | None, float]:
    """``(spill_bytes, spill)``: the input size past which the windowed kernels of features ``f``
    and log seconds ``log_t`` run ``spill`` times slower than the law says, else ``(None, 1)``.
    Each size between two windowed kernels' inputs with :data:`SPILL_MIN_ROWS` kernels past it
    is tried (their geometric mean): the law fitted to the kernels not past it, the factor the
    median excess of those past it; the size whose fit leaves the least total |log error| wins,
    when its factor is :data:`SPILL_MIN` or more."""
    sizes = np.unique(_input_bytes(f)[f[:, 3] > 1])
    best, best_err = (None, 1.0), math.inf
    for lo, hi in itertools.pairwise(sizes):
        past = _spilled(f, math.sqrt(lo * hi))
        if past.sum() < SPILL_MIN_ROWS or (~past).sum() < MIN_ROWS:
            continue
        p = _fit(f[~past], log_t[~past], False)
        resid = log_t - _log_seconds(p, f)
        step = float(np.median(resid[past]))
        err = np.abs(resid - step * past).sum()
        if err < best_err:
            best, best_err = (math.sqrt(lo * hi), math.exp(step)), err
    return best if best[1] >= SPILL_MIN else (None, 1.0)


def _weight_bytes(f: np.ndarray) -> np.ndarray:
    """The float32 bytes of the weights of kernels with features ``f``: ``4 K N groups``."""
    _, k, n, _, groups, _ = f.T
    return 4 * k * n * groups


def _serial(f: np.ndarray, serial_bytes: float | None) -> np.ndarray | None:
    """Which kernels of features ``f`` run on one thread (:data:`SERIAL_CLASSES`): those with
    ``serial_bytes`` of weights or fewer, or :data:`SERIAL_N` output channels or fewer; None
    where there is no such size (the law has no serial factor)."""
    if serial_bytes is None:
        return None
    return ((_weight_bytes(f) <= serial_bytes) | (f[:, 2] <= SERIAL_N)).astype(float)


def _terms(p: np.ndarray, f: np.ndarray, serial: np.ndarray | None = None):
    """The three terms of the time of kernels with features ``f`` under log parameters ``p``
    (:data:`_NAMES`; eight of them: no batch factor; and the serial factor last where
    ``serial`` marks the kernels run on one thread, :func:`_serial`) -- fixed, compute, memory
    -- and each dimension's size ``x`` and half size ``h`` of the efficiency factors ``x / (x + h)``."""
    m, k, n, taps, groups, pixels = f.T
    p = np.clip(p, -50, 50)
    if serial is not None:
        p, serial = p[:-1], np.exp(p[-1] * serial)
    t0, rate, mh, kh, nh, ph, gh, bw, *bh = np.exp(p)
    sizes = [m, k, n, pixels, groups] + ([m / pixels] if bh else [])
    halves = [mh, kh, nh, ph, gh] + bh
    eff = np.prod([x / (x + h) for x, h in zip(sizes, halves)], axis=0)
    compute = 2 * m * k * n * groups / (rate * eff) * (1.0 if serial is None else serial)
    memory = 4 * (m * k * groups / taps + k * n * groups + m * n * groups) / bw
    return np.full_like(m, t0), compute, memory, sizes, halves


def _log_seconds(p: np.ndarray, f: np.ndarray, serial: np.ndarray | None = None) -> np.ndarray:
    """Log seconds of kernels with features ``f`` under log parameters ``p`` (:func:`_terms`)."""
    fixed, compute, memory, _, _ = _terms(p, f, serial)
    return np.log(fixed + compute + memory)


def _log_seconds_jacobian(p: np.ndarray, f: np.ndarray, serial: np.ndarray | None = None) -> np.ndarray:
    """d log t / d p of :func:`_log_seconds` (each term's share of the time; a half size h of
    x moves the compute term by h / (x + h)): the fits take it instead of finite differences."""
    fixed, compute, memory, sizes, halves = _terms(p, f, serial)
    t = fixed + compute + memory
    half = [compute / t * h / (x + h) for x, h in zip(sizes, halves)]  # in _NAMES order, the batch's last
    cols = [fixed / t, -compute / t, *half[:5], -memory / t, *half[5:]]
    if serial is not None:
        cols.append(compute / t * serial)
    return np.stack(cols, axis=1) * (np.abs(p) < 50)


def _fit(f: np.ndarray, log_t: np.ndarray, batch: bool, start: np.ndarray | None = None,
         serial: np.ndarray | None = None) -> np.ndarray:
    """Log parameters fitted to log seconds ``log_t`` (with a serial factor where ``serial``
    marks kernels, :func:`_terms`); from ``start`` (a fit of nearly the same rows, as
    leave-one-out refits are) to a looser tolerance: the errors agree to 0.1 %."""
    from scipy.optimize import least_squares

    tol = {} if start is None else {"xtol": 1e-5, "ftol": 1e-5}
    if start is None:
        start = np.log(_START if batch else _START[:-1])
        if serial is not None:
            start = np.append(start, math.log(2.0))
    return least_squares(lambda p: _log_seconds(p, f, serial) - log_t, start,
                         jac=lambda p: _log_seconds_jacobian(p, f, serial), loss="soft_l1", f_scale=0.2, **tol).x


def _serial_sizes(f: np.ndarray, log_t: np.ndarray, plain: np.ndarray) -> list[float]:
    """Sizes of weights at and below which kernels of features ``f`` and log seconds ``log_t``
    may run on one thread (:func:`_serial`), most likely first: each size between two kernels'
    weights with :data:`SERIAL_MIN_ROWS` kernels on either side (of those with more than
    :data:`SERIAL_N` output channels) is tried (their geometric mean), the law with a serial
    factor fitted to all of them (from ``plain``, its fit without the factor); the
    :data:`SERIAL_SIZES` whose fits leave the least total |log error|, of those whose factor
    is :data:`SPILL_MIN` or more. Leave-one-out picks among them (:func:`fit_rates`): the
    least total error alone put a 2-core VM's 1x1 convs of 512 KiB of weights on one thread
    (its two batch-1 ones on 5x5 and 7x7 maps were slow for their few rows), though they ran
    at 130-150 GFLOP/s on 14x14 and 28x28 maps; leave-one-out erred 8 % there, 11 % at 724 KiB."""
    weights = _weight_bytes(f[f[:, 2] > SERIAL_N])
    found = []
    for lo, hi in itertools.pairwise(np.unique(weights)):
        size = math.sqrt(lo * hi)
        below = (weights <= size).sum()
        if min(below, len(weights) - below) < SERIAL_MIN_ROWS:
            continue
        serial = _serial(f, size)
        p = _fit(f, log_t, False, np.append(plain, math.log(2.0)), serial)
        if math.exp(p[-1]) >= SPILL_MIN:
            found.append((float(np.abs(_log_seconds(p, f, serial) - log_t).sum()), size))
    return [size for _, size in sorted(found)[:SERIAL_SIZES]]


def _nearest(coords: np.ndarray, point: np.ndarray, spread: np.ndarray, values: np.ndarray,
             neighbours: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the ``neighbours`` coords nearest ``point`` (log features, each
    dimension scaled by ``spread``), nearest first; equal distances ordered by ``values``."""
    d = np.sqrt((((coords - point) / spread) ** 2).sum(axis=1))
    near = np.lexsort((values, d))[:neighbours]
    return near, d[near]


def _idw(coords: np.ndarray, values: np.ndarray, point: np.ndarray, spread: np.ndarray,
         neighbours: int = NEIGHBOURS) -> float:
    """Inverse-distance weighted mean of the values at the ``neighbours`` coords nearest
    ``point`` (:func:`_nearest`); an exact match's own value."""
    near, d = _nearest(coords, point, spread, values, neighbours)
    if d[0] < 1e-9:
        return float(values[near[0]])
    w = 1.0 / d
    return float((w * values[near]).sum() / w.sum())


@dataclasses.dataclass(frozen=True)
class RateFit:
    """The fitted time model of one class and kind of kernel (see the module docstring):
    its parameters (``b_half`` None: the form without the batch factor), whether the
    neighbours' residuals correct it, and its leave-one-out error on the ``rows``
    calibration kernels (median |predicted / measured - 1|, and the fraction within 10 % and
    25 %; the step ``spill`` past ``spill_bytes`` held as found on all of them); windowed kernels
    with more than ``spill_bytes`` of input (None: no step) take ``spill`` times the law's time;
    kernels with ``serial_bytes`` of weights or fewer (None: no such size), or few output channels,
    ``serial`` times its compute term (:func:`_serial`)."""

    cls: str
    impl: str
    t0: float
    rate: float
    m_half: float
    k_half: float
    n_half: float
    p_half: float
    g_half: float
    bandwidth: float
    b_half: float | None
    corrected: bool
    rows: int
    loo_median: float
    loo_within_10: float
    loo_within_25: float
    spill_bytes: float | None = None
    spill: float = 1.0
    serial_bytes: float | None = None
    serial: float = 1.0

    def __repr__(self) -> str:
        step = f", {self.step}" if self.step else ""
        return (f"RateFit({self.cls}{'/' + self.impl if self.impl else ''}: R {self.rate / 1e9:.0f} GFLOP/s, "
                f"t0 {self.t0 * 1e6:.1f} us{step}, LOO median {self.loo_median:.0%} over {self.rows} kernels)")

    @property
    def step(self) -> str:
        """``x1.79 past 4.3 MiB input``: the step past a cache, and ``x2.05 on one thread up to
        384 KiB of weights or 64 channels``, those the fit has; else ''."""
        steps = [f"x{self.spill:.2f} past {self.spill_bytes / 2 ** 20:.1f} MiB input"] if self.spill_bytes else []
        if self.serial_bytes:
            steps.append(f"x{self.serial:.2f} on one thread up to {self.serial_bytes / 2 ** 10:.0f} KiB of weights "
                         f"or {SERIAL_N} channels")
        return "; ".join(steps)

    def serial_kernels(self, f: np.ndarray) -> np.ndarray | None:
        """Which kernels of features ``f`` this fit runs on one thread (:func:`_serial`)."""
        return _serial(f, self.serial_bytes)

    def log_times(self, f: np.ndarray, log_seconds: np.ndarray) -> np.ndarray:
        """Measured log seconds of kernels of features ``f`` with the step taken out: what the
        law and its neighbour correction are fitted to."""
        return _without_spill(f, log_seconds, self.spill_bytes, self.spill)

    @property
    def params(self) -> np.ndarray:
        """Log parameters as :func:`_terms` takes them (the serial factor last, if any)."""
        return np.log([getattr(self, n) for n in _NAMES if getattr(self, n) is not None]
                      + ([self.serial] if self.serial_bytes is not None else []))


def _loo(f: np.ndarray, log_t: np.ndarray, batch: bool, full: np.ndarray,
         serial: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out |log errors| of the plain fit and of the corrected one (each fit starting
    from the ``full`` one's parameters; ``serial``: the kernels on one thread, :func:`_terms`)."""
    plain, corrected = [], []
    coords = np.log(f)
    spread = np.maximum(coords.max(0) - coords.min(0), 1.0)
    for i in range(len(f)):
        keep = np.arange(len(f)) != i
        part = None if serial is None else serial[keep]
        p = _fit(f[keep], log_t[keep], batch, full, part)
        guess = _log_seconds(p, f[i:i + 1], None if serial is None else serial[i:i + 1])[0]
        resid = log_t[keep] - _log_seconds(p, f[keep], part)
        plain.append(guess - log_t[i])
        corrected.append(guess + _idw(coords[keep], resid, coords[i], spread) - log_t[i])
    return np.abs(plain), np.abs(corrected)


def fit_rates(table: Sequence[Sequence], spill_classes: Sequence[str] = SPILL_CLASSES,
              serial_classes: Sequence[str] = SERIAL_CLASSES) -> list[RateFit]:
    """One :class:`RateFit` per class and kind of kernel with :data:`MIN_ROWS` calibration
    kernels: of the forms with and without the batch factor, plain or corrected, with and
    without a serial factor (classes of ``serial_classes`` whose kernels show one,
    :func:`_serial_sizes`), the one with the least median leave-one-out error (up to
    ``2 (1 + SERIAL_SIZES) len(rows)`` fits)."""
    groups: dict[tuple[str, str], list] = {}
    for r in table:
        if r[0] not in NOT_FITTED and len(r) >= 11 and not r[9].endswith(UNPADDED):
            groups.setdefault((r[0], r[9]), []).append(r)
    fits = []
    for (cls, impl), rows in sorted(groups.items()):
        if len(rows) < MIN_ROWS:
            continue
        f, log_t = _features(rows), np.log([r[6] for r in rows])
        spill_bytes, spill = _spill(f, log_t) if cls in spill_classes else (None, 1.0)
        log_t = _without_spill(f, log_t, spill_bytes, spill)
        full = {(batch, None): _fit(f, log_t, batch) for batch in (False, True)}
        sizes = _serial_sizes(f, log_t, full[(False, None)]) if cls in serial_classes else []
        full |= {(batch, size): _fit(f, log_t, batch, serial=_serial(f, size)) for batch in (False, True)
                 for size in sizes}
        options = [(float(np.median(err)), batch, size, corrected, err) for (batch, size), p in full.items()
                   for corrected, err in zip((False, True), _loo(f, log_t, batch, p, _serial(f, size)))]
        _, batch, size, corrected, err = min(options, key=lambda o: o[0])
        err = np.abs(np.expm1(err))
        t0, rate, mh, kh, nh, ph, gh, bw, *rest = map(float, np.exp(full[(batch, size)]))
        fits.append(RateFit(cls, impl, t0, rate, mh, kh, nh, ph, gh, bw, rest[0] if batch else None, corrected,
                            len(rows), float(np.median(err)), float(np.mean(err <= 0.10)), float(np.mean(err <= 0.25)),
                            spill_bytes, spill, size, rest[-1] if size is not None else 1.0))
    return fits


class Rates:
    """A device's rates, from its calibration table and fits: :meth:`seconds` of a
    conv or dot kernel, :meth:`bandwidth` of a memory-bound one, :meth:`first_touch` of a
    fresh allocation."""

    def __init__(self, table: Sequence[Sequence], fits: Sequence[RateFit], class_rates: dict[str, float],
                 peak: float, bandwidth: float):
        self.table, self.class_rates, self.peak, self.default_bandwidth = table, class_rates, peak, bandwidth
        self.fits = {(f.cls, f.impl): f for f in fits}
        self._kinds = {(r[0], r[9]) for r in table if len(r) >= 11}  # (class, kind) the table has
        self._residuals: dict[tuple[str, str], tuple] = {}
        self._ranges: dict[tuple[str, str], tuple | None] = {}

    def __repr__(self) -> str:
        return f"Rates({len(self.fits)} fits, {len(self.table)} calibration rows, peak {self.peak / 1e9:.0f} GFLOP/s)"

    def _fit_for(self, cls: str, impl: str) -> RateFit | None:
        """The fit of this class and kind of kernel; where there is none, but the table has
        kernels of that kind, None (they are interpolated); else the class's largest fit."""
        if (cls, impl) in self.fits:
            return self.fits[(cls, impl)]
        if (cls, impl) in self._kinds:
            return None
        return max((f for f in self.fits.values() if f.cls == cls), key=lambda f: f.rows, default=None)

    def _kind(self, cls: str, impl: str) -> str:
        """The kind of kernel ``impl`` is priced as: an unpadded conv of a class the table has
        none of (:data:`jaxcost.perf.kernels.UNPADDED`) as a padded one."""
        return impl.removesuffix(UNPADDED) if (cls, impl) not in self._kinds else impl

    def seconds(self, cls: str, features: tuple[int, ...] | None, flops: float, impl: str = "") -> float:
        """Seconds of a ``cls`` kernel with :func:`kernel_features` ``features`` that does
        ``flops`` (XLA's count), run by an ``impl`` kernel: the time the fit of its class and
        kind of kernel gives its features, else ``flops`` at the rate interpolated among the
        calibration kernels of that kind (:func:`kernel_rate`). An unpadded conv
        (:data:`jaxcost.perf.kernels.UNPADDED`) of a class the table has none of is priced as a
        padded one.

        The fitted law prices the features, not ``flops``: XLA counts only the window taps
        that fall on the input, so a padded conv's ``flops`` are below ``2 M K N groups`` --
        0.82x for a 3x3 window on a 7x7 map, 0.17x for a 7x7 depthwise window on a 3x3 map --
        while the kernel takes the time its features say (ConvNeXt's 7x7 depthwise convs on
        6x6 and 3x3 maps ran 2.4x and 5x longer than ``flops`` at the law's rate)."""
        impl = self._kind(cls, impl)
        fit = self._fit_for(cls, impl) if features is not None else None
        if fit is None:
            return flops / kernel_rate(cls, features, self.table, self.class_rates, self.peak,
                                       POOLED if impl.endswith(LOOP) else NEIGHBOURS, impl)
        f = np.array([features], dtype=float)
        log_t = (_log_seconds(fit.params, f, fit.serial_kernels(f))[0]
                 + math.log(fit.spill) * _spilled(f, fit.spill_bytes)[0])
        if fit.corrected:
            coords, resid, spread = self._residuals_of(fit)
            log_t += _idw(coords, resid, np.log(f[0]), spread)
        return math.exp(log_t)

    def outside(self, cls: str, features: tuple[int, ...] | None, impl: str = "") -> tuple[str, ...]:
        """The dimensions (:data:`FEATURES`) in which a ``cls`` kernel of ``features`` run by an
        ``impl`` kernel lies outside the calibration kernels it is priced from (:meth:`seconds`:
        those of its fit's kind, else of its own kind, else of its class): there its price
        extrapolates. On random kernels up to 3x beyond the calibrated flops it priced grouped
        convs at 0.47x (before the step past a cache, :data:`SPILL_CLASSES`) and erred 34 % (median)
        on 1x1 convs (``benchmarks/results/rate_law_validation.md``); on held-out models' profiled
        kernels, those outside were priced at 0.78-1.00x of their measured time, those inside at
        0.89-1.07x (``predict_heldout_run5.md``, ``_run6.md``, ``_run7.md``).
        () where the table has no such kernels."""
        if features is None:
            return ()
        if (cls, impl) not in self._ranges:
            kind = self._kind(cls, impl)
            fit = self._fit_for(cls, kind)
            rows = [r for r in self.table if r[0] == cls and len(r) >= 11]
            rows = [r for r in rows if r[9] == (fit.impl if fit is not None else kind)] or rows
            points = np.array([_with_flops(r[1:4] + r[7:9] + r[10:11]) for r in rows], dtype=float)
            self._ranges[(cls, impl)] = (points.min(0), points.max(0)) if len(points) else None
        bounds = self._ranges[(cls, impl)]
        if bounds is None:
            return ()
        return tuple(name for name, x, lo, hi in zip(FEATURES, _with_flops(features), *bounds) if not lo <= x <= hi)

    def _residuals_of(self, fit: RateFit):
        key = (fit.cls, fit.impl)
        if key not in self._residuals:
            rows = [r for r in self.table if r[0] == fit.cls and len(r) >= 11 and r[9] == fit.impl]
            f = _features(rows)
            coords = np.log(f)
            resid = fit.log_times(f, np.log([r[6] for r in rows])) - _log_seconds(fit.params, f, fit.serial_kernels(f))
            self._residuals[key] = (coords, resid, np.maximum(coords.max(0) - coords.min(0), 1.0))
        return self._residuals[key]

    def bandwidth(self, nbytes: float, kind: str = "") -> float:
        """Bytes/s of a memory-bound kernel moving ``nbytes`` (:func:`memory_bandwidth`), run as
        ``kind`` (``kernels.LOOP``: a loop's trip) where the table has such memory rows."""
        return memory_bandwidth(nbytes, self.table, self.default_bandwidth, kind if self.has_kind("memory", kind) else "")

    def has_kind(self, cls: str, kind: str) -> bool:
        """Whether the table has ``cls`` kernels of ``kind`` (:func:`kernel_impl`, ``kernels.LOOP``)."""
        return (cls, kind) in self._kinds

    def first_touch(self, nbytes: float) -> float:
        return first_touch_seconds(nbytes, self.table)

    def chain_bandwidth(self) -> float | None:
        """Bytes/s at which a chain of convs run as one kernel reads its weights row by row
        (:func:`jaxcost.perf.kernels.streamed_weights`): the median of the ``chain`` calibration
        kernels' (:data:`jaxcost.perf.calibrate.CHAINS`); None without them."""
        rows = [r[5] / r[6] for r in self.table if r[0] == "chain" and r[6]]
        return float(np.median(rows)) if rows else None


def _with_flops(features) -> tuple:
    """:func:`kernel_features` and their flops, ``2 M K N groups``."""
    m, k, n, _, groups, _ = features
    return (*features, 2.0 * m * k * n * groups)


def kernel_rate(cls: str, features: tuple[int, ...] | None, table: Sequence[Sequence],
                class_rates: dict[str, float], peak: float, neighbours: int = NEIGHBOURS, impl: str = "") -> float:
    """FLOP/s of a ``cls`` kernel with :func:`kernel_features` ``features``, interpolated
    from the calibration kernels of its class -- those run by the same kind of kernel
    (:func:`kernel_impl`) when the table has any: the geometric mean of the rates of the
    ``neighbours`` nearest in log feature space (each dimension scaled by its spread in the
    table), weighted by inverse distance; an exact match is its own rate. Without a table,
    the class rate, else ``peak``. Rows as in :mod:`jaxcost.perf.calibrate` (rows measured
    before taps, groups or pixels were recorded compare the features they have)."""
    rows = [r for r in table if r[0] == cls] if features is not None else []
    if not rows:
        return class_rates.get(cls, peak)
    rows = [r for r in rows if len(r) > 9 and r[9] == impl] or rows
    dims = min(len(features), *(3 + len(r[7:9]) + len(r[10:11]) for r in rows))
    point = np.log(np.maximum(features[:dims], 1))
    coords = np.log(np.maximum([[*r[1:4], *r[7:9], *r[10:11]][:dims] for r in rows], 1))
    spread = np.maximum(coords.max(0) - coords.min(0), 1.0)
    rates = np.array([r[4] for r in rows], dtype=float)
    near, d = _nearest(coords, point, spread, rates, neighbours)
    if d[0] < 1e-9:
        return rows[near[0]][4]  # an exact match: its own rate
    return math.exp(_idw(coords[near], np.log(rates[near]), point, spread, neighbours))


def memory_bandwidth(nbytes: float, table: Sequence[Sequence], default: float, kind: str = "") -> float:
    """Effective bytes/s of a memory-bound kernel moving ``nbytes``: interpolated from the
    ``memory`` calibration kernels of similar size and of ``kind`` (alone: ""; a loop's trips:
    ``kernels.LOOP``) (:func:`kernel_rate`), else ``default``."""
    if nbytes <= 0:
        return default
    return kernel_rate("memory", (int(nbytes), 1, 1, 1, 1), table, {}, default, neighbours=2, impl=kind)


def first_touch_seconds(nbytes: float, table: Sequence[Sequence]) -> float:
    """Seconds to page in a fresh allocation of ``nbytes``: the measured cost per byte of the
    ``fault`` rows, linear in log size between the two sizes around ``nbytes`` (the smallest's
    below it, the largest's above); 0 without fault rows (other devices: allocators that
    keep their memory)."""
    rows = sorted((r[1], r[6] / r[1]) for r in table if r[0] == "fault")
    if not rows or nbytes <= 0:
        return 0.0
    if nbytes <= rows[0][0]:
        return nbytes * rows[0][1]
    for (s0, c0), (s1, c1) in itertools.pairwise(rows):
        if nbytes <= s1:
            a = math.log(nbytes / s0) / math.log(s1 / s0)
            return nbytes * (c0 + a * (c1 - c0))
    return nbytes * rows[-1][1]


def class_rates(table: Sequence[Sequence]) -> dict[str, float]:
    """Each class's time-weighted rate over a calibration table."""
    flops: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for cls, *_, f, s in (r[:7] for r in table if r[0] not in ("memory", "fault", "chain")):
        flops[cls] = flops.get(cls, 0.0) + f
        seconds[cls] = seconds.get(cls, 0.0) + s
    return {cls: flops[cls] / seconds[cls] for cls in flops if seconds[cls] > 0}
