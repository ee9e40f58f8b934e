"""How a program is partitioned over devices: device count, mesh, each input's sharding.

XLA compiles a sharded ``jax.jit`` program (``NamedSharding`` inputs, or ``mesh=`` /
``in_specs=`` given to :func:`jaxcost.analyze`) into ONE per-device program (SPMD): the
optimized module's shapes, costs and bytes are those of one device, and its header says
``num_partitions=N``. The jaxpr and the lowered module still have the global shapes, except
inside ``shard_map``, whose body is already written per device. So:

- the compiler figures of a partitioned program are **per device**;
- the theory and the lowered module are **global** outside ``shard_map`` bodies;
- between the lowered and the optimized module the SPMD partitioner divides the work by N
  (the explain ledger's "partitioned over N devices" line) and adds the collectives.

Global = per device x N holds for work split evenly; replicated work is done N times.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable

import jax
from jax.extend import core as jcore

_PARTITIONS = re.compile(r"\bnum_partitions=(\d+)")


@dataclasses.dataclass(frozen=True)
class Partitioning:
    """``devices``: how many devices run the compiled program (1: not partitioned);
    ``mesh``: axis name -> size (empty when no mesh is known); ``specs``:
    each input leaf's sharding as written (``P('data', None)``); ``manual``: a ``shard_map``
    body inside (written per device)."""

    devices: int = 1
    mesh: dict[str, int] = dataclasses.field(default_factory=dict)
    specs: tuple[str, ...] = ()
    manual: bool = False

    @property
    def partitioned(self) -> bool:
        return self.devices > 1

    @property
    def basis(self) -> str:
        """What the compiler figures are: ``per device (1 of 8)`` or ``one device``."""
        return f"per device (1 of {self.devices})" if self.partitioned else "one device"

    def describe(self) -> str:
        if not self.partitioned:
            return "not partitioned (one device)"
        mesh = ", ".join(f"{k}={v}" for k, v in self.mesh.items()) or "no named mesh"
        return f"partitioned over {self.devices} devices (mesh {mesh}{'; shard_map' if self.manual else ''})"

    def __repr__(self) -> str:
        return f"Partitioning({self.describe()})"

    def axes_of(self, group: Iterable[int]) -> tuple[str, ...]:
        """The mesh axes a group of partition ids spans (those along which its members differ).
        XLA numbers the partitions in the mesh's row-major device order."""
        shape = tuple(self.mesh.values())
        if not shape:
            return ()
        coords = []
        for i in group:
            if i >= math.prod(shape):
                return ()
            coords.append(_unravel(i, shape))
        return tuple(name for k, name in enumerate(self.mesh) if len({c[k] for c in coords}) > 1)


def abstract_on(args, specs, mesh):
    """Abstract copies (``ShapeDtypeStruct``) of the array leaves of ``args``, each with
    ``NamedSharding(mesh, spec)``; ``specs`` is a pytree prefix of ``args`` of
    ``PartitionSpec`` (None: replicated). Static leaves (ints, None) stay as they are."""
    from jax.sharding import NamedSharding, PartitionSpec

    def leaf(x, sharding):
        if not (hasattr(x, "shape") and hasattr(x, "dtype")):
            return x
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    is_spec = lambda s: isinstance(s, PartitionSpec) or s is None
    shardings = jax.tree.map(lambda s: NamedSharding(mesh, s if s is not None else PartitionSpec()),
                             specs, is_leaf=is_spec)
    # the shardings are a prefix of args: each spreads over the subtree it stands for
    return jax.tree.map(lambda sh, sub: jax.tree.map(lambda x: leaf(x, sh), sub), shardings, args)


def local_mesh(axes: dict[str, int], backend: str | None = None):
    """A ``Mesh`` of this machine's devices (``backend``'s), e.g. ``{"data": 2, "model": 4}``
    on 8 devices (CPU: ``XLA_FLAGS=--xla_force_host_platform_device_count=8``)."""
    import numpy as np
    from jax.sharding import Mesh

    devices = jax.devices(backend)
    n = math.prod(axes.values())
    if n > len(devices):
        raise ValueError(f"mesh {axes} needs {n} devices; {devices[0].platform} has {len(devices)} "
                         "(for CPU devices: XLA_FLAGS=--xla_force_host_platform_device_count=N before jax starts)")
    return Mesh(np.array(devices[:n]).reshape(tuple(axes.values())), tuple(axes))


def _unravel(i: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for n in reversed(shape):
        out.append(i % n)
        i //= n
    return tuple(reversed(out))


def _spec(x) -> str:
    s = getattr(x, "sharding", None)
    if s is None:
        return "unsharded"
    spec = getattr(s, "spec", None)
    if spec is not None:
        return "replicated" if all(p is None for p in spec) else f"P{tuple(spec)}".replace(",)", ")")
    if s.is_fully_replicated:
        return "replicated" if len(s.device_set) > 1 else "single device"
    return type(s).__name__


def _shard_map_mesh(jaxpr) -> dict[str, int] | None:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "shard_map":
            return dict(eqn.params["mesh"].shape)
        for sub in jcore.jaxprs_in_params(eqn.params):
            if (found := _shard_map_mesh(sub)) is not None:
                return found
    return None


def partitioning(args, jaxpr=None, hlo_text: str = "") -> Partitioning:
    """The :class:`Partitioning` of a program: its abstract arguments (their shardings), its
    jaxpr (a ``shard_map``'s mesh) and its HLO text (``num_partitions``)."""
    leaves = [x for x in jax.tree.leaves(args) if hasattr(x, "shape")]
    m = _PARTITIONS.search(hlo_text[:4096]) if hlo_text else None
    devices = int(m.group(1)) if m else 1
    mesh: dict[str, int] = {}
    for x in leaves:
        s = getattr(x, "sharding", None)
        if s is not None and hasattr(getattr(s, "mesh", None), "shape"):
            mesh = dict(s.mesh.shape)
            break
    inner = getattr(jaxpr, "jaxpr", jaxpr)
    found = _shard_map_mesh(inner) if inner is not None else None
    if found is not None and not mesh:
        mesh = found
    if m is None:
        sets = [getattr(x, "sharding", None) for x in leaves]
        devices = max((len(s.device_set) for s in sets if s is not None), default=1)
    return Partitioning(devices, mesh, tuple(_spec(x) for x in leaves), found is not None)
