"""The machine's drift: does the calibration still describe this machine?

A calibration (``jaxcost peaks``) is timed once; a shared machine's speed moves afterwards (a
2-core cloud VM ran the same synthetic programs 0.91x and 1.21x their calibration times in two
held-out runs hours apart, ``benchmarks/results/predict_heldout_run7.md`` and ``_run8.md``). A
re-check times the calibration's synthetic programs again (:mod:`jaxcost.perf.programs`: random
networks, no model's layers; ~6 s on a 2-core CPU, compiles included) exactly as the calibration
timed them, and compares::

    ratio_i = time now_i / time at calibration_i          each synthetic program i
    drift   = central(ratio_i)                            (geometric mean of the middle half)

It is a report, not a correction. Scaling each prediction by the re-check made just before the
models ran was validated out of sample in two held-out runs: in run 9
(``benchmarks/results/predict_heldout_run9.md``, 106 model-batches) it made the predictions
worse, 43 % -> 25 % within ±10 %, 82 % -> 59 % within ±25 % -- six re-checks read 0.91-1.35x (sd of
the log 14 %) while the models' own pass times moved 1.01-1.13x: a few seconds of timing carry the
machine's minute-to-minute noise, larger than the drift they measure; in run 10 (``_run10.md``, 12
model-batches, the machine 1.10-1.32x slower throughout) it helped, 42 % -> 50 % and 75 % -> 92 %.
Pooled, 43 % -> 27 % within ±10 %. What a re-check does tell is a calibration gone stale: a drift
beyond :data:`STALE` (twice that noise) says recalibrate (``jaxcost peaks --refresh``).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Sequence

import jax

from jaxcost.perf.programs import Prepared, central, prepare_programs

# A drift outside these bounds is more than a re-check's own noise (2 sd of run 9's six re-checks):
# the machine has changed since the calibration.
STALE = (0.75, 1.33)


@dataclasses.dataclass(frozen=True)
class Drift:
    """``factor``: the machine's time now over its time at calibration (> 1: slower now);
    ``ratios``: each synthetic program's; ``checked_at``: when (UTC, ISO 8601)."""

    factor: float
    ratios: tuple[float, ...]
    checked_at: str

    def __repr__(self) -> str:
        spread = f", programs {min(self.ratios):.2f}-{max(self.ratios):.2f}x" if self.ratios else ""
        return f"Drift({self.factor:.3f}x the calibration's times, {len(self.ratios)} programs{spread}, {self.checked_at})"

    @property
    def stale(self) -> bool:
        """Whether the drift is beyond a re-check's own noise (:data:`STALE`)."""
        return not STALE[0] <= self.factor <= STALE[1]

    @property
    def advice(self) -> str:
        """One line: what the drift means for the calibration's predictions."""
        if self.stale:
            return (f"the machine runs {self.factor:.2f}x its calibration's times, beyond a re-check's own noise "
                    f"({STALE[0]}-{STALE[1]}x): recalibrate (jaxcost peaks --refresh)")
        return (f"within a re-check's own noise ({STALE[0]}-{STALE[1]}x): the calibration still describes the "
                "machine; predictions are not scaled by it (see jaxcost.perf.drift)")

    @classmethod
    def from_times(cls, seconds: Sequence[float], program_rows: Sequence[Sequence[float]],
                   checked_at: str | None = None) -> Drift:
        """From the programs' times now (``seconds``, in the order of ``program_rows``, the
        calibration's ``[seed, measured_s, ...]`` rows): :func:`central` of the ratios."""
        if len(seconds) != len(program_rows) or not seconds:
            raise ValueError(f"need one time per calibration program ({len(program_rows)}), got {len(seconds)}")
        ratios = tuple(now / row[1] for now, row in zip(seconds, program_rows))
        if not all(math.isfinite(r) and r > 0 for r in ratios):
            raise ValueError(f"program time ratios must be positive and finite, got {ratios}")
        when = checked_at or datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return cls(central(ratios), ratios, when)


def measure_drift(peaks, programs: Sequence[Prepared] | None = None) -> Drift:
    """Times the synthetic programs behind ``peaks``' in-program factor again, as the
    calibration timed them (each one's median run, the lowest of two passes), and returns the
    :class:`Drift`. ``programs``: already compiled (:func:`prepare_programs`), else compiled
    here. Raises ValueError for peaks without synthetic programs (published peaks, or a
    calibration of another version: their seeds would differ)."""
    from jaxcost.perf.calibrate import BUDGET_S, CALIBRATION_VERSION, LONG_S, REPEATS
    from jaxcost.perf.stats import median_over_passes

    if not peaks.program_rows or peaks.calibration != CALIBRATION_VERSION:
        raise ValueError(f"no drift re-check for {peaks.device_kind}: its peaks ({peaks.source}, calibration "
                         f"{peaks.calibration}) have no synthetic programs of this version; run jaxcost peaks --refresh")
    if programs is None:
        programs = prepare_programs(jax.devices(peaks.platform)[0])
    by_seed = {p.seed: p for p in programs}
    runs = [by_seed[int(row[0])].run for row in peaks.program_rows]
    return Drift.from_times(median_over_passes(runs, 2, REPEATS, BUDGET_S, LONG_S), peaks.program_rows)
