"""Roofline arithmetic on hand-made costs."""

import pytest

from jaxcost.bench import DevicePeaks, achieved, hfu, mfu, plot_roofline, roofline

PEAKS = DevicePeaks("toy", "cpu", {"float32": 100e9, "bfloat16": 400e9}, 10e9, "published")


def test_points_and_total():
    r = roofline([("mm", 1e9, 1e7), ("add", 1e6, 1.2e8)], PEAKS)
    mm, add = r.points
    assert r.ridge_intensity == 10.0
    assert mm.intensity == 100.0 and mm.bound == "compute" and mm.time_s == pytest.approx(0.01)
    assert add.bound == "memory" and add.time_s == pytest.approx(0.012)
    assert r.predicted_s == pytest.approx(0.022)
    assert r.total_flops == 1e9 + 1e6 and r.total_bytes == 1e7 + 1.2e8


def test_launch_overhead_and_dtype():
    r = roofline([("a", 4e9, 1e6), ("b", 0.0, 1e9)], PEAKS, dtype="bfloat16",
                 launch_overhead_s=1e-5)
    assert r.points[0].time_s == pytest.approx(0.01 + 1e-5)
    assert r.points[1].time_s == pytest.approx(0.1 + 1e-5) and r.points[1].bound == "memory"
    assert r.predicted_s == pytest.approx(0.11 + 2e-5)
    assert r.ridge_intensity == 40.0


def test_ridge_is_tie_compute():
    (p,) = roofline([("ridge", 1e9, 1e8)], PEAKS).points
    assert p.intensity == 10.0 and p.bound == "compute" and p.time_s == pytest.approx(0.01)


def test_zero_bytes_and_unknown_dtype():
    (p,) = roofline([("k", 1e9, 0)], PEAKS).points
    assert p.intensity == float("inf") and p.bound == "compute"
    with pytest.raises(KeyError, match="float16"):
        roofline([("k", 1, 1)], PEAKS, dtype="float16")


def test_utilization():
    assert achieved(5e9, 0.1) == 5e10
    assert mfu(5e9, 0.1, PEAKS) == pytest.approx(0.5)
    assert hfu(6e9, 0.1, PEAKS) == pytest.approx(0.6)
    assert mfu(5e9, 0.1, PEAKS, dtype="bfloat16") == pytest.approx(0.125)
    with pytest.raises(ValueError):
        achieved(1.0, 0.0)


def test_plot(tmp_path):
    r = roofline([("mm", 1e9, 1e7), ("add", 1e6, 1.2e8), ("inf", 1e6, 0)], PEAKS)
    path = tmp_path / "roof.png"
    fig = plot_roofline(r, path=str(path), measured={"mm": 0.02})
    assert path.stat().st_size > 1000
    assert fig.axes[0].get_xscale() == "log"
    fig2 = plot_roofline(r, measured=[("add", 1e6, 0.05)])
    assert fig2 is not None
