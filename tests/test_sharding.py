"""Programs partitioned over several devices: the partitioning recorded, figures labelled per
device, the SPMD split in the ledger, and the collectives with their bytes and time models
(against hand computations and ``jax.experimental.roofline``). TPU slices are compile-only
devices (libtpu); CPU meshes run in a subprocess with 8 forced host devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxcost
from jaxcost.compiler.collectives import link_bytes, replica_groups
from jaxcost.compiler.hlo import parse_module
from jaxcost.hardware import libtpu_available, parse_target
from jaxcost.sharding import Partitioning

S = jax.ShapeDtypeStruct
needs_libtpu = pytest.mark.skipif(not libtpu_available(), reason="libtpu is not installed (pip install 'jaxcost[tpu]')")


def test_replica_groups_in_both_notations():
    text = textwrap.dedent("""\
        HloModule m, num_partitions=8
        ENTRY e {
          p = f32[16]{0} parameter(0)
          a = f32[16]{0} all-reduce(p), replica_groups={{0,1,2,3},{4,5,6,7}}, to_apply=add
          b = f32[16]{0} all-reduce(p), replica_groups=[4,2]<=[2,4]T(1,0), to_apply=add
          ROOT c = f32[16]{0} collective-permute(p), source_target_pairs={{0,1},{1,0}}
        }
        add {
          x = f32[] parameter(0)
          y = f32[] parameter(1)
          ROOT s = f32[] add(x, y)
        }
        """)
    entry = parse_module(text).entry
    a, b, c = (entry.instructions[i] for i in (1, 2, 3))
    assert replica_groups(a) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert replica_groups(b) == [[0, 4], [1, 5], [2, 6], [3, 7]]  # iota, transposed
    assert replica_groups(c) == [[0, 1], [1, 0]]
    mesh = Partitioning(8, {"data": 2, "model": 4})
    assert mesh.axes_of([0, 1, 2, 3]) == ("model",)
    assert mesh.axes_of([0, 4]) == ("data",)
    assert mesh.axes_of(range(8)) == ("data", "model")


def test_bandwidth_optimal_bytes():
    assert link_bytes("all-reduce", 4096, 4) == 2 * 3 / 4 * 4096
    assert link_bytes("all-gather", 4096, 8) == link_bytes("reduce-scatter", 4096, 8) == 7 / 8 * 4096
    assert link_bytes("all-to-all", 4096, 4) == 4 * 4096 / 4
    assert link_bytes("collective-permute", 4096, 2) == 4096
    assert link_bytes("all-reduce", 4096, 1) == 0


def _mlp(x, w1, w2):
    return jnp.tanh(x @ w1) @ w2


@needs_libtpu
def test_jit_with_named_shardings_on_a_tpu_slice():
    """A 2-layer MLP over v5e:2x4 (data=2, model=4): per-device figures, one all-reduce of
    the per-device partial sums over 'model', the SPMD split booked in the ledger."""
    a = jaxcost.analyze(_mlp, S((64, 256), jnp.float32), S((256, 1024), jnp.float32), S((1024, 256), jnp.float32),
                        target="tpu-v5e:2x4", mesh={"data": 2, "model": 4},
                        in_specs=(P("data", None), P(None, "model"), P("model", None)))
    p = a.partitioning
    assert (p.devices, p.mesh, p.specs) == (8, {"data": 2, "model": 4},
                                            ("P('data', None)", "P(None, 'model')", "P('model', None)"))
    assert p.basis == "per device (1 of 8)" and a.to_dict()["partitioning"]["basis"] == p.basis
    [ar] = a.collectives()
    # each device holds a (64/2) x 256 float32 partial product, summed over the 4 'model' devices
    assert (ar.kind, ar.buffer_bytes, ar.group_size, ar.axes) == ("all-reduce", 32 * 256 * 4, 4, ("model",))
    assert ar.link_bytes == 2 * 3 / 4 * 32 * 256 * 4
    link = parse_target("tpu-v5e").chip.ici_link_bandwidth / 2
    assert ar.seconds == pytest.approx(ar.link_bytes / link)
    e = a.explain()
    e.check()
    lines = {d.cause: d.flops for d in e.lines}
    split = next(v for k, v in lines.items() if k.startswith("partitioned over 8 devices"))
    lowered = a.module_unoptimized.total.flops  # XLA:TPU reports no cost for the lowered module
    assert split == round(lowered / 8) - lowered
    assert "XLA figures per device (1 of 8)" in a.summary(print_=False)


@needs_libtpu
def test_shard_map_collectives_against_jax_roofline():
    """Every collective kind inside shard_map: jaxcost's bytes per device equal
    jax.experimental.roofline's ici_bytes per axis, except that the roofline books a swap's
    two directions on one link (2B) where jaxcost counts each direction's B (links are full duplex)."""
    from jax import shard_map
    from jax.experimental.roofline import roofline

    target = parse_target("tpu-v5e:2x4")
    mesh = target.mesh({"data": 2, "model": 4})

    def body(x, w):
        y = jax.lax.psum(x @ w, "model")
        z = jax.lax.all_gather(y, ("data",), tiled=True)
        u = jax.lax.psum_scatter(z, ("model",), scatter_dimension=1, tiled=True)
        v = jax.lax.all_to_all(u, ("model",), 0, 0, tiled=True)
        return jax.lax.ppermute(v, "data", [(0, 1), (1, 0)])

    specs = {"in_specs": (P("data", "model"), P("model", None)), "out_specs": P("data", "model")}
    f = shard_map(body, mesh=mesh, **specs)
    x = S((64, 256), jnp.float32, sharding=NamedSharding(mesh, P("data", "model")))
    w = S((256, 512), jnp.float32, sharding=NamedSharding(mesh, P("model", None)))
    a = jaxcost.analyze(f, x, w, target=target)
    assert a.partitioning.manual and a.partitioning.mesh == {"data": 2, "model": 4}
    got = {c.kind: c for c in a.collectives()}
    assert sorted(got) == ["all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter"]
    y = 32 * 512 * 4  # (64/2) x 512 float32 per device
    assert (got["all-reduce"].buffer_bytes, got["all-reduce"].axes) == (y, ("model",))
    assert (got["all-gather"].buffer_bytes, got["all-gather"].axes) == (2 * y, ("data",))
    assert got["reduce-scatter"].buffer_bytes == 2 * y
    per_axis: dict[str, float] = {}
    for c in got.values():
        for axis in c.axes:
            per_axis[axis] = per_axis.get(axis, 0) + c.link_bytes
    _, theirs = roofline(body, mesh=mesh, **specs)(S((64, 256), jnp.float32), S((256, 512), jnp.float32))
    assert per_axis["model"] == theirs.ici_bytes["model"]
    permute = got["collective-permute"].link_bytes
    assert theirs.ici_bytes["data"] - per_axis["data"] == permute
    a.explain().check()


CPU_MESH = r"""
import json, os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P, Mesh
import jaxcost
S = jax.ShapeDtypeStruct
mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
def mlp(x, w1, w2):
    return jnp.tanh(x @ w1) @ w2
shapes = ((64, 256), (256, 1024), (1024, 256))
specs = (P("data", None), P(None, "model"), P("model", None))
out = {}
a = jaxcost.analyze(mlp, *(S(s, jnp.float32, sharding=NamedSharding(mesh, p)) for s, p in zip(shapes, specs)))
b = jaxcost.analyze(mlp, *(S(s, jnp.float32) for s in shapes), mesh={"data": 2, "model": 4}, in_specs=specs)
c = jaxcost.analyze(mlp, *(jax.device_put(jnp.ones(s), NamedSharding(mesh, p)) for s, p in zip(shapes, specs)))
for k, an in (("named", a), ("mesh", b), ("concrete", c)):
    an.explain().check()
    out[k] = {"devices": an.partitioning.devices, "mesh": an.partitioning.mesh,
              "flops": an.compiler.flops, "unopt": an.compiler_unoptimized.flops,
              "collectives": [[x.kind, x.buffer_bytes, list(x.axes)] for x in an.collectives(link_bandwidth=1e10)],
              "basis": an.to_dataframe()["basis"].iloc[0]}
print(json.dumps(out))
"""


def test_cpu_mesh_jit_named_sharding_in_specs_and_concrete_arrays():
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", CPU_MESH], check=False, capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for k in ("named", "mesh", "concrete"):
        r = out[k]
        assert (r["devices"], r["mesh"], r["basis"]) == (8, {"data": 2, "model": 4}, "per device (1 of 8)"), k
        assert r["unopt"] == 2 * 64 * 256 * 1024 * 2  # the lowered module is global
        # per device: (64/2) x 256 x (1024/4) and (64/2) x (1024/4) x 256 MACs, + the all-reduce's adds
        assert r["flops"] == 2 * 2 * 32 * 256 * 256 + 32 * 256, k
        assert r["collectives"] == [["all-reduce", 32 * 256 * 4, ["model"]]], k


def test_mesh_arguments_are_checked():
    with pytest.raises(jaxcost.AnalysisError, match="give both mesh="):
        jaxcost.analyze(_mlp, S((8, 4), jnp.float32), S((4, 4), jnp.float32), S((4, 4), jnp.float32),
                        mesh={"data": 2})
    with pytest.raises(jaxcost.AnalysisError, match="needs 64 devices"):
        jaxcost.analyze(_mlp, S((8, 4), jnp.float32), S((4, 4), jnp.float32), S((4, 4), jnp.float32),
                        mesh={"data": 64}, in_specs=(P("data"), None, None))
    with pytest.raises(jaxcost.AnalysisError, match="in_specs has 1 entries for 3 arguments"):
        jaxcost.analyze(_mlp, S((8, 4), jnp.float32), S((4, 4), jnp.float32), S((4, 4), jnp.float32),
                        mesh={"data": 1}, in_specs=(P("data"),))
