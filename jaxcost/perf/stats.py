"""Summary statistics of repeated timings.

Quartiles use linear interpolation between order statistics (numpy's default,
``method="linear"``), so the median of ``[1, 2, 3, 4]`` is 2.5 and its
quartiles are 1.75 and 3.25.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import jax


def _quantile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of an already sorted, non-empty sequence."""
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    frac = pos - lo
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * frac


@dataclasses.dataclass(frozen=True)
class TimingStats:
    """Statistics of a list of durations in seconds.

    ``cv`` is the coefficient of variation: population standard deviation
    divided by the mean (0 when the mean is 0).
    """

    n: int
    min: float
    median: float
    mean: float
    q1: float
    q3: float
    iqr: float
    cv: float

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> TimingStats:
        xs = sorted(float(s) for s in samples)
        if not xs:
            raise ValueError("TimingStats.from_samples needs at least one sample, got none")
        n = len(xs)
        mean = sum(xs) / n
        var = sum((x - mean) ** 2 for x in xs) / n
        q1, q3 = _quantile(xs, 0.25), _quantile(xs, 0.75)
        return cls(
            n=n,
            min=xs[0],
            median=_quantile(xs, 0.5),
            mean=mean,
            q1=q1,
            q3=q3,
            iqr=q3 - q1,
            cv=math.sqrt(var) / mean if mean else 0.0,
        )

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def time_runs(fn, repeats: int, budget_s: float = 0.0, max_repeats: int = 200, warmup: bool = True) -> list[float]:
    """Seconds of at least ``repeats`` timed calls of ``fn()`` (blocked until ready), after one
    warm-up call (which compiles; ``warmup=False``: none), going on while the calls so far took
    under ``budget_s`` (at most ``max_repeats``): a kernel of microseconds gets hundreds of
    tries, one of 20 ms a few."""
    if warmup:
        jax.block_until_ready(fn())
    runs: list[float] = []
    while len(runs) < repeats or (sum(runs) < budget_s and len(runs) < max_repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t)
    return runs


def best_time(fn, repeats: int, budget_s: float = 0.0, max_repeats: int = 200) -> float:
    """The fastest of :func:`time_runs`: the least noisy estimate of a kernel's time."""
    return min(time_runs(fn, repeats, budget_s, max_repeats))


def median_over_passes(fns, passes: int, repeats: int, budget_s: float, long_s: float, rounds: int = 1) -> list[float]:
    """Each of ``fns``' median run, the lowest over ``passes`` passes through all of them (so
    that a busy moment of the machine does not spoil one's every run). In the first pass each
    gets a warm-up run, timed; one slower than ``long_s`` is then run once in each pass, the
    others :func:`time_runs` (``repeats``, ``budget_s``). With ``rounds`` > 1 the passes are
    repeated that many times and each's figure is the geometric mean of the rounds' lowest
    medians: the same estimate, steadier (on a 2-core VM the machine's speed drifts by
    several percent from one minute to the next)."""
    logs = [0.0] * len(fns)
    typical: list[float] = []  # each one's time so far: its warm-up run's, then its lowest median
    for r in range(rounds):
        best = [math.inf] * len(fns)
        for p in range(passes):
            for i, fn in enumerate(fns):
                if r == p == 0:
                    typical.append(time_runs(fn, 1, warmup=False)[0])
                runs = time_runs(fn, 1 if typical[i] > long_s else repeats, budget_s, warmup=False)
                best[i] = min(best[i], _quantile(sorted(runs), 0.5))
                typical[i] = best[i]
        logs = [acc + math.log(max(b, 1e-12)) / rounds for acc, b in zip(logs, best)]
    return [math.exp(x) for x in logs]
