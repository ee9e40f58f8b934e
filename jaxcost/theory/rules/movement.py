"""Primitives without arithmetic, registered in bulk (as ``jax.experimental.roofline`` does
for shape ops): every one of them costs 0 FLOPs, and only the copies move memory.

VIEWS: layout and shape changes a compiler makes free (a reshape is a bitcast, a broadcast
fuses into its consumer); 0 memory accesses: the consumer's reads count the elements.
COPIES: data movement that reads and writes every element (transpose, slice, concatenate,
pad, gather, scatter without a combiner, ...): in + out accesses.
ANNOTATIONS: markers for the compiler, the runtime or autodiff, and the key wrappers of
``jax.random``: nothing to compute, nothing to move.
HOST_CALLBACKS: work done by Python on the host; XLA sees a custom call (reported −1)
and so does not the theory: they are counted 0 and named in the warnings.
SCATTER_COMBINE: scatter with a combiner applies it once per update element
(HloCostAnalysis::HandleScatter); a plain scatter only copies.
"""

from __future__ import annotations

from jaxcost.theory.registry import TheoryCost, register
from jaxcost.theory.rules._avals import in_elems, out_elems, size

VIEWS = (
    "reshape", "broadcast_in_dim", "squeeze", "expand_dims", "broadcast_to",
)
COPIES = (
    "transpose", "slice", "dynamic_slice", "dynamic_update_slice", "concatenate", "pad", "rev", "gather",
    "scatter", "copy", "copy_p", "tile", "split", "stack", "unstack", "device_put", "iota", "full_like",
    "empty", "empty2", "lu_pivots_to_permutation", "all_gather", "all_gather_invariant", "all_to_all",
    "ragged_all_to_all", "ppermute", "pbroadcast", "get", "swap",
)
ANNOTATIONS = (
    "optimization_barrier", "stop_gradient", "pvary", "sharding_constraint", "layout_constraint", "reshard",
    "mesh_cast", "name", "inspect_sharding", "random_wrap", "random_unwrap", "random_clone", "create_token",
    "after_all", "shape_assertion", "platform_index", "dce_sink", "unreachable", "pin", "unpin",
    "reduced_vary_cast_p", "vary_unreduced_cast_p", "preduced", "stage",
)
HOST_CALLBACKS = ("pure_callback", "io_callback", "debug_callback", "debug_print")
SCATTER_COMBINE = ("scatter-add", "scatter_add", "scatter-sub", "scatter_sub", "scatter-mul", "scatter_mul",
                   "scatter-min", "scatter_min", "scatter-max", "scatter_max", "addupdate")

# Ops through which a value keeps its identity: parameters stay parameters (``params_read``)
# and a contraction's result stays one (bias-add detection).
CHEAP = frozenset({"convert_element_type", "reshape", "transpose", "broadcast_in_dim", "squeeze",
                   "expand_dims", "copy", "copy_p", "device_put", "stop_gradient", "optimization_barrier",
                   "pvary", "sharding_constraint", "rev"})


@register(*VIEWS, *ANNOTATIONS)
def free(eqn) -> TheoryCost:
    return TheoryCost()


@register(*HOST_CALLBACKS, note="a host callback: the work Python does on the host is not counted")
def host_callback(eqn) -> TheoryCost:
    return TheoryCost()


@register(*COPIES)
def copy(eqn) -> TheoryCost:
    io = in_elems(eqn) + out_elems(eqn)
    return TheoryCost(accesses_naive=io, accesses_ideal=io)


@register(*SCATTER_COMBINE)
def scatter_combine(eqn) -> TheoryCost:
    updates = size(eqn.invars[1 if eqn.primitive.name == "addupdate" else 2])
    io = in_elems(eqn) + out_elems(eqn)
    return TheoryCost(flops_textbook=updates, flops_xla=updates, accesses_naive=io, accesses_ideal=io)
