"""Data movement: 0 FLOPs, bytes only (reshape, broadcast, transpose, slice, ...)."""

from __future__ import annotations

from jaxcost.theory.registry import Cost, rule
from jaxcost.theory.rules._avals import in_elems, out_elems

DATA_MOVEMENT = (
    "reshape", "broadcast_in_dim", "transpose", "slice", "dynamic_slice", "dynamic_update_slice",
    "concatenate", "pad", "squeeze", "expand_dims", "rev", "gather", "scatter", "scatter-add",
    "scatter_add", "copy", "copy_p", "iota", "select_and_gather", "sort", "stop_gradient",
    "bitcast_convert_type", "split", "device_put", "optimization_barrier", "random_bits",
    "random_seed", "random_wrap", "random_unwrap", "threefry2x32", "full_like", "empty",
)

# Ops through which a value keeps its "model parameter" identity (params_read tracing).
CHEAP = frozenset({"convert_element_type", "reshape", "transpose", "broadcast_in_dim", "squeeze",
                   "expand_dims", "copy", "copy_p", "device_put", "stop_gradient"})


@rule(*DATA_MOVEMENT)
def data_movement(eqn) -> Cost:
    o = out_elems(eqn)
    return Cost(accesses_naive=in_elems(eqn) + o, accesses_ideal=in_elems(eqn) + o)
