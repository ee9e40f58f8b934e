"""The machine's drift since its calibration: a re-check of the synthetic programs, reported."""

import shutil

import pytest
from conftest import FIXTURE_PEAKS

from jaxcost.cli.main import main
from jaxcost.perf import DevicePeaks, get_peaks
from jaxcost.perf.drift import STALE, Drift, measure_drift


def test_drift_is_the_central_ratio_of_the_programs_times():
    rows = [[i, t, 0.0, 0.0, 1] for i, t in enumerate((0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08))]
    # six programs 1.2x slower, one at 0.5x and one at 9x (a corner of the machine): they do not move it
    now = [t * f for (_, t, *_), f in zip(rows, (1.2, 1.2, 0.5, 1.2, 9.0, 1.2, 1.2, 1.2))]
    d = Drift.from_times(now, rows, checked_at="2026-12-06T16:00:00+00:00")
    assert d.factor == pytest.approx(1.2, rel=1e-12)
    assert d.ratios[2] == pytest.approx(0.5) and len(d.ratios) == 8
    assert repr(d) == "Drift(1.200x the calibration's times, 8 programs, programs 0.50-9.00x, 2026-12-06T16:00:00+00:00)"
    assert not d.stale and d.advice.startswith("within a re-check's own noise (0.75-1.33x)")
    with pytest.raises(ValueError, match="one time per calibration program"):
        Drift.from_times(now[:3], rows)
    with pytest.raises(ValueError, match="positive and finite"):
        Drift.from_times([0.0] * 8, rows)


def test_a_drift_beyond_a_rechecks_own_noise_says_recalibrate():
    assert STALE == (0.75, 1.33)
    for factor, stale in ((0.74, True), (0.75, False), (1.33, False), (1.34, True), (2.0, True)):
        d = Drift(factor, (factor,), "now")
        assert d.stale is stale, factor
        assert ("recalibrate (jaxcost peaks --refresh)" in d.advice) is stale
    assert Drift(1.5, (1.5,), "now").advice.startswith("the machine runs 1.50x its calibration's times")


def test_a_recheck_times_the_calibrations_programs_and_changes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JAXCOST_CACHE_DIR", str(tmp_path))
    shutil.copy(FIXTURE_PEAKS, tmp_path / "peaks.json")
    before = (tmp_path / "peaks.json").read_text()
    peaks = get_peaks("cpu", measure=False)
    d = measure_drift(peaks)
    # every program timed again: a ratio each, and the factor their central value (a real
    # machine: within a factor of 3 of the VM that made the fixture)
    assert len(d.ratios) == len(peaks.program_rows) == 16 and 1 / 3 < d.factor < 3
    assert min(d.ratios) <= d.factor <= max(d.ratios)
    # the CLI re-checks, says what it means, and leaves the calibration as it was
    assert main(["peaks", "--recheck"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Re-check (jaxcost.perf.drift): Drift(" in out and "16 programs" in out
    assert ("recalibrate" in out) or ("still describes the machine" in out)
    assert (tmp_path / "peaks.json").read_text() == before


def test_no_recheck_without_the_calibrations_programs():
    published = DevicePeaks("toy", "gpu", {"float32": 1e12}, 1e12, "published")
    with pytest.raises(ValueError, match="no drift re-check for toy: its peaks \\(published, calibration 0\\)"):
        measure_drift(published)
