"""Tests of jaxcost.perf: statistics, benchmarking, sweeps, writers, peaks."""

import json

import jax
import jax.numpy as jnp
import pytest

from jaxcost.perf import (
    CSV_COLUMNS,
    DEFAULT_OPTION_SETS,
    BenchmarkResult,
    DevicePeaks,
    TimingStats,
    benchmark,
    get_peaks,
    published_peaks,
    results_from_csv,
    results_from_json,
    results_table,
    results_to_csv,
    results_to_json,
    sweep,
)
from jaxcost.perf import peaks as peaks_mod
from jaxcost.perf.calibrate import CALIBRATION_VERSION

# ------------------------------------------------------------------ stats


def test_stats_even_list():
    s = TimingStats.from_samples([4.0, 1.0, 3.0, 2.0])
    assert s.n == 4 and s.min == 1.0
    assert s.median == 2.5 and s.mean == 2.5
    assert s.q1 == 1.75 and s.q3 == 3.25 and s.iqr == 1.5
    assert s.cv == pytest.approx((1.25**0.5) / 2.5)


def test_stats_odd_list():
    s = TimingStats.from_samples([5, 1, 9, 3, 7])
    assert s.median == 5 and s.q1 == 3 and s.q3 == 7 and s.iqr == 4


def test_stats_single_and_constant():
    s = TimingStats.from_samples([0.2])
    assert (s.n, s.min, s.median, s.iqr, s.cv) == (1, 0.2, 0.2, 0.0, 0.0)
    assert TimingStats.from_samples([1.0] * 7).cv == 0.0


def test_stats_empty_raises():
    with pytest.raises(ValueError, match="at least one"):
        TimingStats.from_samples([])


# ------------------------------------------------------------------ benchmark


def _mm(a, b):
    return a @ b


def test_tiny_real_benchmark():
    a = jnp.ones((32, 32))
    r = benchmark(_mm, a, a, time_budget_s=0.001, min_repeats=3, warmup=1, batch_size=32)
    assert r.error is None and r.backend == "cpu"
    assert r.stats.n >= 3 and r.latency_s == r.stats.median
    assert r.compile_s > 0 and r.lower_s > 0
    assert r.throughput == pytest.approx(32 / r.latency_s)


def test_benchmark_shape_dtype_struct_and_max_repeats():
    sds = jax.ShapeDtypeStruct((16, 16), jnp.float32)
    r = benchmark(_mm, sds, sds, time_budget_s=10.0, min_repeats=2, max_repeats=4, warmup=0)
    assert r.stats.n == 4  # stops at max_repeats before the budget
    assert r.throughput is None


def test_benchmark_static_argnums():
    r = benchmark(lambda x, k: x * k, jnp.ones(4), 3, static_argnums=1,
                  time_budget_s=0.0, min_repeats=1, warmup=0)
    assert r.stats.n == 1


def test_default_option_sets_accepted_on_cpu():
    results = sweep(lambda b: (jnp.ones((b, 8)), jnp.ones((8, 8))), _mm, batches=(2,),
                    backends=["cpu"], option_sets=DEFAULT_OPTION_SETS["cpu"],
                    time_budget_s=0.0, min_repeats=1, warmup=0, quiet=True)
    assert [r.options_name for r in results] == list(DEFAULT_OPTION_SETS["cpu"])
    assert all(r.error is None for r in results), [r.error for r in results]


def test_rejected_option_is_recorded_not_raised():
    results = sweep(lambda b: (jnp.ones((b, 8)), jnp.ones((8, 8))), _mm, batches=(1,),
                    backends=["cpu"], option_sets={"bogus": {"xla_no_such_option": 1}},
                    time_budget_s=0.0, min_repeats=1, warmup=0, quiet=True)
    assert len(results) == 1 and results[0].stats is None
    assert "xla_no_such_option" in results[0].error


def test_sweep_records_failure_and_continues():
    def make_args(b):
        if b == 32:
            raise MemoryError("pretend out of memory at batch 32")
        return (jnp.ones((b, 8)), jnp.ones((8, 8)))

    results = sweep(make_args, _mm, batches=(1, 32, 8), backends=["cpu", "tpu"],
                    time_budget_s=0.0, min_repeats=1, warmup=0, quiet=True)
    assert [r.batch_size for r in results] == [1, 32, 8]  # tpu absent: skipped
    assert results[0].error is None and results[2].error is None
    assert results[1].error.startswith("MemoryError") and results[1].latency_s is None


def test_sweep_failure_inside_fn():
    def fn(x):
        if x.shape[0] == 32:
            raise RuntimeError("no batch 32")
        return x * 2

    results = sweep(lambda b: (jnp.ones((b,)),), fn, time_budget_s=0.0, min_repeats=1,
                    warmup=0, quiet=True)
    assert [r.error is None for r in results] == [True, True, False]


# ------------------------------------------------------------------ writers


def _fake_results():
    stats = TimingStats.from_samples([0.001, 0.002, 0.003])
    ok = BenchmarkResult("cpu", "cpu", 8, 0.5, 0.1, stats, stats.median, 8 / stats.median,
                         {"xla_disable_hlo_passes": "fusion"}, "no-fusion", None)
    bad = BenchmarkResult("cpu", "cpu", 32, None, None, None, None, None, {}, "default",
                          "MemoryError: oom")
    return [ok, bad]


def test_json_round_trip(tmp_path):
    res = _fake_results()
    p = tmp_path / "r.json"
    results_to_json(res, str(p))
    raw = json.loads(p.read_text())
    assert set(raw[0]) == {f for f in BenchmarkResult.__dataclass_fields__}
    assert set(raw[0]["stats"]) == {"n", "min", "median", "mean", "q1", "q3", "iqr", "cv"}
    assert results_from_json(str(p)) == res


def test_csv_round_trip(tmp_path):
    res = _fake_results()
    p = tmp_path / "r.csv"
    results_to_csv(res, str(p))
    header = p.read_text().splitlines()[0].split(",")
    assert header == CSV_COLUMNS
    back = results_from_csv(str(p))
    assert back[1] == res[1]
    assert back[0].stats == res[0].stats and back[0].compiler_options == res[0].compiler_options
    assert back[0].throughput == pytest.approx(res[0].throughput)


def test_results_table():
    t = results_table(_fake_results())
    assert t.row_count == 2


# ------------------------------------------------------------------ peaks


@pytest.mark.parametrize("kind, expect", [
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ("NVIDIA H200", "NVIDIA H200 SXM"),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB SXM"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM"),
    ("TPU v4", "TPU v4"),
    ("TPU v5 lite", "TPU v5e"),
    ("TPU v5e", "TPU v5e"),
    ("TPU v5p", "TPU v5p"),
    ("TPU v6 lite", "TPU v6e"),
])
def test_published_lookup(kind, expect):
    p = published_peaks(kind)
    assert p is not None and p.device_kind == expect and p.source == "published"
    assert p.bandwidth_bytes_per_s > 0 and p.flops_per_s.get("bfloat16", 0) > 0


def test_published_values():
    h100 = published_peaks("NVIDIA H100 80GB HBM3")
    assert h100.flops_per_s["float32"] == 67e12 and h100.bandwidth_bytes_per_s == 3.35e12
    assert published_peaks("cpu") is None


def test_peaks_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCOST_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_measure(backend=None, **kw):
        calls.append(backend)
        return DevicePeaks("cpu", "cpu", {"float32": 1e11 * len(calls)}, 1e10, "measured",
                           calibration=CALIBRATION_VERSION)

    monkeypatch.setattr(peaks_mod, "measure_peaks", fake_measure)
    with pytest.raises(LookupError):
        get_peaks(measure=False)  # nothing cached, CPU has no published peak
    p1 = get_peaks()
    assert calls == [None] and p1.flops_per_s["float32"] == 1e11
    assert (tmp_path / "peaks.json").exists()
    assert get_peaks() == p1 and get_peaks(measure=False) == p1 and len(calls) == 1
    p2 = get_peaks(refresh=True)
    assert len(calls) == 2 and p2.flops_per_s["float32"] == 2e11
    assert get_peaks() == p2
    data = json.loads((tmp_path / "peaks.json").read_text())
    assert list(data) == ["cpu:cpu"]
    # an entry calibrated by an older version is measured again (if allowed)
    data["cpu:cpu"]["calibration"] = CALIBRATION_VERSION - 1
    (tmp_path / "peaks.json").write_text(json.dumps(data))
    assert get_peaks(measure=False).calibration == CALIBRATION_VERSION - 1 and len(calls) == 2
    assert get_peaks().flops_per_s["float32"] == 3e11 and len(calls) == 3


def test_peaks_cache_measures_again_for_more_rounds(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCOST_CACHE_DIR", str(tmp_path))
    calls = []
    measure_peaks = peaks_mod.measure_peaks

    def fake_measure(backend=None, rounds=1, **kw):
        calls.append(rounds)
        return DevicePeaks("cpu", "cpu", {"float32": 1e11}, 1e10, "measured", calibration=CALIBRATION_VERSION,
                           rounds=rounds)

    monkeypatch.setattr(peaks_mod, "measure_peaks", fake_measure)
    assert get_peaks().rounds == 1 and calls == [1]
    # a calibration of fewer rounds than asked is measured again; one of as many or more is kept
    assert get_peaks(rounds=3).rounds == 3 and calls == [1, 3]
    assert get_peaks(rounds=2).rounds == 3 and get_peaks().rounds == 3 and calls == [1, 3]
    assert get_peaks(measure=False, rounds=5).rounds == 3 and calls == [1, 3]  # not allowed to measure: the cache
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        measure_peaks(rounds=0)


def test_peaks_from_dict_ignores_unknown_keys():
    d = DevicePeaks("cpu", "cpu", {"float32": 1e11}, 1e10, "measured").to_dict()
    assert DevicePeaks.from_dict({**d, "added_by_a_newer_version": 1}) == DevicePeaks.from_dict(d)


def test_sweep_takes_modules():
    import models

    model = models.build_abstract("conv_bn_relu")
    res = sweep(lambda b: (jax.ShapeDtypeStruct((b, 16, 16, 64), jnp.float32),), model, batches=(1, 2),
                quiet=True, time_budget_s=0.0, min_repeats=1, warmup=0)
    assert [r.error for r in res] == [None, None] and [r.batch_size for r in res] == [1, 2]


def test_measure_peaks_tiny(monkeypatch):
    """The whole calibration path on fewer kernels and programs (the full one takes 26 s)."""
    from jaxcost.perf import calibrate, programs

    monkeypatch.setattr(calibrate, "KERNELS_PER_CLASS", {"conv": 14, "conv1x1": 12, "grouped": 3, "depthwise": 3,
                                                        "dot": 12, "window": 2, "attention": 2})
    monkeypatch.setattr(calibrate, "LARGE_KERNELS", {"conv": 1, "conv1x1": 0, "dot": 0})
    monkeypatch.setattr(calibrate, "SMALL_MAP_KERNELS", {})
    monkeypatch.setattr(calibrate, "UNPADDED_KERNELS", 2)
    monkeypatch.setattr(programs, "PROGRAMS", 4)
    p = peaks_mod.measure_peaks(sizes=(64,), repeats=1, stream_elements=1024)
    assert p.source == "measured" and p.flops_per_s["float32"] > 0 and p.bandwidth_bytes_per_s > 0
    assert set(p.kernel_flops_per_s) == {"conv", "conv1x1", "grouped", "depthwise", "dot", "window", "attention"}
    # memory and chain rows: bytes/s
    assert {r[0] for r in p.kernel_table} == {*p.kernel_flops_per_s, "memory", "fault", "chain"}
    assert p.rates().chain_bandwidth() > 0
    assert all(r[4] == pytest.approx(r[5] / r[6]) for r in p.kernel_table if r[0] != "fault")
    assert all(r[6] >= 0 for r in p.kernel_table if r[0] == "fault")  # paging-in seconds
    assert all(r > 0 for r in p.kernel_flops_per_s.values()) and 0 < p.kernel_overhead_s < 1e-3
    assert p.calibration == CALIBRATION_VERSION
    # a rate model for every class with enough kernels, each with its leave-one-out error
    fitted = {f["cls"] for f in p.kernel_fits}
    assert {"conv", "conv1x1", "dot"} <= fitted and all(0 <= f["loo_median"] < 10 for f in p.kernel_fits)
    assert all(1e-8 < p.rates().seconds(c, (196, 288, 64, 9, 1, 196), 7.2e6, "fusion:__ynn_fusion") < 1
               for c in fitted)
    # the synthetic programs, timed whole in the same passes, and the in-program factor from them
    from jaxcost.perf.programs import PROGRAMS, ProgramFactor

    assert [r[0] for r in p.program_rows] == list(range(PROGRAMS))
    assert all(r[1] > 0 and r[2] > 0 and r[3] >= 0 and r[4] >= 1 for r in p.program_rows)
    assert p.program_factor == ProgramFactor.fit(p.program_rows).factor and 0.2 < p.program_factor < 5


def test_benchmark_materializes_rng_key_state():
    """Models with dropout carry PRNG keys in their state: abstract keys become real keys."""
    import models
    from jaxcost.perf.timing import benchmark as bench_module

    model = models.build_abstract("alexnet", num_classes=10)
    r = bench_module(model, jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32), time_budget_s=0.0,
                     min_repeats=1, warmup=0)
    assert r.error is None and r.stats.n >= 1


def test_progress_is_silent_when_not_on_a_terminal(capsys):
    from jaxcost.report.progress import progress, status

    with progress(3, "peaks") as step, status("compiling"):
        for label in ("matmul", "bandwidth", "kernels"):
            step(label)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_calibration_kernels_are_synthetic_and_spread():
    from jaxcost.perf.calibrate import (
        ATTENTION_GRID,
        CHAINS,
        CONV_GRID,
        KERNELS_PER_CLASS,
        LARGE_FLOPS,
        LARGE_KERNELS,
        LARGE_MAP_BYTES,
        LARGE_MAP_FLOPS,
        LARGE_MAP_KERNELS,
        LOOP_CELLS,
        LOOP_MEMORY_SIZES,
        LOOP_TRIPS,
        MAX_FLOPS,
        MEMORY_SIZES,
        MIN_FLOPS,
        SMALL_MAP_KERNELS,
        UNPADDED_GRID,
        UNPADDED_KERNELS,
        UNPADDED_MAX_FLOPS,
        WIDE_BYTES,
        WIDE_KERNELS,
        _attention_flops,
        _cell_trips,
        _chain,
        _conv_flops,
        _elementwise_trips,
        calibration_kernels,
        spread_subset,
    )

    kernels = calibration_kernels()
    assert len(kernels) == (sum(KERNELS_PER_CLASS.values()) + sum(LARGE_KERNELS.values())
                            + sum(SMALL_MAP_KERNELS.values()) + sum(LARGE_MAP_KERNELS.values()) + UNPADDED_KERNELS
                            + sum(WIDE_KERNELS.values()) + len(MEMORY_SIZES) + len(LOOP_CELLS) + len(LOOP_MEMORY_SIZES)
                            + len(CHAINS))
    # chain kernels: pairs of equal convs on one image's small map, the second fed by the first
    chains = [k for k in kernels if k[1] is _chain]
    assert [(cls, x, w) for cls, _, x, w in chains] == [("chain", (b, s, s, c), ((k, k, c, c),) * 2) for b, s, c, k in CHAINS]
    kernels = [k for k in kernels if k[1] is not _chain]
    # loop kernels: recurrent-cell trips of two dots on two weights, batch 1-64, k 128-1024, N 128-4096
    cells = [k for k in kernels if k[1] is _cell_trips]
    assert [(x[1], x[2], w) for _, _, x, w in cells] == [(m, k, ((k, g * k),) * 2) for m, k, g in LOOP_CELLS]
    assert {x[0] for _, _, x, _ in cells} == {LOOP_TRIPS}
    assert (min(m for m, _, _ in LOOP_CELLS), max(m for m, _, _ in LOOP_CELLS)) == (1, 64)
    assert (min(k for _, k, _ in LOOP_CELLS), max(k for _, k, _ in LOOP_CELLS)) == (128, 1024)
    assert (min(k * g for _, k, g in LOOP_CELLS), max(k * g for _, k, g in LOOP_CELLS)) == (128, 4096)
    assert [x[0] for _, fn, x, _ in kernels if fn is _elementwise_trips] == list(LOOP_MEMORY_SIZES)
    kernels = [k for k in kernels if k[1] not in (_cell_trips, _elementwise_trips)]
    # unpadded dense convs (their own kind of kernel): strides 1 and 2, windows 2 to 7, both batches
    unpadded = [k for k in kernels if k[0] == "conv" and k[1].keywords.get("padding") == "VALID"]
    assert len(unpadded) == UNPADDED_KERNELS
    assert {p.keywords["stride"] for _, p, _, _ in unpadded} == {1, 2} and {w[0] for *_, w in unpadded} == {2, 3, 5, 7}
    assert {x[0] for _, _, x, _ in unpadded} == {1, 8}
    for _, p, (b, side, _, ci), (k, _, _, co) in unpadded:
        out = (side - k) // p.keywords["stride"] + 1
        assert (b, out, ci, co, k, p.keywords["stride"]) in UNPADDED_GRID
        assert MIN_FLOPS <= _conv_flops(b, out, ci, co, k, 1) <= UNPADDED_MAX_FLOPS
    kernels = [k for k in kernels if k not in unpadded]
    assert {k[0] for k in kernels} == {*CONV_GRID, "dot", "window", "attention", "memory"}
    # 1x1 convs on both sides of the weights a product on one thread has (rates.SERIAL_CLASSES): the
    # spread picks' and WIDE_KERNELS more, every power of two of weights from 256 KiB to 2 MiB
    wide = [w for cls, _, _, w in kernels if cls == "conv1x1" and 4 * w[2] * w[3] >= WIDE_BYTES]
    assert len(wide) >= WIDE_KERNELS["conv1x1"] + 4
    assert {4 * w[2] * w[3] for w in wide} >= {256 << 10, 512 << 10, 1 << 20, 2 << 20}
    depthwise = [k for k in kernels if k[0] == "depthwise"]
    assert {w[0] for _, _, _, w in depthwise} == {3, 5, 7}  # kernel sizes are a dimension of the grid
    assert {x[1] for _, _, x, _ in depthwise} >= {3, 5, 56}  # from maps smaller than the window up
    # windows larger than the map (XLA's own emitter on CPU): the spread picks and as many more
    assert sum(x[1] < w[0] for _, _, x, w in depthwise) >= SMALL_MAP_KERNELS["depthwise"]
    assert len({(x, w) for _, _, x, w in depthwise}) == len(depthwise)
    # max-pools of every window CNNs use
    pools = [k for k in kernels if k[0] == "window"]
    assert {(p.keywords["k"], p.keywords["stride"]) for _, p, _, _ in pools} == {(2, 2), (3, 1), (3, 2)}
    # attention over as many sequences and tokens as the grid spans, q and (k, v) of one shape
    attention = [k for k in kernels if k[0] == "attention"]
    assert all(x in ATTENTION_GRID and w == (2, *x) for _, _, x, w in attention)
    assert all(MIN_FLOPS <= _attention_flops(*x) <= MAX_FLOPS["attention"] for _, _, x, _ in attention)
    assert len({x[1] for _, _, x, _ in attention}) >= 4 and len({x[0] * x[2] for _, _, x, _ in attention}) >= 6
    large, large_map = {}, {}
    for cls, _, (b, hw, _, cin), (k, _, ci, cout) in (k for k in kernels if k[0] in CONV_GRID):
        groups = cin // ci
        flops = _conv_flops(b, hw, ci, cout // groups, k, groups)
        assert MIN_FLOPS <= flops <= max(MAX_FLOPS[cls], LARGE_FLOPS.get(cls, 0), LARGE_MAP_FLOPS)
        past = k > 1 and 4 * b * hw * hw * cin > LARGE_MAP_BYTES and cls in LARGE_MAP_KERNELS
        large[cls] = large.get(cls, 0) + (flops > MAX_FLOPS[cls] and not past)
        large_map[cls] = large_map.get(cls, 0) + past
    assert large == {"conv": LARGE_KERNELS["conv"], "conv1x1": LARGE_KERNELS["conv1x1"], "grouped": 0, "depthwise": 0}
    # windowed grouped convs whose input is larger than any of the spread picks' (a step past a cache)
    assert large_map["grouped"] == LARGE_MAP_KERNELS["grouped"]
    grid = [(a, b) for a in (1, 2, 4, 8, 16) for b in (1, 2, 4, 8, 16)]
    pick = spread_subset(grid, 5)
    assert len(set(pick)) == 5 and pick == spread_subset(grid, 5)  # deterministic, no repeats
    assert len({a for a, _ in pick}) >= 4 and len({b for _, b in pick}) >= 4  # spread along every axis


def test_kernel_rate_interpolates_among_neighbours():
    from jaxcost.perf.rates import kernel_rate

    table = [["depthwise", 100, 9, 1, 1e9, 0, 0, 9, 64], ["depthwise", 100, 49, 1, 4e9, 0, 0, 49, 64],
             ["conv", 100, 9, 64, 5e10, 0, 0, 9, 1]]
    assert kernel_rate("depthwise", (100, 9, 1, 9, 64), table, {}, 1e12) == 1e9  # an exact match
    mid = kernel_rate("depthwise", (100, 21, 1, 21, 64), table, {}, 1e12, neighbours=2)
    assert 1e9 < mid < 4e9  # between its two neighbours (7x7 taps are not priced like 3x3)
    assert kernel_rate("grouped", (100, 9, 8, 9, 4), table, {"grouped": 7e9}, 1e12) == 7e9  # class rate
    old = [["dot", 64, 64, 64, 2e10, 0, 0]]  # a table cached before taps and groups were recorded
    assert kernel_rate("dot", (64, 64, 64, 1, 1), old, {}, 1e12) == 2e10


def test_memory_bound_kernels_use_the_bandwidth_of_their_size():
    from jaxcost.perf.rates import memory_bandwidth

    table = [["memory", 8_192, 1, 1, 2e9, 8_192, 4e-6, 1, 1], ["memory", 8_388_608, 1, 1, 4e10, 8_388_608, 2e-4, 1, 1]]
    assert memory_bandwidth(8_192, table, 1e11) == 2e9  # a small kernel pays its fixed costs
    assert memory_bandwidth(8_388_608, table, 1e11) == 4e10
    assert 2e9 < memory_bandwidth(262_144, table, 1e11) < 4e10
    assert memory_bandwidth(1e6, [], 1e11) == 1e11  # no calibration: the STREAM bandwidth
