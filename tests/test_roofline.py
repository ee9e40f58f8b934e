"""Roofline arithmetic on hand-made costs."""

import jax
import jax.numpy as jnp
import pytest

import jaxcost
from jaxcost.compiler.ops import body_ops
from jaxcost.perf import DevicePeaks, achieved, hfu, mfu, plot_roofline, roofline
from jaxcost.perf.kernels import class_flops

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
    fig2 = plot_roofline(r, measured=[("add", 1e6, 0.05)], label_top=1)
    assert [t.get_text() for t in fig2.axes[0].texts] == ["add"]  # the slowest kernel only


def test_plot_draws_kernels_at_their_predicted_rate():
    """A kernel whose class runs at 1 % of the peak sits two decades under the roof."""
    r = roofline([("dw", 1e9, 1e6, 1e9 / 1e9)], PEAKS)  # compute_s = 1 s: 1 GFLOP/s
    fig = plot_roofline(r)
    (xy,) = [c.get_offsets()[0] for c in fig.axes[0].collections if len(c.get_offsets())]
    assert xy[0] == pytest.approx(1000.0) and xy[1] == pytest.approx(1e9)


# --- kernel classes ------------------------------------------------------------------


def _conv(x, w, groups=1, padding="VALID"):
    return jax.lax.conv_general_dilated(x, w, (1, 1), padding, feature_group_count=groups,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def five_kernels(x, w3, w1, wdw, wg, wd):
    """A dense 3x3, a 1x1, a depthwise 3x3 and a grouped 1x1 conv (VALID: no padding
    taps), and a matmul: every class once."""
    y = _conv(x, w3)                   # (2, 6, 6, 16)
    y = _conv(y, w1)                   # (2, 6, 6, 16)
    y = _conv(y, wdw, groups=16)       # (2, 4, 4, 16)
    y = _conv(y, wg, groups=4)         # (2, 4, 4, 16)
    return y.reshape(2, -1) @ wd       # (2, 256) @ (256, 10)


FIVE = [jax.ShapeDtypeStruct(s, jnp.float32) for s in
        [(2, 8, 8, 8), (3, 3, 8, 16), (1, 1, 16, 16), (3, 3, 1, 16), (1, 1, 4, 16), (256, 10)]]
EXPECTED_CLASS_FLOPS = {
    "conv": 2 * 2 * 6 * 6 * 16 * 9 * 8,
    "depthwise": 2 * 2 * 4 * 4 * 16 * 9,
    "grouped": 2 * 2 * 4 * 4 * 16 * 4,
    # XLA:CPU rewrites this small 1x1 conv into a dot: it is priced as one
    "dot": 2 * 2 * 6 * 6 * 16 * 16 + 2 * 2 * 256 * 10,
}


def test_class_flops_split_every_op_exactly():
    a = jaxcost.analyze(five_kernels, *FIVE, theory=False)
    totals: dict[str, float] = {}
    for op in a.ops:
        split = class_flops(op)
        assert sum(split.values()) == max(op.flops, 0) + op.transcendentals
        for cls, f in split.items():
            totals[cls] = totals.get(cls, 0) + f
    assert {k: v for k, v in totals.items() if k != "other"} == EXPECTED_CLASS_FLOPS


def test_program_roofline_uses_class_rates_and_overhead():
    a = jaxcost.analyze(five_kernels, *FIVE, theory=False)
    rates = {"conv": 50e9, "conv1x1": 25e9, "grouped": 5e9, "depthwise": 1e9}
    peaks = DevicePeaks("toy", "cpu", {"float32": 100e9}, 10e9, "measured", "", rates, 2e-6)
    r = jaxcost.program_roofline(a, peaks)
    expected = 0.0
    for op in a.ops:
        compute = sum(f / rates.get(c, 100e9) for c, f in class_flops(op).items())
        expected += max(compute, op.bytes_accessed / 10e9) + 2e-6
    assert r.predicted_s == pytest.approx(expected, rel=1e-12)
    assert r.launch_overhead_s == 2e-6
    # without class rates (published peaks): flops / peak, no overhead on CPU
    plain = jaxcost.program_roofline(a, PEAKS)
    assert plain.predicted_s == pytest.approx(
        sum(max((max(op.flops, 0) + op.transcendentals) / 100e9, op.bytes_accessed / 10e9)
            for op in a.ops), rel=1e-12)


def test_the_critical_path_runs_independent_kernels_alongside():
    """Two independent matmuls feeding one elementwise kernel: the sum prices them one after
    the other, the critical path one matmul then the elementwise kernel."""
    def f(x, w1, w2):
        return jnp.tanh(x @ w1) + jnp.sin(x @ w2)

    S = jax.ShapeDtypeStruct
    a = jaxcost.analyze(f, S((256, 512), jnp.float32), S((512, 512), jnp.float32), S((512, 512), jnp.float32),
                        theory=False)
    r = jaxcost.program_roofline(a, PEAKS)
    (m1, m2), (add,) = [[p for p in r.points if (p.flops > 1e8) == big] for big in (True, False)]
    assert m1.time_s == m2.time_s == pytest.approx(2 * 256 * 512 * 512 / 100e9)
    assert r.predicted_s == pytest.approx(m1.time_s + m2.time_s + add.time_s, rel=1e-12)
    assert r.critical_path_s == pytest.approx(m1.time_s + add.time_s, rel=1e-12)
    assert "(critical path 1.499e-03 s)" in repr(r)
    # a chain has no slack: the path is the sum
    chain = jaxcost.analyze(lambda x, w: jnp.tanh(jnp.tanh(x @ w) @ w), S((256, 512), jnp.float32),
                            S((512, 512), jnp.float32), theory=False)
    c = jaxcost.program_roofline(chain, PEAKS)
    assert c.critical_path_s == pytest.approx(c.predicted_s, rel=1e-12)


def test_conv_class_of_parsed_instructions():
    from jaxcost.compiler.hlo import parse_module
    from jaxcost.perf.kernels import conv_class

    text = """HloModule m

ENTRY e {
  x = f32[8,28,28,96]{3,2,1,0} parameter(0)
  w1 = f32[1,1,96,64]{3,2,1,0} parameter(1)
  wg = f32[1,1,32,96]{3,2,1,0} parameter(2)
  wd = f32[3,3,1,96]{3,2,1,0} parameter(3)
  w3 = f32[3,1,96,96]{3,2,1,0} parameter(4)
  a = f32[8,28,28,64]{3,2,1,0} convolution(x, w1), window={size=1x1}, dim_labels=b01f_01io->b01f
  b = f32[8,28,28,96]{3,2,1,0} convolution(x, wg), window={size=1x1}, dim_labels=b01f_01io->b01f, feature_group_count=3
  c = f32[8,28,28,96]{3,2,1,0} convolution(x, wd), window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f, feature_group_count=96
  d = f32[8,28,28,96]{3,2,1,0} convolution(x, w3), window={size=3x1 pad=1_1x0_0}, dim_labels=b01f_01io->b01f
  ROOT t = (f32[8,28,28,64]{3,2,1,0}, f32[8,28,28,96]{3,2,1,0}, f32[8,28,28,96]{3,2,1,0}, f32[8,28,28,96]{3,2,1,0}) tuple(a, b, c, d)
}
"""
    convs = [i for i in parse_module(text).entry.instructions if i.opcode == "convolution"]
    assert [conv_class(i) for i in convs] == ["conv1x1", "grouped", "depthwise", "conv"]


def test_program_roofline_runs_loop_bodies_trip_count_times():
    def rnn(x, w):
        def step(h, _):
            return jnp.tanh(h @ w + x), None

        return jax.lax.scan(step, x, None, length=10)[0]

    s = jax.ShapeDtypeStruct((8, 64), jnp.float32)
    a = jaxcost.analyze(rnn, s, jax.ShapeDtypeStruct((64, 64), jnp.float32), theory=False)
    peaks = DevicePeaks("toy", "cpu", {"float32": 100e9}, 10e9, "measured", "", {}, 1e-6)
    r = jaxcost.program_roofline(a, peaks)
    (loop,) = [op for op in a.ops if op.opcode == "while"]
    (point,) = [p for p in r.points if p.name == loop.name]
    body = [op for op in body_ops(loop) if op.opcode not in ("tuple",)]
    assert len(body) == sum(i.opcode not in ("parameter", "constant", "get-tuple-element", "tuple", "bitcast")
                            for i in loop.instruction.called_by("body").instructions)
    assert point.flops == 10 * (loop.flops + loop.transcendentals)
    assert point.bytes == 10 * loop.bytes_accessed
    # each kernel of the body at its own roof, one after another, every trip; each launched every trip
    assert point.time_s == pytest.approx(
        10 * sum(max((op.flops + op.transcendentals) / 100e9, op.bytes_accessed / 10e9) for op in body)
        + 10 * len(body) * 1e-6)
    # ... which is at least the body priced as one kernel
    assert point.time_s >= 10 * max((loop.flops + loop.transcendentals) / 100e9, loop.bytes_accessed / 10e9)


CHAIN_HLO = """HloModule m

%chain (p0: f32[1,7,7,64], p1: f32[3,3,64,64], p2: f32[3,3,64,64], p3: f32[1,1,64,64]) -> f32[1,64] {
  %p0 = f32[1,7,7,64]{3,2,1,0} parameter(0)
  %p1 = f32[3,3,64,64]{3,2,1,0} parameter(1)
  %p2 = f32[3,3,64,64]{3,2,1,0} parameter(2)
  %p3 = f32[1,1,64,64]{3,2,1,0} parameter(3)
  %a = f32[1,7,7,64]{3,2,1,0} convolution(%p0, %p1), window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f
  %side = f32[1,7,7,64]{3,2,1,0} convolution(%p0, %p3), window={size=1x1}, dim_labels=b01f_01io->b01f
  %z = f32[] constant(0)
  %zb = f32[1,7,7,64]{3,2,1,0} broadcast(%z), dimensions={}
  %r = f32[1,7,7,64]{3,2,1,0} maximum(%a, %zb)
  %b = f32[1,7,7,64]{3,2,1,0} convolution(%r, %p2), window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f
  %s = f32[1,7,7,64]{3,2,1,0} add(%b, %side)
  ROOT %m = f32[1,64]{1,0} reduce(%s, %z), dimensions={1,2}, to_apply=%sum
}

%sum (x: f32[], y: f32[]) -> f32[] {
  %x = f32[] parameter(0)
  %y = f32[] parameter(1)
  ROOT %add = f32[] add(%x, %y)
}

ENTRY e {
  %x = f32[1,7,7,64]{3,2,1,0} parameter(0)
  %w1 = f32[3,3,64,64]{3,2,1,0} parameter(1)
  %w2 = f32[3,3,64,64]{3,2,1,0} parameter(2)
  %w3 = f32[1,1,64,64]{3,2,1,0} parameter(3)
  ROOT %f = f32[1,64]{1,0} fusion(%x, %w1, %w2, %w3), kind=kCustom, calls=%chain
}
"""


def test_chained_matmuls_counts_matmuls_fed_by_another_in_the_kernel():
    from jaxcost.compiler.hlo import parse_module
    from jaxcost.perf.kernels import chained_matmuls

    entry = parse_module(CHAIN_HLO).entry
    fusion = next(i for i in entry.instructions if i.opcode == "fusion")
    # b takes a's output through the ReLU; the 1x1 side conv reads the input: one of three is chained
    assert chained_matmuls(fusion) == 1
    assert chained_matmuls(next(i for i in entry.instructions if i.opcode == "parameter")) == 0


def test_streamed_weights_count_the_convs_a_windowed_conv_reads_row_by_row():
    from jaxcost.compiler.hlo import parse_module
    from jaxcost.perf.kernels import streamed_weights

    entry = parse_module(CHAIN_HLO).entry
    fusion = next(i for i in entry.instructions if i.opcode == "fusion")
    # b (3x3) reads a's output: both read their 3x3x64x64 weights once per row of their 7-row map;
    # the 1x1 side conv feeds no windowed conv
    assert streamed_weights(fusion) == 7 * 2 * (3 * 3 * 64 * 64 * 4)
    assert streamed_weights(next(i for i in entry.instructions if i.opcode == "parameter")) == 0

    def chain(windows, side=6):
        def f(x, ws):
            for w in ws:
                x = jax.nn.relu(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                             dimension_numbers=("NHWC", "HWIO", "NHWC")))
            return x.sum((1, 2))
        ws = [jax.ShapeDtypeStruct((k, k, 256, 256), jnp.float32) for k in windows]
        a = jaxcost.analyze(f, jax.ShapeDtypeStruct((1, side, side, 256), jnp.float32), ws, theory=False)
        return [streamed_weights(op.instruction) for op in a.ops if op.instruction is not None]

    assert max(chain((3, 3))) == 6 * 2 * (3 * 3 * 256 * 256 * 4)
    assert max(chain((3, 1))) == 0  # a 1x1 conv after a 3x3 one needs no rows around its outputs
    assert max(chain((1, 1))) == 0


def test_a_chain_of_convs_in_one_kernel_is_priced_as_its_parts_or_its_weights_read_row_by_row_and_flagged():
    from jaxcost.perf.pricing import CHAIN_NOTE

    def chain(ws, x):
        for w in ws:
            x = jax.nn.relu(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                         dimension_numbers=("NHWC", "HWIO", "NHWC")))
        return x.sum((1, 2))  # the reduction makes XLA:CPU run the three convs as one kernel

    ws = [jax.ShapeDtypeStruct((3, 3, 128, 128), jnp.float32)] * 3  # (smaller convs: three kernels)
    x = jax.ShapeDtypeStruct((1, 7, 7, 128), jnp.float32)
    a = jaxcost.analyze(chain, ws, x, theory=False)
    one = jaxcost.analyze(lambda w, x: chain([w], x), ws[0], x, theory=False)
    rates = {"conv": 50e9}
    peaks = DevicePeaks("toy", "cpu", {"float32": 100e9}, 10e9, "measured", "", rates, 0.0)
    r = jaxcost.program_roofline(a, peaks)
    (fused,) = [op for op in a.ops if class_flops(op).get("conv")]
    (point,) = [p for p in r.points if p.name == fused.name]
    assert class_flops(fused)["conv"] == 3 * sum(class_flops(op).get("conv", 0) for op in one.ops)
    assert point.note == CHAIN_NOTE.format(n=3)
    assert r.notes == {fused.name: point.note}
    assert point.time_s == pytest.approx(max(class_flops(fused)["conv"] / 50e9 + class_flops(fused).get("other", 0) / 100e9,
                                             fused.bytes_accessed / 10e9), rel=1e-12)
    assert "1 with caveats" in repr(r)
    text = r.summary(print_=False)
    assert f"{fused.name} *" in text and "3 matmuls chained in one kernel" in text
    # with chain kernels in the calibration, the longer of that and its weights read row by row
    from jaxcost.perf.kernels import streamed_weights

    table = [["chain", 8e6, 1, 1, 4e9, 8e6, 2e-3, 1, 1, "fusion:__ynn_fusion", 1],
             ["chain", 6e6, 1, 1, 6e9, 6e6, 1e-3, 1, 1, "fusion:__ynn_fusion", 1]]
    chained = DevicePeaks("toy", "cpu", {"float32": 100e9}, 10e9, "measured", "", rates, 0.0, kernel_table=table)
    assert chained.rates("float32").chain_bandwidth() == 5e9  # the median of the chain kernels' rates
    streamed = streamed_weights(fused.instruction)
    assert streamed == 7 * 3 * (3 * 3 * 128 * 128 * 4)  # each conv's weights once per row of the map
    (slow,) = [p for p in jaxcost.program_roofline(a, chained).points if p.name == fused.name]
    assert slow.time_s == pytest.approx(streamed / 5e9, rel=1e-12) and slow.time_s > 2 * point.time_s
    assert slow.note == point.note


def test_footnotes_name_each_note_once():
    from jaxcost.report.format import footnotes

    notes = {f"k{i}": "slow" for i in range(6)} | {"x": "other"}
    assert footnotes(notes, shown=2) == "* k0, k1 and 4 more: slow\n* x: other"


def test_a_loop_priced_from_a_calibration_carries_the_loop_note():
    from jaxcost.perf import get_peaks
    from jaxcost.perf.pricing import LOOP_NOTE

    def rnn(x, w):
        return jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), x, None, length=16)[0]

    a = jaxcost.analyze(rnn, jax.ShapeDtypeStruct((8, 256), jnp.float32),
                        jax.ShapeDtypeStruct((256, 256), jnp.float32), theory=False)
    (loop,) = [op for op in a.ops if op.opcode == "while"]
    calibrated = jaxcost.program_roofline(a, get_peaks("cpu", measure=False))
    assert LOOP_NOTE.format(n=16) in calibrated.notes[loop.name].split("; ")
    assert "16 trips" in calibrated.summary(print_=False)
    # priced from peaks alone (no calibration table): no such caveat
    peaks = DevicePeaks("toy", "cpu", {"float32": 100e9}, 10e9, "measured", "", {"dot": 50e9}, 0.0)
    assert loop.name not in jaxcost.program_roofline(a, peaks).notes


def _cell(batch: int, state: int, steps: int = 12):
    """A recurrent cell's network (two dots a trip) and its analysis."""
    def rnn(xs, wx, wh):
        return jax.lax.scan(lambda h, x: (jnp.tanh(x @ wx + h @ wh), None), jnp.zeros((batch, state)), xs)[0]

    s = jax.ShapeDtypeStruct
    a = jaxcost.analyze(rnn, s((steps, batch, 128), jnp.float32), s((128, state), jnp.float32),
                        s((state, state), jnp.float32), theory=False)
    (loop,) = [op for op in a.ops if op.opcode == "while"]
    return a, loop


@pytest.mark.parametrize("batch, state, dot_kind", [(1, 256, "dot/loop"), (8, 384, "fusion:__ynn_fusion/loop"),
                                                    (1024, 256, "fusion:__ynn_fusion")])
def test_a_loop_body_is_its_kernels_one_after_another_priced_as_loop_trips(batch, state, dot_kind):
    """With the suite's calibration: a while loop's time is its trips times the sum of its body's
    kernels' roofs (each body kernel priced as in a loop), plus the launches of those not priced
    from loop trips; its dots from the loop rows of their kind of kernel where they lie in their
    range (batch 1: XLA's own dot; 8: YNNPACK), else as timed alone (batch 1024: outside)."""
    from jaxcost.perf import get_peaks
    from jaxcost.perf.kernels import LOOP, NO_KERNEL, class_work
    from jaxcost.perf.pricing import price_op

    peaks = get_peaks("cpu", measure=False)
    rates, factor = peaks.rates(), peaks.program_factor
    a, loop = _cell(batch, state)
    (point,) = [p for p in jaxcost.program_roofline(a, peaks).points if p.name == loop.name]
    body = [price_op(op, rates, factor, in_loop=True) for op in body_ops(loop) if op.opcode not in NO_KERNEL]
    launches = sum(k.launches for k in body)
    assert point.time_s == pytest.approx(12 * sum(max(k.compute_s, k.memory_s) for k in body)
                                         + 12 * launches * peaks.kernel_overhead_s, rel=1e-12)
    dots = [(op, w) for op in body_ops(loop) for w in class_work(op) if w.cls == "dot"]
    assert len(dots) == 2
    in_range = dot_kind.endswith(LOOP)
    for op, w in dots:
        kind = w.impl + LOOP if in_range else w.impl
        assert kind == dot_kind and rates.has_kind("dot", w.impl + LOOP)
        assert (rates.outside("dot", w.features, w.impl + LOOP) == ()) == in_range
        priced = price_op(op, rates, factor, in_loop=True)
        assert priced.compute_s == pytest.approx(factor * rates.seconds("dot", w.features, w.flops, kind), rel=1e-12)
        # priced from loop trips, a kernel pays no launch of its own: the trips were timed with theirs
        assert priced.launches == (0 if in_range else 1)
    # every elementwise kernel of the body is priced from the loop's elementwise trips
    others = [op for op in body_ops(loop) if op.opcode not in NO_KERNEL and all(w.cls == "other" for w in class_work(op))]
    assert others and all(price_op(op, rates, factor, in_loop=True).launches == 0 for op in others)
    for op in others:
        assert price_op(op, rates, factor, in_loop=True).memory_s == pytest.approx(
            factor * op.bytes_accessed / rates.bandwidth(op.bytes_accessed, LOOP), rel=1e-12)


def test_a_loop_dot_with_the_weights_on_the_left_is_looked_up_transposed():
    """A vmapped cell (Equinox's way) runs ``(N, K) @ (K, batch)``: more rows than columns, outside
    the loop rows (batch 1-64 on the left); it is priced as the same product transposed."""
    from jaxcost.perf import get_peaks
    from jaxcost.perf.kernels import LOOP, class_work
    from jaxcost.perf.pricing import price_op

    def rnn(xs, wx, wh):
        cell = jax.vmap(lambda x, h: jnp.tanh(wx @ x + wh @ h))
        return jax.lax.scan(lambda h, x: (cell(x, h), None), jnp.zeros((8, 256)), xs)[0]

    s = jax.ShapeDtypeStruct
    a = jaxcost.analyze(rnn, s((12, 8, 128), jnp.float32), s((256, 128), jnp.float32), s((256, 256), jnp.float32),
                        theory=False)
    (loop,) = [op for op in a.ops if op.opcode == "while"]
    peaks = get_peaks("cpu", measure=False)
    rates, factor = peaks.rates(), peaks.program_factor
    left = [(op, w) for op in body_ops(loop) for w in class_work(op) if w.cls == "dot" and w.features[0] > w.features[2]]
    assert left
    for op, w in left:
        m, k, n = w.features[:3]
        assert (m, n) == (256, 8) and rates.outside("dot", w.features, w.impl + LOOP)  # as it is: outside
        transposed = (n, k, m, 1, w.features[4], n)
        assert rates.outside("dot", transposed, w.impl + LOOP) == ()
        assert price_op(op, rates, factor, in_loop=True).compute_s == pytest.approx(
            factor * rates.seconds("dot", transposed, w.flops, w.impl + LOOP), rel=1e-12)


def test_a_loop_of_batch_one_cells_is_priced_below_its_kernels_timed_alone():
    """The point of loop trips: inside a loop, a cell's kernels pay no call and read hot weights.
    Priced from the same calibration without its loop rows, the same loop costs more (the held-out
    recurrent networks: benchmarks/results/rnn_loops.md)."""
    import dataclasses

    from jaxcost.perf import get_peaks
    from jaxcost.perf.kernels import LOOP

    peaks = get_peaks("cpu", measure=False)
    alone = dataclasses.replace(peaks, kernel_table=[r for r in peaks.kernel_table if not r[9].endswith(LOOP)])
    a, loop = _cell(1, 512)
    with_loops, without = (jaxcost.program_roofline(a, p) for p in (peaks, alone))
    (t1,), (t0,) = ([p.time_s for p in r.points if p.name == loop.name] for r in (with_loops, without))
    assert t1 < 0.8 * t0


