"""Custom calls in real programs: host callbacks, annotations, library calls.

XLA prices every custom call at -1 flops and -1 bytes; jaxcost reproduces that in XLA's
totals, and in its corrected totals prices annotations at zero (silently), hands over a
host callback's operands and results in bytes and says once that its work is not
counted, and names every other target it cannot see."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax
from jax.sharding import PartitionSpec as P

from jaxcost.compiler.corrections import correct
from jaxcost.compiler.custom_calls import kind
from jaxcost.compiler.diagnostics import module_warnings
from jaxcost.compiler.ops import price_module
from jaxcost.compiler.totals import CostTotals

X = jax.ShapeDtypeStruct((4, 8), jnp.float32)
CALLBACK = "host callback 'xla_ffi_python_cpu_callback': its work runs in Python on the host and is not counted"


def modules(f, *args):
    """(label, priced module, XLA's totals) for the lowered and the compiled program."""
    lowered = jax.jit(f).lower(*args)
    compiled = lowered.compile()
    yield "unoptimized", price_module(lowered.as_text(dialect="hlo", debug_info=True)), \
        CostTotals.from_xla(lowered.cost_analysis())
    yield "optimized", price_module(compiled.as_text()), CostTotals.from_xla(compiled.cost_analysis())


def custom_calls(priced) -> list[str]:
    return [i.custom_call_target for i in priced.module.instructions() if i.opcode == "custom-call"]


def assert_xla_reproduced(priced, xla: CostTotals):
    assert priced.xla_total.flops == xla.flops
    assert priced.xla_total.transcendentals == xla.transcendentals
    assert priced.xla_total.bytes_accessed == xla.bytes_accessed


def printed(x):
    jax.debug.print("sum {}", x.sum())
    return x * 2


def called_back(x):
    jax.debug.callback(lambda v: None, x)
    return x * 2


def pure(x):
    return jax.pure_callback(lambda v: np.asarray(v) * 2, jax.ShapeDtypeStruct((4, 8), jnp.float32), x) + 1


# program, its true flops, bytes the callback hands over (operands + results)
CALLBACKS = {
    "debug_print": (printed, 31 + 32, 4),           # sum (31 adds) and x * 2; hands over f32[]
    "debug_callback": (called_back, 32, 4 * 32),    # x * 2; hands over x
    "pure_callback": (pure, 32, 2 * 4 * 32),        # + 1; hands over x, receives f32[4,8]
}


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_host_callbacks_are_named_once_and_never_crash(name):
    f, flops, handed_over = CALLBACKS[name]
    for label, priced, xla in modules(f, X):
        assert custom_calls(priced) == ["xla_ffi_python_cpu_callback"]
        assert_xla_reproduced(priced, xla)  # XLA's -1s included
        corrected = correct(priced.module.entry, priced.model)
        assert corrected.flops == flops == xla.flops + 1
        assert corrected.bytes_accessed == xla.bytes_accessed + 1 + handed_over
        assert corrected.reasons == (CALLBACK,)
        assert module_warnings(label, priced, xla) == [CALLBACK]


def test_conditional_keeps_xla_unknown_of_its_first_branch():
    """XLA's conditional starts from branch 0 and raises each property to a later branch's
    nonzero value: a branch holding only a callback (-1) beats an empty one (0)."""

    def f(x):
        s = x.sum()
        lax.cond(s > 0, lambda v: None, lambda v: jax.debug.print("s {}", v), s)  # branch 0 prints
        return x * 2

    for label, priced, xla in modules(f, X):
        assert_xla_reproduced(priced, xla)
        (cond,) = [op for op in priced.ops if op.opcode == "conditional"]
        assert (cond.flops, cond.bytes_accessed) == (-1.0, -1.0)
        corrected = correct(priced.module.entry, priced.model)
        assert corrected.flops == 31 + 1 + 1 + 32 == xla.flops + 1  # sum, s > 0, its index, x * 2
        assert corrected.bytes_accessed == xla.bytes_accessed + 1 + 4  # the branch hands over f32[]
        assert module_warnings(label, priced, xla) == [CALLBACK]


class Dropped(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.dense = nnx.Linear(8, 8, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x):
        return self.drop(self.dense(x))


def _dropout_program():
    graph, state = nnx.split(nnx.eval_shape(lambda: Dropped(nnx.Rngs(0))))
    return (lambda state, x: nnx.merge(graph, state)(x)), (state, X)


def _shard_map_program():
    mesh = jax.make_mesh((1,), ("d",))
    return (lambda x: jax.shard_map(lambda a: jnp.tanh(a) * 2, mesh=mesh, in_specs=P(), out_specs=P())(x)), (X,)


@pytest.mark.parametrize("program,target", [(_dropout_program, "Sharding"),
                                            (_shard_map_program, "xla.sdy.FuncResultSharding")])
def test_annotations_cost_nothing_and_say_nothing(program, target):
    f, args = program()
    (label, lowered, xla), *_ = modules(f, *args)
    annotations = custom_calls(lowered)
    assert annotations and set(annotations) == {target}
    assert_xla_reproduced(lowered, xla)
    corrected = correct(lowered.module.entry, lowered.model)
    assert not [r for r in corrected.reasons if "custom call" in r]
    assert module_warnings(label, lowered, xla) == []
    if target.startswith("xla.sdy"):  # no loop to correct: only the annotations' -1s go
        assert corrected.flops == xla.flops + len(annotations)
        assert corrected.bytes_accessed == xla.bytes_accessed + len(annotations)


def test_library_calls_are_named_with_counts():
    f = lambda x: jnp.linalg.solve(x[:, :4], x[:, 4:])
    for label, priced, xla in modules(f, X):
        assert_xla_reproduced(priced, xla)
        assert module_warnings(label, priced, xla) == [
            f"{label} HLO: custom call {target!r} ({n}x) is priced by XLA at -1 flops and -1 bytes "
            "(unknown); see Analysis.corrected" for target, n in (("lapack_sgetrf_ffi", 1), ("lapack_strsm_ffi", 2))]
        reasons = correct(priced.module.entry, priced.model).reasons
        assert sum("'lapack_strsm_ffi' reported -1 by XLA" in r for r in reasons) == 2


def test_target_kinds():
    assert {t: kind(t) for t in (
        "Sharding", "SPMDFullToShardShape", "xla.sdy.GlobalToLocalShape", "annotate_device_placement",
        "MoveToHost", "xla_python_cpu_callback", "xla_ffi_partitioned_python_gpu_callback",
        "__cublas$lt$matmul", "__cudnn$convForward", "lapack_sgetrf_ffi")} == {
        "Sharding": "annotation", "SPMDFullToShardShape": "annotation",
        "xla.sdy.GlobalToLocalShape": "annotation", "annotate_device_placement": "annotation",
        "MoveToHost": "memory move", "xla_python_cpu_callback": "host callback",
        "xla_ffi_partitioned_python_gpu_callback": "host callback", "__cublas$lt$matmul": "gemm",
        "__cudnn$convForward": "convolution", "lapack_sgetrf_ffi": "unknown"}

