"""``jaxcost.plot_layers`` (``a.plot()``) and ``jaxcost.plot_roofline``, drawn with Agg."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import matplotlib
import pytest
from flax import nnx

import jaxcost
from jaxcost.perf import DevicePeaks

matplotlib.use("Agg")


class Net(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
        self.fc1 = nnx.Linear(8, 32, rngs=rngs)
        self.fc2 = nnx.Linear(32, 4, rngs=rngs)

    def __call__(self, x):
        return self.fc2(jax.nn.relu(self.fc1(jax.nn.relu(self.conv(x)).mean((1, 2)))))


X = jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32)


@pytest.fixture(scope="module")
def net():
    return jaxcost.analyze(nnx.eval_shape(lambda: Net(nnx.Rngs(0))), X, theory=False)


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def test_flops_bars_heaviest_at_the_top(net):
    import matplotlib.pyplot as plt

    ax = jaxcost.plot_layers(net, top=3)
    heaviest = sorted((r for r in net.layers if r.flops > 0), key=lambda r: r.flops)[-3:]
    assert _labels(ax) == [r.path or "(top level)" for r in heaviest] and _labels(ax)[-1] == "conv"
    assert [p.get_width() for p in ax.patches] == [r.flops for r in heaviest]
    conv = net.layer("conv")
    # 2 flops per valid tap (per row: 8 outputs x 3 taps, 2 of them on the padding), the bias add
    assert ax.patches[-1].get_width() == conv.flops == 2 * 2 * (8 * 3 - 2) ** 2 * 3 * 8 + 2 * 8 * 8 * 8
    assert ax.get_xlabel() == "XLA flops" and ax.get_title() == "Net: heaviest layers by flops"
    assert ax.get_legend() is None  # one direction: no legend
    everything = jaxcost.plot_layers(net, top=100)
    assert len(everything.patches) == sum(r.flops > 0 for r in net.layers)
    plt.close("all")


def test_directions_are_coloured_and_named():
    import matplotlib.pyplot as plt

    def grad(w, x):
        return jax.grad(lambda w: jnp.sum(jnp.tanh(x @ w)))(w)

    a = jaxcost.analyze(grad, jax.ShapeDtypeStruct((16, 16), jnp.float32), jax.ShapeDtypeStruct((8, 16), jnp.float32),
                        theory=False)
    ax = jaxcost.plot_layers(a)
    assert set(_labels(ax)) == {"(top level)", "(top level) [backward]"}
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"forward", "backward"}
    assert len({p.get_facecolor() for p in ax.patches}) == 2
    plt.close("all")


def test_bytes_fused_next_to_unfused_on_a_given_axes(net):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    assert net.plot("bytes", top=2, ax=ax) is ax
    rows = sorted(net.layers, key=lambda r: max(r.bytes_accessed, r.bytes_unoptimized))[-2:]
    unfused, fused = ax.patches[:2], ax.patches[2:]
    assert [p.get_width() for p in unfused] == [r.bytes_unoptimized for r in rows]
    assert [p.get_width() for p in fused] == [r.bytes_accessed for r in rows]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["unfused (lowered)", "fused (compiled)"]
    lowered = jaxcost.analyze(nnx.eval_shape(lambda: Net(nnx.Rngs(0))), X, theory=False, compile=False)
    ax = jaxcost.plot_layers(lowered, "bytes", top=2)
    assert len(ax.patches) == 2 and "not compiled" in ax.get_xlabel()
    plt.close("all")


def test_errors_name_the_fix(net, monkeypatch):
    with pytest.raises(ValueError, match="what must be 'flops' or 'bytes', not 'time'"):
        jaxcost.plot_layers(net, "time")
    with pytest.raises(ValueError, match="top must be >= 1"):
        jaxcost.plot_layers(net, top=0)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # as if matplotlib were not installed
    with pytest.raises(ImportError, match="pip install matplotlib"):
        jaxcost.plot_layers(net)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        jaxcost.plot_roofline(net)


def test_roofline_of_an_analysis(net, tmp_path):
    peaks = DevicePeaks("toy", "cpu", {"float32": 100e9}, 10e9, "published")
    fig = jaxcost.plot_roofline(net, path=str(tmp_path / "roof.png"), peaks=peaks, label_top=1)
    assert (tmp_path / "roof.png").stat().st_size > 1000
    slowest = max(jaxcost.program_roofline(net, peaks).points, key=lambda p: p.time_s)
    assert [t.get_text() for t in fig.axes[0].texts] == [slowest.name]
    assert fig.axes[0].get_title() == "Roofline toy (float32)"
