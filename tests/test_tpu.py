"""TPU targets on a machine without a TPU: chip specs, compile targets, HBM fit, and
jaxcost's rules against XLA:TPU's own cost analysis.

The fixtures (``tests/fixtures/tpu``) are optimized HLO compiled for TPU v4, v5e, v5p
and v6e by libtpu's compile-only devices, with XLA:TPU's ``cost_analysis()`` and
``memory_analysis()``: they check the rules without libtpu. The last tests compile
for real (deviceless) and are skipped when libtpu is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import PartitionSpec as P

import jaxcost
from jaxcost import hardware
from jaxcost.compiler.hlo import parse_shape
from jaxcost.compiler.ops import price_module
from jaxcost.compiler.totals import MemoryStats
from jaxcost.hardware import CHIPS, CompileTarget, GiB, hbm_fit, parse_target
from jaxcost.perf.peaks import chip_peaks

FIXTURES = Path(__file__).parent / "fixtures" / "tpu"
CASES = sorted(p.name[: -len(".hlo.txt")] for p in FIXTURES.glob("*.hlo.txt"))


def load(name: str) -> tuple[str, dict]:
    return (FIXTURES / f"{name}.hlo.txt").read_text(), json.loads((FIXTURES / f"{name}.json").read_text())


def price_for_target(text: str, target: str):
    """Price TPU HLO as the generation it was compiled for pads tuple index tables."""
    return price_module(text, tpu_table_alignment=parse_target(target).chip.tuple_table_alignment)


# -- chips and targets -------------------------------------------------------------------


def test_chip_figures_are_the_published_ones():
    v5e = CHIPS["v5e"]
    assert (v5e.bf16_flops, v5e.int8_ops, v5e.hbm_bytes, v5e.hbm_bandwidth) == (197e12, 393e12, 16 * GiB, 819e9)
    assert v5e.ici_links == 4 and v5e.ici_link_bandwidth == 100e9
    assert v5e.ridge == pytest.approx(240.537, abs=1e-3)  # 197e12 / 819e9 FLOP per byte
    assert (CHIPS["v4"].bf16_flops, CHIPS["v4"].hbm_bytes, CHIPS["v4"].ici_links) == (275e12, 32 * GiB, 6)
    assert (CHIPS["v5p"].bf16_flops, CHIPS["v5p"].hbm_bandwidth, CHIPS["v5p"].ici_link_bandwidth) == (
        459e12, 2765e9, 200e9)
    assert (CHIPS["v6e"].bf16_flops, CHIPS["v6e"].int8_ops, CHIPS["v6e"].hbm_bytes) == (918e12, 1836e12, 32 * GiB)
    assert all(chip.source.startswith("Google Cloud TPU docs") for chip in CHIPS.values())
    v4 = chip_peaks(CHIPS["v4"], share=2)  # one of the two TensorCores
    assert (v4.flops_per_s["bfloat16"], v4.bandwidth_bytes_per_s, v4.source) == (137.5e12, 600e9, "published")


def test_parse_target():
    assert parse_target("tpu-v5e") == CompileTarget(CHIPS["v5e"], "2x2")
    t = parse_target("tpu-v5e:2x4")
    assert (t.topology, t.chips, t.device_count, t.name) == ("2x4", 8, 8, "tpu-v5e:2x4")
    v4 = parse_target("tpu-v4:2x2x2")
    assert (v4.chips, v4.device_count) == (8, 16)  # one compile-only device per TensorCore
    assert parse_target("TPU-V5P").topology == "2x2x1"
    assert parse_target("v6e:2x4").chip is CHIPS["v6e"]


def test_unknown_chip_and_bad_topology_are_one_line_errors():
    with pytest.raises(ValueError, match=r"unknown TPU chip 'v9'.*known: tpu-v4, tpu-v5e, tpu-v5p, tpu-v6e"):
        parse_target("tpu-v9:2x2")
    with pytest.raises(ValueError, match=r"bad topology '2x2' for tpu-v4: expected 3 positive sizes"):
        parse_target("tpu-v4:2x2")


def test_without_libtpu_devices_say_what_to_install(monkeypatch):
    monkeypatch.setattr(hardware, "libtpu_available", lambda: False)
    monkeypatch.setattr(hardware, "_TOPOLOGIES", {})
    with pytest.raises(RuntimeError, match=r"needs libtpu: pip install 'jaxcost\[tpu\]'") as err:
        parse_target("tpu-v5e").devices()
    assert "\n" not in str(err.value)


def test_quiet_stderr_swallows_file_descriptor_2(capfd):
    with hardware.quiet_stderr():
        os.write(2, b"libtpu says hello\n")
    assert capfd.readouterr().err == ""
    assert hardware.LAST_STDERR == "libtpu says hello\n"


# -- HBM fit -------------------------------------------------------------------------------


def test_hbm_fit_from_a_fixture():
    _, record = load("v5e_matmul")
    m = record["memory_analysis"]
    stats = MemoryStats(m["argument_size_in_bytes"], m["output_size_in_bytes"], m["temp_size_in_bytes"],
                        m["alias_size_in_bytes"], m["generated_code_size_in_bytes"], available=True)
    fit = hbm_fit(stats, "tpu-v5e")
    assert fit.fits and fit.needed_bytes == 1310720 + 524288 + 148480 and fit.capacity_bytes == 16 * GiB
    assert str(fit) == "fits: 1.9 MiB = 0.01% of 16 GiB per device (v5e)"
    v4 = hbm_fit(stats, CHIPS["v4"])
    assert v4.capacity_bytes == 16 * GiB  # 32 GiB per chip, two devices


def test_hbm_fit_names_the_largest_buffers_when_it_does_not_fit():
    text, _ = load("v5e_matmul")
    stats = MemoryStats(20 * GiB, 1 * GiB, 0, 0, 0, available=True)
    fit = hbm_fit(stats, "tpu-v5e", hlo_text=text, top=1)
    assert not fit.fits and fit.needed_bytes == 21 * GiB
    assert fit.largest == (("b.1", 1048576),)  # the weight, bf16[512,1024]
    assert str(fit) == "does not fit: needs 21.00 of 16 GiB per device (v5e); largest buffers: b.1 0.00 GiB"


# -- the rules against XLA:TPU --------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_flops_and_transcendentals_equal_xla_tpu(name):
    text, record = load(name)
    xla = record["cost_analysis"]
    total = price_module(text).xla_total
    assert total.flops == xla["flops"]
    assert total.transcendentals == xla.get("transcendentals", 0.0)


@pytest.mark.parametrize("name", CASES)
def test_bytes_equal_xla_tpu(name):
    text, record = load(name)
    module = price_for_target(text, record["target"])
    assert module.unknown == {}
    assert module.xla_total.bytes_accessed == record["cost_analysis"]["bytes accessed"]


def test_tiled_layouts_are_priced_padded():
    shape, _ = parse_shape("f32[3,5]{1,0:T(4,128)}")
    assert (shape.tile, shape.bytes) == ((4, 128), 4 * 128 * 4)
    image, _ = parse_shape("f32[8,224,224,3]{2,1,3,0:T(8,128)}")  # minor dims 224 -> 256, 224
    assert image.bytes == 256 * 224 * 3 * 8 * 4
    bf16, _ = parse_shape("bf16[1024,1024]{1,0:T(8,128)(2,1)S(1)}")
    assert (bf16.tile, bf16.memory_space, bf16.bytes) == ((8, 128), 1, 2 * 1024 * 1024)
    flag, _ = parse_shape("(f32[64]{0:T(128)S(1)}, f32[64]{0:T(128)}, u32[]{:S(2)})")
    assert flag.index_table_bytes == flag.table_bytes(512) == 512  # 4-byte entries padded: v4, v5e
    assert flag.table_bytes(CHIPS["v5p"].tuple_table_alignment) == 32  # v5p, v6e
    untiled, _ = parse_shape("(f32[64]{0}, f32[64]{0}, u32[])")
    assert untiled.index_table_bytes == 24  # CPU/GPU: 8-byte pointers


def test_async_copy_and_slice_rules():
    """An asynchronous copy of X bytes costs 4X + 4 KiB + 512 on TPU; an asynchronous
    slice of S bytes 3S + 512 (the fixture has three, and a free ConcatBitcast)."""
    text, record = load("v5e_conv_chain")
    module = price_for_target(text, record["target"])
    by_op: dict[str, float] = {}
    for op in module.ops:
        by_op[op.opcode] = by_op.get(op.opcode, 0.0) + op.bytes_accessed
    starts = [op for op in module.ops if op.opcode == "slice-start"]
    assert len(starts) == 3
    slice_bytes = sum(op.instruction.shape.tuple_shapes[1].bytes for op in starts)
    assert by_op["slice-start"] + by_op["slice-done"] == 3 * slice_bytes + 3 * 512
    assert module.xla_total.bytes_accessed == record["cost_analysis"]["bytes accessed"]


# -- compiling for TPU without a TPU (needs libtpu) ------------------------------------------

needs_libtpu = pytest.mark.skipif(not hardware.libtpu_available(),
                                  reason="libtpu not installed: pip install 'jaxcost[tpu]'")


@needs_libtpu
def test_deviceless_compile_single_chip():
    target = parse_target("tpu-v5e")
    devices = target.devices()
    assert len(devices) == target.device_count == 4 and devices[0].device_kind == "TPU v5 lite"
    a, b = target.place((jax.ShapeDtypeStruct((256, 512), jnp.bfloat16),
                         jax.ShapeDtypeStruct((512, 1024), jnp.bfloat16)))
    assert a.sharding.device_set == {devices[0]}
    compiled = jax.jit(lambda a, b: a @ b).lower(a, b).compile()
    xla = compiled.cost_analysis()
    assert xla["flops"] == 2 * 256 * 512 * 1024
    assert price_module(compiled.as_text()).xla_total.flops == xla["flops"]
    assert jax.devices()[0].platform == "cpu"


@needs_libtpu
def test_deviceless_compile_sharded_mlp():
    target = parse_target("tpu-v5e:2x4")
    mesh = target.mesh({"data": 2, "model": 4})
    assert dict(mesh.shape) == {"data": 2, "model": 4}
    args = (jax.ShapeDtypeStruct((64, 512), jnp.bfloat16), jax.ShapeDtypeStruct((512, 2048), jnp.bfloat16),
            jax.ShapeDtypeStruct((2048, 512), jnp.bfloat16))
    placed = target.place(args, specs=(P("data", None), P(None, "model"), P("model", None)),
                          axes={"data": 2, "model": 4})
    compiled = jax.jit(lambda x, w1, w2: jax.nn.relu(x @ w1) @ w2).lower(*placed).compile()
    text = compiled.as_text()
    assert "all-reduce" in text
    # per device: two (32 x 512) @ (512 x 512) products, plus the relu and the all-reduce's adds
    xla = compiled.cost_analysis()
    matmuls = 2 * (2 * 32 * 512 * 512)
    assert matmuls < xla["flops"] < 1.01 * matmuls
    assert price_module(text).xla_total.flops == xla["flops"]
    with pytest.raises(ValueError, match="mesh axes"):
        target.mesh({"data": 3})


@needs_libtpu
def test_analyze_for_a_tpu_target():
    """analyze(target=...): compiled for v5e without a TPU, priced bit for bit (bytes too,
    with the chip's tuple-table alignment), labelled with the target; sharded over a mesh with
    in_specs, the figures are per device and the all-reduce is there."""
    S = jax.ShapeDtypeStruct
    a = jaxcost.analyze(lambda x, w: jax.nn.relu(x @ w), S((256, 512), jnp.bfloat16), S((512, 1024), jnp.bfloat16),
                        params_argnums=(1,), target="tpu-v5e")
    assert (a.backend, a.device_kind, a.target) == ("tpu", "TPU v5 lite", "tpu-v5e:2x2")
    t = a.module.xla_total
    assert (t.flops, t.transcendentals, t.bytes_accessed) == (
        a.compiler.flops, a.compiler.transcendentals, a.compiler.bytes_accessed)
    assert a.params == 512 * 1024 and a.explain().total_flops == a.compiler.flops
    roof = jaxcost.program_roofline(a)  # the chip's published peaks, per device
    matmul = 2 * 256 * 512 * 1024 / 197e12
    assert roof.device_kind == "TPU v5e" and roof.dtype == "bfloat16"
    assert matmul <= roof.predicted_s < 10 * matmul
    args = (S((64, 512), jnp.bfloat16), S((512, 2048), jnp.bfloat16), S((2048, 512), jnp.bfloat16))
    sharded = jaxcost.analyze(lambda x, w1, w2: jax.nn.relu(x @ w1) @ w2, *args, target="tpu-v5e:2x4",
                              in_specs=(P("data", None), P(None, "model"), P("model", None)),
                              mesh={"data": 2, "model": 4})
    assert sharded.target == "tpu-v5e:2x4" and any(op.opcode.startswith("all-reduce") for op in sharded.ops)
    assert sharded.module.xla_total.bytes_accessed == sharded.compiler.bytes_accessed
    assert 2 * (2 * 32 * 512 * 512) < sharded.compiler.flops < 1.01 * 2 * (2 * 32 * 512 * 512)
    with pytest.raises(jaxcost.AnalysisError, match="unknown|known"):
        jaxcost.analyze(jnp.sin, S((4,), jnp.float32), target="tpu-v9z")
