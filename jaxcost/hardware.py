"""Chips and compile targets: analyse a TPU program on a machine that has no TPU.

A :class:`Chip` holds one generation's published peaks. A :class:`CompileTarget`
(``parse_target("tpu-v5e:2x4")``) builds XLA's *compile-only* devices for a slice
of that generation with ``libtpu`` (``pip install 'jaxcost[tpu]'``): arguments
placed on them (:meth:`CompileTarget.place`) lower and compile through the real
TPU compiler on a CPU-only machine, giving the TPU's optimized HLO,
``cost_analysis()`` and ``memory_analysis()``; ``jax.devices()`` stays the CPU.

    >>> target = parse_target("tpu-v5e:2x4")
    >>> args = target.place((x, w), specs=(P("data", None), P(None, "model")),
    ...                     axes={"data": 2, "model": 4})              # doctest: +SKIP
    >>> compiled = jax.jit(f).lower(*args).compile()                    # doctest: +SKIP

Roofline of one chip: time >= max(flops / peak, bytes / HBM bandwidth); the ridge
point ``peak / bandwidth`` (FLOP per byte) separates memory-bound from compute-bound
(Williams, Waterman, Patterson, "Roofline", CACM 2009). v5e: 197e12 / 819e9 = 240.5.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

GiB = 2 ** 30
TERA = 1e12
GB = 1e9

INSTALL_HINT = "pip install 'jaxcost[tpu]' (or: pip install \"jax[tpu]==<your jax version>\", which pins libtpu)"


@dataclasses.dataclass(frozen=True)
class Chip:
    """Published peaks of one accelerator chip (all figures per chip).

    ``ici_bandwidth`` is the bidirectional inter-chip interconnect bandwidth of the
    chip, spread over ``ici_links`` ports: one link carries ``ici_bandwidth /
    ici_links`` (both directions). ``devices_per_chip`` is how many JAX devices
    libtpu's compile-only topology makes of one chip (v4: one per TensorCore).
    ``tuple_table_alignment`` is how XLA:TPU pads a tuple's index table in its cost
    analysis (measured with libtpu 0.0.42: 512 bytes on v4 and v5e, 32 on v5p and v6e;
    pass it to :func:`jaxcost.compiler.ops.price_module`).
    A figure the datasheet does not publish is None, never a guess.
    """

    name: str
    device_kind: str
    bf16_flops: float | None
    int8_ops: float | None
    hbm_bytes: int | None
    hbm_bandwidth: float | None
    ici_bandwidth: float | None
    ici_links: int
    source: str
    devices_per_chip: int = 1
    default_topology: str = "2x2"
    note: str = ""
    tuple_table_alignment: int = 512

    @property
    def ici_link_bandwidth(self) -> float | None:
        return self.ici_bandwidth / self.ici_links if self.ici_bandwidth and self.ici_links else None

    @property
    def ridge(self) -> float | None:
        """FLOP per HBM byte at which bf16 compute and HBM time are equal."""
        if not self.bf16_flops or not self.hbm_bandwidth:
            return None
        return self.bf16_flops / self.hbm_bandwidth

    def __repr__(self) -> str:
        def fmt(v, unit, scale):
            return "?" if v is None else f"{v / scale:g} {unit}"
        memory = "RAM" if self.name == "cpu" else "HBM"
        return (f"Chip({self.name}: {fmt(self.bf16_flops, 'TFLOP/s bf16', TERA)}, "
                f"{fmt(self.hbm_bytes, 'GiB', GiB)} {memory} at {fmt(self.hbm_bandwidth, 'GB/s', GB)}, "
                f"ICI {fmt(self.ici_bandwidth, 'GB/s', GB)} over {self.ici_links} links)")


CHIPS: dict[str, Chip] = {
    "v4": Chip(
        "v4", "TPU v4", 275 * TERA, 275 * TERA, 32 * GiB, 1200 * GB, 600 * GB, 6,
        "Google Cloud TPU docs, 'TPU v4' system architecture (275 TFLOPs bf16 or int8; HBM2 32 GiB, "
        "1200 GBps; 3D mesh/torus: 6 neighbours). ICI: Google Cloud blog 'Enabling next-generation AI "
        "workloads: Announcing TPU v5p and AI Hypercomputer' (Dec 2023): v4 2400 Gbps per direction",
        devices_per_chip=2, default_topology="2x2x1",
        note="2 TensorCores per chip; libtpu's compile-only topology makes one device of each"),
    "v5e": Chip(
        "v5e", "TPU v5 lite", 197 * TERA, 393 * TERA, 16 * GiB, 819 * GB, 400 * GB, 4,
        "Google Cloud TPU docs, 'TPU v5e' system architecture (197 TFLOPs bf16, 393 TOPs int8, 16 GB HBM2 "
        "at 819 GBps, 400 GBps bidirectional ICI per chip, 4 ICI ports, 2D torus)"),
    "v5p": Chip(
        "v5p", "TPU v5", 459 * TERA, 918 * TERA, 95 * GiB, 2765 * GB, 1200 * GB, 6,
        "Google Cloud TPU docs, 'TPU v5p' system architecture (459 TFLOPs bf16, 95 GiB HBM2e at "
        "2765 GBps, 1200 GBps bidirectional ICI per chip, 3D torus: 6 neighbours); int8: Google Cloud "
        "blog 'Enabling next-generation AI workloads: Announcing TPU v5p and AI Hypercomputer' (918 TOPs)",
        default_topology="2x2x1", tuple_table_alignment=32),
    "v6e": Chip(
        "v6e", "TPU v6 lite", 918 * TERA, 1836 * TERA, 32 * GiB, 1640 * GB, 800 * GB, 4,
        "Google Cloud TPU docs, 'TPU v6e' (Trillium) system architecture (918 TFLOPs bf16, 1836 TOPs "
        "int8, 32 GB HBM at 1640 GBps, 800 GBps bidirectional ICI per chip, 4 ICI ports, 2D torus)",
        tuple_table_alignment=32),
}


def host_chip() -> Chip:
    """The CPU host as a chip: its memory (``os.sysconf``) as capacity; compute and
    bandwidth are not published for an arbitrary CPU, measure them with
    :func:`jaxcost.perf.peaks.measure_peaks`."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return Chip("cpu", "cpu", None, None, memory, None, None, 0,
                "host memory from os.sysconf; peaks: measure with jaxcost.perf.peaks", default_topology="")


# --------------------------------------------------------------------------------------
# Compile targets


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (where libtpu's C++ logging writes) for the block.

    libtpu prints initialisation warnings when it loads on a machine without TPU
    metadata (``TPU_ACCELERATOR_TYPE``, worker hostnames); environment variables such as
    ``TPU_STDERR_LOG_LEVEL`` do not silence the earliest ones, so the descriptor is
    redirected. What was written is kept in :data:`LAST_STDERR` for debugging.
    """
    global LAST_STDERR
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            LAST_STDERR = sink.read().decode(errors="replace")


LAST_STDERR = ""


def libtpu_available() -> bool:
    try:
        import libtpu  # noqa: F401
    except ImportError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class CompileTarget:
    """A TPU slice to compile for: a chip generation and a topology (``"2x4"``).

    ``chips`` is the product of the topology; ``device_count`` the compile-only
    devices libtpu makes of it (``chips * chip.devices_per_chip``).
    """

    chip: Chip
    topology: str

    @property
    def name(self) -> str:
        return f"tpu-{self.chip.name}:{self.topology}"

    @property
    def chips(self) -> int:
        return math.prod(int(d) for d in self.topology.split("x"))

    @property
    def device_count(self) -> int:
        return self.chips * self.chip.devices_per_chip

    def __repr__(self) -> str:
        return f"CompileTarget({self.name}, {self.device_count} devices)"

    def topology_desc(self):
        """libtpu's topology description (created once per target, warnings silenced)."""
        return _topology(self.chip.name, self.topology)

    def devices(self) -> list:
        """The compile-only devices of this slice (they compile, they cannot run)."""
        return list(self.topology_desc().devices)

    def mesh(self, axes: Mapping[str, int] | None = None):
        """A ``jax.sharding.Mesh`` over the slice, e.g. ``axes={"data": 2, "model": 4}``;
        by default one axis ``"x"`` over every device."""
        from jax.experimental import topologies

        axes = dict(axes) if axes else {"x": self.device_count}
        if math.prod(axes.values()) != self.device_count:
            raise ValueError(f"mesh axes {axes} hold {math.prod(axes.values())} devices; "
                             f"{self.name} has {self.device_count}")
        try:
            return topologies.make_mesh(self.topology_desc(), tuple(axes.values()), tuple(axes))
        except AssertionError:
            # jax lays out physical meshes one device per chip; v4's compile-only topology has
            # one device per TensorCore (two per chip): the devices in their listed order
            import numpy as np
            from jax.sharding import Mesh

            return Mesh(np.array(self.devices()).reshape(tuple(axes.values())), tuple(axes))

    def place(self, args: Any, specs: Any = None, *, axes: Mapping[str, int] | None = None) -> Any:
        """Abstract copies of ``args`` (a pytree of arrays or ShapeDtypeStructs) on this slice.

        Without ``specs`` every leaf goes on the first device (a single-chip program), except
        leaves already sharded over this slice's devices (built on :meth:`mesh`), which keep it;
        with ``specs`` (a pytree prefix of ``args`` of ``PartitionSpec``) each leaf gets a
        ``NamedSharding`` over :meth:`mesh` (``axes``).
        """
        import jax
        from jax.sharding import SingleDeviceSharding

        from jaxcost.sharding import abstract_on

        if specs is None:
            single = SingleDeviceSharding(self.devices()[0])

            def leaf(x):
                if not (hasattr(x, "shape") and hasattr(x, "dtype")):
                    return x
                own = getattr(x, "sharding", None)  # already on this slice (a mesh of it): kept
                keep = own is not None and all(d.platform == "tpu" for d in own.device_set)
                return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=own if keep else single)

            return jax.tree.map(leaf, args)
        return abstract_on(args, specs, self.mesh(axes))


_TOPOLOGIES: dict[tuple[str, str], Any] = {}


def _topology(chip: str, topology: str):
    key = (chip, topology)
    if key not in _TOPOLOGIES:
        if not libtpu_available():
            raise RuntimeError(f"compiling for tpu-{chip} needs libtpu: {INSTALL_HINT}")
        # libtpu guards the machine with a lock file; another process that loaded it
        # (any jax program in the same environment) would make ours fail to start.
        os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
        from jax.experimental import topologies

        with quiet_stderr():
            try:
                _TOPOLOGIES[key] = topologies.get_topology_desc(f"{chip}:{topology}", "tpu")
            except Exception as exc:  # noqa: BLE001  (libtpu raises its own runtime errors)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise RuntimeError(f"libtpu cannot build topology {chip}:{topology}: {first}") from None
    return _TOPOLOGIES[key]


def parse_target(text: str) -> CompileTarget:
    """``"tpu-v5e"``, ``"tpu-v5e:2x4"``, ``"v4:2x2x2"`` -> a :class:`CompileTarget`.

    Without a topology the chip's smallest host slice is used (``2x2``, or
    ``2x2x1`` for v4/v5p); programs placed without specs use its first device.
    """
    body = text.strip().lower()
    body = body.removeprefix("tpu-")
    name, _, topology = body.partition(":")
    chip = CHIPS.get(name)
    if chip is None:
        raise ValueError(f"unknown TPU chip {name!r} in {text!r}; known: "
                         + ", ".join(f"tpu-{c}" for c in CHIPS))
    topology = topology or chip.default_topology
    dims = topology.split("x")
    want = 3 if chip.default_topology.count("x") == 2 else 2
    if len(dims) != want or not all(d.isdigit() and int(d) > 0 for d in dims):
        example = chip.default_topology
        raise ValueError(f"bad topology {topology!r} for tpu-{chip.name}: expected {want} positive "
                         f"sizes like {example!r}")
    return CompileTarget(chip, topology)


def chip_for(device_kind: str) -> Chip | None:
    """The chip of a jax ``device_kind`` (``"TPU v5 lite"`` -> v5e), or None."""
    kind = device_kind.strip().lower()
    for chip in CHIPS.values():
        if chip.device_kind.lower() == kind:
            return chip
    return None


# --------------------------------------------------------------------------------------
# Does it fit in HBM?


@dataclasses.dataclass(frozen=True)
class HbmFit:
    """A compiled program's footprint per device against one chip's HBM.

    ``needed_bytes`` = arguments + outputs + temporaries + generated code − aliased
    (XLA's ``memory_analysis()``, per device); ``capacity_bytes`` is the HBM of one
    device (a chip's HBM divided among its devices). ``largest`` names the biggest
    buffers when a module's text was given.
    """

    fits: bool
    needed_bytes: int
    capacity_bytes: int
    chip: str
    largest: tuple[tuple[str, int], ...] = ()

    @property
    def fraction(self) -> float:
        return self.needed_bytes / self.capacity_bytes

    def __str__(self) -> str:
        cap = f"{self.capacity_bytes / GiB:g} GiB"
        if self.fits:
            return (f"fits: {self.needed_bytes / 2**20:,.1f} MiB = {self.fraction:.2%} of {cap} per device "
                    f"({self.chip})")
        top = "; largest buffers: " + ", ".join(f"{n} {b / GiB:.2f} GiB" for n, b in self.largest) \
            if self.largest else ""
        return f"does not fit: needs {self.needed_bytes / GiB:.2f} of {cap} per device ({self.chip}){top}"


def hbm_fit(memory_stats: Any, chip: Chip | str, hlo_text: str | None = None, top: int = 3) -> HbmFit:
    """Compare ``memory_stats`` (a :class:`jaxcost.compiler.totals.MemoryStats` or the raw
    ``Compiled.memory_analysis()``) with ``chip``'s HBM per device. With ``hlo_text`` the
    ``top`` largest arrays in HBM are named (what to shard or rematerialise first).

    XLA:TPU itself refuses to compile a program that needs more than the HBM it may use
    (``RESOURCE_EXHAUSTED``; 15.75 GiB of v5e's 16): a TPU compile that succeeded fits, and
    this tells by how much; the footprint of a CPU or GPU compile says whether a chip would
    hold the same program."""
    from jaxcost.compiler.totals import MemoryStats

    chip = parse_target(chip).chip if isinstance(chip, str) else chip
    stats = memory_stats if isinstance(memory_stats, MemoryStats) else MemoryStats.from_xla(memory_stats)
    if not stats.available or stats.total_bytes is None:
        raise ValueError("memory_analysis() reported nothing: the footprint is unknown")
    if chip.hbm_bytes is None:
        raise ValueError(f"{chip.name}: HBM capacity unknown")
    needed = stats.total_bytes + (stats.generated_code_bytes or 0)
    capacity = chip.hbm_bytes // chip.devices_per_chip
    largest: tuple[tuple[str, int], ...] = ()
    if hlo_text is not None:
        from jaxcost.compiler.hlo import parse_module

        module = parse_module(hlo_text)
        in_hbm = [i for i in module.entry.instructions  # arrays in HBM (TPU memory space 0)
                  if not i.shape.is_tuple and not getattr(i.shape, "memory_space", 0)
                  and i.opcode not in ("get-tuple-element", "bitcast")]
        sizes = sorted(((i.name, i.shape.bytes) for i in in_hbm), key=lambda item: -item[1])
        largest = tuple(sizes[:top])
    return HbmFit(needed <= capacity, int(needed), int(capacity), chip.name, largest)


def chips_table(chips: Sequence[Chip] | None = None) -> str:
    """A plain-text table of the chips' peaks (one line each)."""
    rows = [repr(c) for c in (chips or CHIPS.values())]
    return "\n".join(rows)
