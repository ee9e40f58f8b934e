"""Kernel features, the calibration's in-place timing, and the rate model fitted to it."""

import dataclasses
import json
import math
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FIXTURE_PEAKS

import jaxcost
import models
from jaxcost.compiler.hlo import parse_module
from jaxcost.perf import DevicePeaks, get_peaks
from jaxcost.perf.calibrate import CALIBRATION_VERSION
from jaxcost.perf.kernels import class_work, gemm_dims, kernel_features, kernel_impl, leaves
from jaxcost.perf.peaks import cache_path
from jaxcost.perf.predict import FIRST_TOUCH, program_roofline
from jaxcost.perf.rates import Rates, _log_seconds, first_touch_seconds, fit_rates

HLO = """HloModule m

fused {
  p0 = f32[8,28,28,96]{3,2,1,0} parameter(0)
  p1 = f32[3,3,1,96]{3,2,1,0} parameter(1)
  ROOT c = f32[8,28,28,96]{3,2,1,0} convolution(p0, p1), window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f, feature_group_count=96
}

ENTRY e {
  x = f32[8,28,28,96]{3,2,1,0} parameter(0)
  w = f32[3,3,1,96]{3,2,1,0} parameter(1)
  a = f32[12,1,64]{2,1,0} parameter(2)
  b = f32[12,64,32]{2,1,0} parameter(3)
  y = f32[8,28,28,96]{3,2,1,0} fusion(x, w), kind=kCustom, calls=fused, backend_config={"fusion_config":{"kind":"__ynn_fusion"}}
  z = f32[8,14,14,96]{3,2,1,0} convolution(x, w), window={size=3x3 stride=2x2 pad=1_1x1_1}, dim_labels=b01f_01io->b01f, feature_group_count=96
  d = f32[12,1,32]{2,1,0} dot(a, b), lhs_batch_dims={0}, lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={1}
  ROOT t = (f32[8,28,28,96]{3,2,1,0}, f32[8,14,14,96]{3,2,1,0}, f32[12,1,32]{2,1,0}) tuple(y, z, d)
}
"""


def _entry():
    return {i.name: i for i in parse_module(HLO).entry.instructions}


def test_features_of_convs_and_batched_dots():
    e = _entry()
    pairs = list(leaves(e["y"]))
    assert [leaf.opcode for _, leaf in pairs] == ["parameter", "parameter", "convolution"]
    assert all(kernel is e["y"] for kernel, _ in pairs)  # a fusion's instructions run in its kernel
    conv = pairs[-1][1]
    # a depthwise conv: 96 groups of (6272 x 9) @ (9 x 1); 784 output pixels per image
    assert kernel_features(conv) == (6272, 9, 1, 9, 96, 784)
    assert kernel_features(e["z"]) == (1568, 9, 1, 9, 96, 196)  # stride 2: a quarter of the pixels
    # a batched matmul: its batch is the groups, M the rows of one product
    assert gemm_dims(e["d"]) == (1, 64, 32, 12)
    assert kernel_features(e["d"]) == (1, 64, 32, 1, 12, 1)


def test_kernel_impl_names_what_runs_the_op():
    e = _entry()
    assert kernel_impl(e["y"]) == "fusion:__ynn_fusion"
    assert kernel_impl(e["z"]) == "convolution"
    assert kernel_impl(e["d"]) == "dot"


@pytest.mark.parametrize("padding, stride, unpadded", [
    ("VALID", 1, True), ("VALID", 2, True), ("SAME", 1, False), (((0, 0), (1, 1)), 1, False), ("SAME", 2, True)])
def test_a_conv_that_pads_no_side_is_its_own_kind_of_kernel(padding, stride, unpadded):
    # SAME with a 2x2 window of stride 2 on an even map pads nothing: a patchify conv
    k = 2 if stride == 2 and padding == "SAME" else 3

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    a = jaxcost.analyze(conv, jax.ShapeDtypeStruct((8, 28, 28, 16), jnp.float32),
                        jax.ShapeDtypeStruct((k, k, 16, 32), jnp.float32), backend="cpu")
    (work,) = [w for op in a.ops for w in class_work(op) if w.cls == "conv"]
    assert work.impl == "fusion:__ynn_fusion" + ("/unpadded" if unpadded else "")
    assert kernel_impl(_entry()["z"]) == "convolution"  # padded, XLA's own emitter: no suffix


def _conv_work(x, w):
    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    a = jaxcost.analyze(conv, jax.ShapeDtypeStruct(x, jnp.float32), jax.ShapeDtypeStruct(w, jnp.float32),
                        backend="cpu", theory=False)
    (work,) = [w for op in a.ops for w in class_work(op) if w.cls == "conv"]
    return work


def test_a_conv_xla_rewrote_with_a_reversed_window_is_its_own_kind_of_kernel():
    """XLA:CPU rewrites a padded conv whose window is larger than its map into a conv over the
    batch (rhs_reversal, 01fb_o01i->f01b) that runs at a few GFLOP/s; a plain conv on XLA's own
    emitter (a 1x7 window on a 4x4 map) is not that kind: where the calibration has only the
    rewritten ones, it is priced by the class's fit, not among them (10-25x too slow)."""
    reversed_ = _conv_work((8, 3, 3, 32), (5, 5, 32, 512))
    plain = _conv_work((1, 4, 4, 192), (1, 7, 192, 192))
    assert reversed_.impl == "convolution/reversed" and reversed_.features[2] == 8  # N: the batch
    assert plain.impl == "convolution" and plain.features == (16, 7 * 192, 192, 7, 1, 16)
    table = _table(POINTS, LAW) + [["conv", *reversed_.features[:3], 3e9, 2e7, 2e7 / 3e9, *reversed_.features[3:5],
                                    "convolution/reversed", reversed_.features[5]]]
    rates = Rates(table, fit_rates(table), {}, 1e12, 1e10)
    assert rates.seconds("conv", reversed_.features, 2e7, reversed_.impl) == pytest.approx(2e7 / 3e9)
    assert rates.seconds("conv", plain.features, plain.flops, plain.impl) == pytest.approx(
        float(_law([plain.features], LAW)[0]), rel=1e-3)


def test_an_unpadded_conv_is_priced_as_a_padded_one_where_none_was_calibrated():
    table = _table(POINTS, LAW)
    fits = fit_rates(table)
    rates = Rates(table, fits, {}, 1e12, 1e10)
    point = POINTS[7]
    flops = table[7][5]
    assert rates.seconds("conv", point, flops, "fusion:__ynn_fusion/unpadded") == rates.seconds(
        "conv", point, flops, "fusion:__ynn_fusion")
    # with unpadded rows in the table (as many as a fit takes): no law fitted to them, their rates
    # interpolated -- an exact match its own, a kernel between two of them their geometric mean
    unpadded = [[*r[:4], r[4] / 3, r[5], r[6] * 3, *r[7:9], "fusion:__ynn_fusion/unpadded", r[10]] for r in table]
    table = table + unpadded
    fits = fit_rates(table)
    assert [f.impl for f in fits] == ["fusion:__ynn_fusion"]
    rates = Rates(table, fits, {}, 1e12, 1e10)
    assert rates.seconds("conv", point, flops, "fusion:__ynn_fusion/unpadded") == flops / (table[7][4] / 3)
    assert rates.seconds("conv", point, flops, "fusion:__ynn_fusion") == pytest.approx(table[7][6], rel=1e-3)


def test_leaves_of_a_loop_run_in_the_body_kernels():
    def rnn(x, w):
        return jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), x, None, length=4)[0]

    s = jax.ShapeDtypeStruct((8, 64), jnp.float32)
    compiled = jax.jit(rnn).lower(s, jax.ShapeDtypeStruct((64, 64), jnp.float32)).compile()
    (loop,) = [i for i in parse_module(compiled.as_text()).entry.instructions if i.opcode == "while"]
    body = loop.called_by("body")
    dots = [(k, leaf) for k, leaf in leaves(loop) if leaf.opcode == "dot"]
    assert len(dots) == 1 and dots[0][0] in body.instructions  # the body's kernel, not the loop


def _law(f, p):
    return np.exp(_log_seconds(np.log(p), np.asarray(f, dtype=float)))


def _table(points, p, impl="fusion:__ynn_fusion", cls="conv"):
    rows = []
    for m, k, n, taps, g, px in points:
        t = float(_law([(m, k, n, taps, g, px)], p)[0])
        flops = 2.0 * m * k * n * g
        rows.append([cls, m, k, n, flops / t, flops, t, taps, g, impl, px])
    return rows


LAW = (5e-6, 1e11, 50.0, 20.0, 10.0, 5.0, 1.0, 3e10)  # t0, R, m, k, n, p, g halves, bandwidth
POINTS = [(b * hw * hw, k * k * ci, co, k * k, 1, hw * hw) for b in (1, 8) for hw in (7, 28, 56)
          for ci, co in ((16, 32), (64, 128), (256, 64)) for k in (1, 3)]


@pytest.mark.parametrize("params", [8, 9])
def test_the_rate_laws_jacobian_is_its_derivative(params):
    from jaxcost.perf.rates import _START, _log_seconds_jacobian

    f = np.array(POINTS, dtype=float)
    p = np.log(_START[:params]) + np.linspace(-0.5, 0.5, params)
    eye = np.eye(params) * 1e-6
    numeric = np.stack([(_log_seconds(p + e, f) - _log_seconds(p - e, f)) / 2e-6 for e in eye], axis=1)
    assert _log_seconds_jacobian(p, f) == pytest.approx(numeric, abs=1e-7)


def test_the_rate_model_recovers_a_known_law():
    table = _table(POINTS, LAW)
    (fit,) = fit_rates(table)
    assert (fit.cls, fit.impl, fit.rows) == ("conv", "fusion:__ynn_fusion", 36)
    assert fit.loo_median < 1e-3 and fit.loo_within_10 == 1.0  # noise-free: leave-one-out is exact
    rates = Rates(table, [fit], {}, 1e12, 1e10)
    unseen = (4 * 14 * 14, 5 * 5 * 32, 96, 25, 1, 196)
    expected = float(_law([unseen], LAW)[0])
    assert rates.seconds("conv", unseen, 3e6, "fusion:__ynn_fusion") == pytest.approx(expected, rel=1e-3)
    # the law prices the features, not the flops: XLA leaves out the taps on the padding
    assert rates.seconds("conv", unseen, 1e6, "fusion:__ynn_fusion") == pytest.approx(expected, rel=1e-3)


GROUPED = [(b * hw * hw, k * k * cg, cg, k * k, g, hw * hw) for b in (1, 8) for hw in (7, 14, 28, 56)
           for cg in (4, 16) for k in (1, 3) for g in (8, 32)]


def test_a_grouped_conv_whose_input_outgrows_the_step_is_priced_past_it():
    """Grouped convs run 2x slower once a windowed one's input passes 4 MB (YNNPACK on one
    core past its cache): the fit finds the step between the calibration kernels around it
    and holds the law below it; a 1x1 grouped conv, or another class, takes no step."""
    from jaxcost.perf.rates import _input_bytes

    rows = _table(GROUPED, LAW, cls="grouped")
    sizes = _input_bytes(np.array(GROUPED, dtype=float))
    for row, size, point in zip(rows, sizes, GROUPED):
        if point[3] > 1 and size > 4e6:
            row[6] *= 2.0
            row[4] /= 2.0
    (fit,) = fit_rates(rows)
    below, above = max(s for s in sizes if s <= 4e6), min(s for s in sizes if s > 4e6)  # 3.2 MB and 6.4 MB
    assert fit.spill == pytest.approx(2.0, rel=1e-3) and fit.spill_bytes == pytest.approx(math.sqrt(below * above))
    assert fit.loo_median < 1e-3
    rates = Rates(rows, [fit], {}, 1e12, 1e10)
    for point in [(8 * 56 * 56, 9 * 8, 8, 9, 8, 56 * 56), (8 * 56 * 56, 8, 8, 1, 8, 56 * 56), (49, 72, 8, 9, 8, 49)]:
        step = 2.0 if point[3] > 1 and float(_input_bytes(np.array([point], dtype=float))[0]) > 4e6 else 1.0
        assert rates.seconds("grouped", point, 1.0, "fusion:__ynn_fusion") == pytest.approx(
            step * float(_law([point], LAW)[0]), rel=1e-3), point
    assert "x2.00 past 4.3 MiB input" in repr(fit)
    # without a step in the times, or in a class that takes none, none is found
    assert fit_rates(_table(GROUPED, LAW, cls="grouped"))[0].spill_bytes is None
    conv = _table(GROUPED, LAW, cls="conv")
    for row, r in zip(conv, rows):
        row[4], row[6] = r[4], r[6]
    assert fit_rates(conv)[0].spill_bytes is None
    assert fit_rates(rows, spill_classes=())[0].spill_bytes is None


WIDE = [(b * hw * hw, ci, co, 1, 1, hw * hw) for b in (1, 8) for hw in (7, 14, 28, 56)
        for ci in (32, 128, 512) for co in (32, 128, 512, 2048)]


def _serial_table(factor: float, cls: str = "conv1x1"):
    """WIDE's kernels timed by LAW, those with 256 KiB of weights or fewer, or 64 output channels
    or fewer, ``factor`` times slower in their compute term (one thread of two)."""
    from jaxcost.perf.rates import _terms

    f = np.array(WIDE, dtype=float)
    fixed, compute, memory, _, _ = _terms(np.log(LAW), f)
    serial = (4 * f[:, 1] * f[:, 2] <= 256 << 10) | (f[:, 2] <= 64)
    seconds = fixed + compute * np.where(serial, factor, 1.0) + memory
    return [[cls, m, k, n, 2.0 * m * k * n / t, 2.0 * m * k * n, float(t), taps, g, "fusion:__ynn_fusion", px]
            for (m, k, n, taps, g, px), t in zip(WIDE, seconds)]


def test_a_product_on_one_thread_is_priced_at_the_serial_factor():
    """YNNPACK runs a matrix product whose weights fit one block of columns (or whose output
    channels are too few to split) on one thread: the fit finds the size between the calibration
    kernels' weights around it and the factor, and prices kernels on either side by them."""
    from jaxcost.perf.rates import SERIAL_N

    rows = _serial_table(2.0)
    (fit,) = fit_rates(rows)
    assert fit.serial == pytest.approx(2.0, rel=1e-3)
    assert fit.serial_bytes == pytest.approx(math.sqrt((256 << 10) * (1 << 20)))  # between 256 KiB and 1 MiB
    assert fit.loo_median < 1e-3 and SERIAL_N == 64
    assert "x2.00 on one thread up to 512 KiB of weights or 64 channels" in repr(fit)
    rates = Rates(rows, [fit], {}, 1e12, 1e10)
    from jaxcost.perf.rates import _terms
    for point, serial in [((8 * 14 * 14, 256, 256, 1, 1, 196), True), ((8 * 14 * 14, 256, 1024, 1, 1, 196), False),
                          ((8 * 14 * 14, 4096, 64, 1, 1, 196), True)]:
        fixed, compute, memory, _, _ = _terms(np.log(LAW), np.array([point], dtype=float))
        expected = float(fixed[0] + compute[0] * (2.0 if serial else 1.0) + memory[0])
        assert rates.seconds("conv1x1", point, 1.0, "fusion:__ynn_fusion") == pytest.approx(expected, rel=1e-3), point
    # no factor in the times, or a class that takes none: no serial size
    assert fit_rates(_serial_table(1.0))[0].serial_bytes is None
    assert fit_rates(_serial_table(2.0, cls="grouped"))[0].serial_bytes is None
    assert fit_rates(rows, serial_classes=())[0].serial_bytes is None


def test_the_serial_factors_jacobian_is_its_derivative():
    from jaxcost.perf.rates import _START, _log_seconds_jacobian, _serial

    f = np.array(WIDE, dtype=float)
    serial = _serial(f, 300e3)
    assert 0 < serial.sum() < len(f)
    p = np.append(np.log(_START[:8]), math.log(1.7)) + np.linspace(-0.5, 0.5, 9)
    eye = np.eye(9) * 1e-6
    numeric = np.stack([(_log_seconds(p + e, f, serial) - _log_seconds(p - e, f, serial)) / 2e-6 for e in eye], axis=1)
    assert _log_seconds_jacobian(p, f, serial) == pytest.approx(numeric, abs=1e-7)


def test_a_padded_conv_is_priced_by_its_features_not_by_the_taps_xla_counts():
    """XLA counts only the window taps that fall on the input: a 3x3 SAME conv on a 7x7 map does
    (19/21)^2 of 2 M K N flops (per axis 2 + 3 x 5 + 2 = 19 taps of 21). The kernel takes the
    time the fitted law gives its features; pricing XLA's flops at the law's rate of 2 M K N
    would make it 0.82x of that (ConvNeXt's 7x7 depthwise convs on 3x3 maps: 0.19x)."""
    from jaxcost.perf.pricing import price_op

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    a = jaxcost.analyze(conv, jax.ShapeDtypeStruct((1, 7, 7, 16), jnp.float32),
                        jax.ShapeDtypeStruct((3, 3, 16, 32), jnp.float32), backend="cpu", theory=False)
    ((op, work),) = [(op, w) for op in a.ops for w in class_work(op) if w.cls == "conv"]
    assert work.features == (49, 144, 32, 9, 1, 49)
    assert work.flops == 2 * 49 * 144 * 32 * 361 / 441
    table = _table(POINTS, LAW)
    rates = Rates(table, fit_rates(table), {}, 1e12, 1e10)
    law = float(_law([work.features], LAW)[0])
    assert rates.seconds("conv", work.features, work.flops, work.impl) == pytest.approx(law, rel=1e-3)
    assert price_op(op, rates).compute_s == pytest.approx(law, rel=1e-3)


def test_rates_fall_back_to_neighbours_of_the_same_kernel_kind():
    table = _table(POINTS, LAW) + [["conv", 49, 288, 64, 2e9, 3.6e6, 1.8e-3, 9, 1, "convolution", 49]]
    fits = fit_rates(table)
    assert [f.impl for f in fits] == ["fusion:__ynn_fusion"]  # one row: no fit of its own
    rates = Rates(table, fits, {}, 1e12, 1e10)
    assert rates.seconds("conv", (49, 288, 64, 9, 1, 49), 3e6, "convolution") == 3e6 / 2e9  # its own row's rate
    # a kind of kernel the calibration never ran: the class's fit
    assert rates.seconds("conv", POINTS[4], 1e6, "custom-call:x") == pytest.approx(
        rates.seconds("conv", POINTS[4], 1e6, "fusion:__ynn_fusion"))
    # no features (elementwise work) or no calibration of the class: the class rate, else the peak
    assert rates.seconds("other", None, 1e9) == 1e-3
    assert Rates([], [], {"grouped": 7e9}, 1e12, 1e10).seconds("grouped", (1, 1, 1, 1, 2, 1), 7e9) == 1.0



def test_a_kernel_outside_the_calibrated_range_is_named_in_the_dimensions_it_leaves():
    table = _table(POINTS, LAW) + [["conv", 49, 288, 64, 2e9, 3.6e6, 1.8e-3, 9, 1, "convolution", 49]]
    rates = Rates(table, fit_rates(table), {}, 1e12, 1e10)
    lo = [min(p[i] for p in POINTS) for i in range(6)]
    hi = [max(p[i] for p in POINTS) for i in range(6)]
    assert rates.outside("conv", tuple(lo), "fusion:__ynn_fusion") == ()  # the corner of the range is in it
    small = (lo[0] - 1, *lo[1:5], lo[5] - 1)
    assert rates.outside("conv", small, "fusion:__ynn_fusion") == ("M", "pixels", "flops")
    assert rates.outside("conv", (*hi[:2], 2 * hi[2], *hi[3:]), "custom-call:x") == ("N", "flops")  # the fit's kind
    # the one row of XLA's own conv emitter is its range (interpolated, no fit)
    assert rates.outside("conv", (49, 288, 64, 9, 1, 49), "convolution") == ()
    assert rates.outside("conv", (49, 288, 64, 9, 1, 50), "convolution") == ("pixels",)
    assert rates.outside("other", None) == () and rates.outside("dot", (1, 1, 1, 1, 1, 1)) == ()  # none calibrated


def test_a_1x1_conv_on_a_1x1_map_is_priced_with_a_caveat_from_the_committed_calibration():
    """A classifier head run as a 1x1 conv on a 1x1 map (MobileNetV3's) is a matmul, priced by
    the dot law (kernels.is_matmul_conv); XLA:CPU runs it in a YNNPACK kernel, whose dots the
    calibration has from 8 rows (one row runs on XLA's own dot emitter): its price extrapolates
    in M and says so."""
    from jaxcost.perf.kernels import class_work
    from jaxcost.perf.pricing import RANGE_NOTE

    def head(w, x):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    peaks = get_peaks("cpu", measure=False)
    args = jax.ShapeDtypeStruct((1, 1, 1024, 1000), jnp.float32), jax.ShapeDtypeStruct((1, 1, 1, 1024), jnp.float32)
    a = jaxcost.analyze(head, *args, theory=False)
    r = program_roofline(a, peaks)
    assert set(r.notes.values()) == {RANGE_NOTE.format(what="dot M, pixels")}
    (work,) = [w for op in a.ops for w in class_work(op) if w.cls != "other"]
    assert work == ("dot", 2 * 1024 * 1000, (1, 1024, 1000, 1, 1, 1), "fusion:__ynn_fusion")
    inside = jax.ShapeDtypeStruct((8, 14, 14, 256), jnp.float32)
    b = jaxcost.analyze(head, jax.ShapeDtypeStruct((1, 1, 256, 256), jnp.float32), inside, theory=False)
    assert [w.cls for op in b.ops for w in class_work(op) if w.cls != "other"] == ["conv1x1"]  # a map of pixels
    assert not program_roofline(jaxcost.analyze(head, jax.ShapeDtypeStruct((1, 1, 256, 256), jnp.float32), inside,
                                                theory=False), peaks).notes


MB = 2 ** 20
FAULTS = [["fault", MB, 1, 1, 0.0, MB, 0.0, 1, 1, "", 1], ["fault", 64 * MB, 1, 1, 64 * MB / 0.016, 64 * MB, 0.016, 1, 1, "", 1]]


def test_first_touch_interpolates_the_paging_cost_per_byte():
    assert first_touch_seconds(64 * MB, FAULTS) == pytest.approx(0.016)
    assert first_touch_seconds(128 * MB, FAULTS) == pytest.approx(0.032)  # past the largest: its cost per byte
    # halfway in log size between 1 MB (free) and 64 MB: half the cost per byte
    assert first_touch_seconds(8 * MB, FAULTS) == pytest.approx(8 * MB * 0.5 * 0.016 / (64 * MB))
    assert first_touch_seconds(MB, FAULTS) == 0.0
    assert first_touch_seconds(64 * MB, []) == 0.0  # no fault rows: an allocator that keeps its memory


def _two_matmuls():
    """Two matmuls with a 16 MB intermediate, analyzed."""

    def two_matmuls(x, w, v):
        return jnp.maximum(x @ w, 0.0) @ v

    args = (jax.ShapeDtypeStruct((1024, 256), jnp.float32), jax.ShapeDtypeStruct((256, 4096), jnp.float32),
            jax.ShapeDtypeStruct((4096, 8), jnp.float32))
    return jaxcost.analyze(two_matmuls, *args, theory=False)


def test_program_roofline_charges_the_paging_of_fresh_buffers_once():
    a = _two_matmuls()
    assert a.memory.temp_bytes >= 16 * MB  # the 1024 x 4096 intermediate
    peaks = DevicePeaks("toy", "cpu", {"float32": 1e11}, 1e10, "measured", "", {}, 1e-6, FAULTS)
    r = jaxcost.program_roofline(a, peaks)
    (paging,) = [p for p in r.points if p.name == FIRST_TOUCH]
    expected = first_touch_seconds(a.memory.temp_bytes, FAULTS) + first_touch_seconds(a.memory.output_bytes, FAULTS)
    assert paging.time_s == pytest.approx(expected, rel=1e-12) and paging.bound == "memory"
    assert r.predicted_s == pytest.approx(sum(p.time_s for p in r.points), rel=1e-12)
    without = DevicePeaks("toy", "cpu", {"float32": 1e11}, 1e10, "measured", "", {}, 1e-6)
    assert FIRST_TOUCH not in {p.name for p in jaxcost.program_roofline(a, without).points}


def test_in_place_timing_writes_into_a_donated_buffer():
    from jaxcost.perf.calibrate import _elementwise, in_place

    x = jnp.linspace(-1.0, 1.0, 1024)
    w = jnp.array([2.0, -0.5])
    run, compiled = in_place(_elementwise, x, w)
    assert "input_output_alias" in compiled.as_text()  # the result is the donated third argument
    np.testing.assert_allclose(run(), np.maximum(2.0 * np.asarray(x) - 0.5, 0.0))
    np.testing.assert_allclose(run(), np.maximum(2.0 * np.asarray(x) - 0.5, 0.0))  # again, into the same buffer


def test_best_time_spends_its_budget_on_fast_calls():
    from jaxcost.perf.stats import best_time

    calls = []

    def fn():
        calls.append(1)
        return jnp.zeros(())

    best_time(fn, 3, budget_s=0.0)
    assert len(calls) == 1 + 3  # warm-up + the minimum
    calls.clear()
    best = best_time(fn, 3, budget_s=0.02, max_repeats=50)
    assert len(calls) == 1 + 50 and best > 0  # microsecond calls: every try the cap allows
    assert math.isfinite(best)


POOL_HLO = """HloModule m

max_f {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}

pool_f {
  p = f32[8,56,56,64]{3,2,1,0} parameter(0)
  i = f32[] constant(-inf)
  ROOT r = f32[8,28,28,64]{3,2,1,0} reduce-window(p, i), window={size=1x3x3x1 stride=1x2x2x1 pad=0_0x0_1x0_1x0_0}, to_apply=max_f
}

ENTRY e {
  x = f32[8,56,56,64]{3,2,1,0} parameter(0)
  ROOT y = f32[8,28,28,64]{3,2,1,0} fusion(x), kind=kLoop, calls=pool_f
}
"""


def test_a_pool_is_a_window_kernel_not_its_reducer():
    (_, y) = parse_module(POOL_HLO).entry.instructions
    pairs = list(leaves(y))
    # the reducer (max_f) is applied inside the reduce-window: it holds no kernels of its own
    assert [leaf.opcode for _, leaf in pairs] == ["parameter", "constant", "reduce-window"]
    assert kernel_features(pairs[-1][1]) == (8 * 28 * 28 * 64, 9, 1, 9, 1, 8 * 28 * 28 * 64)


def test_class_work_prices_a_max_pool_as_a_window():
    from jaxcost.perf.kernels import class_work

    def pool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")

    a = jaxcost.analyze(pool, jax.ShapeDtypeStruct((8, 56, 56, 64), jnp.float32), theory=False)
    work = [w for op in a.ops for w in class_work(op)]
    (window,) = [w for w in work if w.cls == "window"]
    outputs = 8 * 28 * 28 * 64
    assert window.flops == 8 * outputs  # XLA: (taps - 1) x outputs, one max each
    assert window.features == (outputs, 9, 1, 9, 1, outputs) and window.impl.startswith("fusion:")
    assert sum(w.flops for w in work) == sum(op.flops for op in a.ops)  # nothing left over or twice


def test_attention_in_one_kernel_is_priced_as_its_own_class():
    from jaxcost.perf.calibrate import _attention, _attention_flops, prepare_kernel
    from jaxcost.perf.kernels import class_work, is_attention
    from jaxcost.perf.pricing import price_op
    from jaxcost.perf.rates import Rates

    q = jax.ShapeDtypeStruct((16, 64, 6, 32), jnp.float32)  # 96 sequences of 64 tokens
    a = jaxcost.analyze(_attention, q, jax.ShapeDtypeStruct((2, 16, 64, 6, 32), jnp.float32), theory=False)
    (op,) = [op for op in a.ops if op.instruction is not None and is_attention(op.instruction)]
    work = class_work(op)
    assert work[0] == ("attention", 2 * 2 * 64 * 32 * 64 * 96, (64, 32, 64, 1, 96, 64), "fusion:__ynn_fusion")
    assert [w.cls for w in work[1:]] == ["other"]  # the softmax
    assert sum(w.flops for w in work) == op.flops + op.transcendentals
    # priced at the rate of its calibration neighbours (here an exact match), with no chain caveat
    row = ["attention", 64, 32, 64, 2e10, 0, 0, 1, 96, "fusion:__ynn_fusion", 64]
    rates = Rates([row], [], {}, 1e11, 1e10)
    cost = price_op(op, rates)
    assert cost.compute_s == pytest.approx(work[0].flops / 2e10 + work[1].flops / 1e11, rel=1e-12)
    assert cost.note == ""
    # calibration: a kernel XLA fuses into one is a row of its two dots' flops; one it does not, none
    device = jax.devices("cpu")[0]
    _, fused = prepare_kernel("attention", _attention, (16, 64, 6, 32), (2, 16, 64, 6, 32), device)
    assert fused[:4] == ["attention", 64, 32, 64] and fused[5] == _attention_flops(16, 64, 6, 32)
    assert fused[7:] == [1, 96, "fusion:__ynn_fusion", 64]
    assert prepare_kernel("attention", _attention, (8, 36, 6, 64), (2, 8, 36, 6, 64), device) is None


def test_loop_kernels_are_rows_of_one_dot_of_a_cell_trip_and_their_kind_is_pooled():
    from jaxcost.perf.calibrate import CELL_DOTS, LOOP_TRIPS, _cell_trips, _elementwise_trips, prepare_kernel
    from jaxcost.perf.kernels import LOOP
    from jaxcost.perf.rates import NEIGHBOURS, POOLED, Rates, kernel_rate

    device = jax.devices("cpu")[0]
    # a batch-1 cell runs XLA's own dot (a matrix-vector product), a batch-4 one YNNPACK's; the row is
    # one of the trip's two dots: its features, and its share of the trip's flops (XLA's, one trip)
    for m, kind in ((1, "dot/loop"), (4, "fusion:__ynn_fusion/loop")):
        run, row = prepare_kernel("dot", _cell_trips, (LOOP_TRIPS, m, 128), ((128, 384),) * 2, device)
        assert row[:4] == ["dot", m, 128, 384] and row[9] == kind
        # XLA's flops of one trip: the two dots, their sum and the loop counter's few
        assert 0 <= CELL_DOTS * row[5] - (2 * 2 * m * 128 * 384 + m * 384) <= 8
        assert run().shape == (m, 128)
    _, row = prepare_kernel("memory", _elementwise_trips, (4096,), (2,), device)
    assert row[:3] == ["memory", 8 * 4096, 1] and row[9] == LOOP
    # pooled: a loop kind's rate is the inverse-distance mean of all its rows, so one slow row (a
    # matrix-vector product that ran at half speed) does not set the price of the dots around it
    rows = [["dot", 1, k, 4 * k, rate, 0, 0, 1, 1, "dot/loop", 1]
            for k, rate in ((128, 1e10), (256, 1e10), (384, 0.5e10), (512, 1e10), (768, 1e10), (1024, 1e10))]
    rates = Rates(rows, [], {}, 1e11, 1e10)
    point = (1, 400, 1600, 1, 1, 1)
    pooled = kernel_rate("dot", point, rows, {}, 1e11, POOLED, "dot/loop")
    assert rates.seconds("dot", point, 1e6, "dot/loop") == pytest.approx(1e6 / pooled, rel=1e-12)
    assert kernel_rate("dot", point, rows, {}, 1e11, NEIGHBOURS, "dot/loop") < pooled < 1e10


def test_the_in_program_factor_scales_kernels_not_fixed_costs():
    a = _two_matmuls()
    one = DevicePeaks("toy", "cpu", {"float32": 1e11}, 1e10, "measured", "", {}, 1e-6, FAULTS)
    two = DevicePeaks("toy", "cpu", {"float32": 1e11}, 1e10, "measured", "", {}, 1e-6, FAULTS, program_factor=2.0)
    r1, r2 = (jaxcost.program_roofline(a, p) for p in (one, two))
    for p1, p2 in zip(r1.points, r2.points, strict=True):
        if p1.name == FIRST_TOUCH:  # paging in fresh buffers is no kernel's work
            assert p2.time_s == p1.time_s
        else:  # kernel time doubles, the fixed cost per launch does not
            assert p2.time_s - 1e-6 == pytest.approx(2 * (p1.time_s - 1e-6), rel=1e-12)
    # other dtypes were not calibrated: no factor
    bf16 = DevicePeaks("toy", "cpu", {"float32": 1e11, "bfloat16": 2e11}, 1e10, "measured", "", {}, 1e-6,
                       program_factor=2.0)
    assert jaxcost.program_roofline(a, bf16, dtype="bfloat16").predicted_s == pytest.approx(
        jaxcost.program_roofline(a, dataclasses.replace(bf16, program_factor=1.0), dtype="bfloat16").predicted_s)


def test_median_over_passes_runs_long_calls_once_per_pass():
    import time

    from jaxcost.perf.stats import median_over_passes

    calls = {"short": 0, "long": 0}

    def short():
        calls["short"] += 1

    def long():
        calls["long"] += 1
        time.sleep(0.03)

    best = median_over_passes([short, long], passes=2, repeats=3, budget_s=0.0, long_s=0.02)
    # pass 1: a timed warm-up run, then 3 runs (short) or 1 (long); pass 2: 3 runs or 1
    assert calls == {"short": 1 + 3 + 3, "long": 1 + 1 + 1}
    assert 0 <= best[0] < 0.02 and best[1] >= 0.03


def test_median_over_passes_rounds_average_each_rounds_lowest_median(monkeypatch):
    from jaxcost.perf import stats

    # each call of time_runs returns the next list of runs: a warm-up, then per pass 3 runs
    script = iter([[9.0], [4.0, 2.0, 3.0], [5.0, 1.0, 6.0],   # round 1: pass medians 3 and 5 -> 3
                   [8.0, 7.0, 12.0], [30.0, 12.0, 9.0]])      # round 2: pass medians 8 and 12 -> 8
    monkeypatch.setattr(stats, "time_runs", lambda fn, repeats, budget_s=0.0, warmup=True: next(script))
    [t] = stats.median_over_passes([lambda: None], passes=2, repeats=3, budget_s=0.0, long_s=100.0, rounds=2)
    assert t == pytest.approx((3.0 * 8.0) ** 0.5)  # the geometric mean of the rounds' lowest medians


def test_the_suites_calibration_is_current_and_its_fits_are_reproduced():
    """The committed calibration the suite prices with (tests/conftest.py) is of this version, and
    fitting its table again gives its stored rate model: the same kinds, leave-one-out errors."""
    (entry,) = json.loads(pathlib.Path(FIXTURE_PEAKS).read_text()).values()
    assert entry["calibration"] == CALIBRATION_VERSION, (
        "tests/fixtures/peaks/peaks.json is of an older calibration: regenerate it with "
        "JAXCOST_CACHE_DIR=tests/fixtures/peaks jaxcost peaks --refresh --rounds 3")
    # and the loop kernels (version 14), the chain kernels (15), the wide 1x1 convs (16)
    assert entry["rounds"] == 3 and len(entry["kernel_table"]) == 193 + 12 + 5 + 2 + 6
    assert os.path.dirname(cache_path()) == os.environ["JAXCOST_CACHE_DIR"] != os.path.dirname(FIXTURE_PEAKS)
    refit = {(f.cls, f.impl): f for f in fit_rates(entry["kernel_table"])}
    stored = {(f["cls"], f["impl"]): f for f in entry["kernel_fits"]}
    assert refit.keys() == stored.keys() and len(refit) == 6
    for key, f in stored.items():
        assert refit[key].loo_median == pytest.approx(f["loo_median"], abs=0.01), key


def test_a_held_out_model_is_priced_near_its_measured_time_from_the_committed_calibration():
    """ResNet-50 at batch 8, never used to calibrate, priced from the committed calibration of a
    2-core VM: within 25 % of the time measured on that VM the same day
    (benchmarks/results/predict_heldout.json)."""
    rows = json.loads((pathlib.Path(__file__).parent.parent / "benchmarks/results/predict_heldout.json").read_text())["rows"]
    (measured,) = [r["measured_s"] for r in rows if (r["model"], r["batch"]) == ("resnet50", 8)]
    a = jaxcost.analyze(models.build_abstract("resnet50"), jax.ShapeDtypeStruct((8, 224, 224, 3), jnp.float32),
                        theory=False)
    peaks = get_peaks("cpu", measure=False)
    assert peaks.rounds == 3 and peaks.source == "measured"
    predicted = program_roofline(a, peaks).predicted_s
    assert predicted / measured == pytest.approx(1.0, abs=0.25)


def test_the_suites_program_factor_is_reproduced_by_pricing_its_programs_again():
    """The synthetic programs priced again by this code, with the committed calibration's rates
    and their stored times, give its stored in-program factor: pricing that changed since the
    calibration was made (and would leave a stale factor in every cached calibration) fails
    here until CALIBRATION_VERSION is bumped and the fixture regenerated."""
    from jaxcost.perf.programs import ProgramFactor, prepare_programs, program_rows

    peaks = DevicePeaks.from_dict(next(iter(json.loads(pathlib.Path(FIXTURE_PEAKS).read_text()).values())))
    programs = prepare_programs(jax.devices("cpu")[0])
    rows = program_rows(programs, [r[1] for r in peaks.program_rows], peaks.rates(), peaks.kernel_overhead_s)
    assert [r[0] for r in rows] == [r[0] for r in peaks.program_rows]
    for new, stored in zip(rows, peaks.program_rows):
        assert new[2:] == pytest.approx(stored[2:], rel=1e-9), new[0]
    assert ProgramFactor.fit(rows).factor == pytest.approx(peaks.program_factor, rel=1e-12)


def test_chain_kernels_calibrate_the_rate_a_chain_reads_its_weights_row_by_row():
    """A chain kernel's row is the weight bytes it reads row by row (kernels.streamed_weights: both
    3x3 convs' weights, once per row of the map) and their rate; the device's chain bandwidth is
    the median of those rates, and no class's flop rate counts them."""
    from jaxcost.perf.calibrate import CHAINS, calibration_kernels, prepare_kernel
    from jaxcost.perf.rates import Rates, class_rates

    (entry,) = json.loads(pathlib.Path(FIXTURE_PEAKS).read_text()).values()
    rows = [r for r in entry["kernel_table"] if r[0] == "chain"]
    assert [r[1] for r in rows] == [side * 2 * k * k * c * c * 4 for _, side, c, k in CHAINS] == [75_497_472, 33_030_144]
    assert all(r[5] == r[1] and r[4] == pytest.approx(r[1] / r[6]) and r[9] == "fusion:__ynn_fusion" for r in rows)
    rates = Rates(entry["kernel_table"], [], {}, 1e11, 1e10)
    assert rates.chain_bandwidth() == pytest.approx(sum(r[4] for r in rows) / 2)  # the median of two
    assert "chain" not in class_rates(entry["kernel_table"])
    assert Rates([], [], {}, 1e11, 1e10).chain_bandwidth() is None
    # the kernel as the calibration compiles it: one kernel, its row's bytes from its HLO
    kernel = next(k for k in calibration_kernels() if k[0] == "chain" and k[2] == (1, 7, 7, 256))
    _, row = prepare_kernel(*kernel, jax.devices()[0])
    assert row[:2] == ["chain", 33_030_144] and row[9] == "fusion:__ynn_fusion"
