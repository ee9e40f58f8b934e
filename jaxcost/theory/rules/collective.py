"""Collectives inside ``shard_map``: counted per device, as XLA's cost analysis counts them.

All-reduces (``psum``, ``pmax``, ``pmin``) apply the reducer once per element of their
result (HloCostAnalysis::HandleAllReduce), whatever the number of devices. Reduce-scatter,
all-gather, all-to-all and permutes move data only (0 flops in XLA's count; the adds a
reduce-scatter makes are named in the warnings). ``axis_index`` reads the device's
coordinate: XLA lowers it to a few scalar ops on the partition id, counted 0 here.
"""

from __future__ import annotations

from jaxcost.theory.registry import TheoryCost, register
from jaxcost.theory.rules._avals import in_elems, out_elems


def _io(eqn) -> int:
    return in_elems(eqn) + out_elems(eqn)


@register("psum", "psum_invariant", "pmax", "pmin", "unreduced_psum")
def all_reduce(eqn) -> TheoryCost:
    n = out_elems(eqn)
    return TheoryCost(flops_textbook=n, flops_xla=n, accesses_naive=_io(eqn), accesses_ideal=_io(eqn))


@register("reduce_scatter", "unreduced_reduce_scatter",
          note="XLA's cost analysis counts no flops for a reduce-scatter; its adds are not counted")
def reduce_scatter(eqn) -> TheoryCost:
    return TheoryCost(accesses_naive=_io(eqn), accesses_ideal=_io(eqn))


@register("axis_index")
def axis_index(eqn) -> TheoryCost:
    return TheoryCost()
