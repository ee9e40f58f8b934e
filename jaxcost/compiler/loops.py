"""How many times a ``while`` loop runs.

XLA's ``HloCostAnalysis`` prices a loop's body and condition once, whatever the
trip count. The optimizer records the count it proved in the loop's
``backend_config`` (``known_trip_count``). A lowered module has no such record,
but ``lax.scan`` and ``lax.fori_loop`` lower to a counted loop that reads it off
the program: a tuple element starts at a constant ``c``, the body adds 1 to it,
the condition is ``element < N`` with a constant ``N``: N − c trips.
"""

from __future__ import annotations

from jaxcost.compiler.hlo import Instruction


def trip_count(inst: Instruction) -> int | None:
    """Trips of the ``while`` instruction ``inst``: XLA's ``known_trip_count`` when the
    optimizer recorded one, else the count of a counted loop, else None (unknown)."""
    n = inst.backend_config.get("known_trip_count", {}).get("n")
    if n is not None:
        return int(n)
    return _counted_loop_trips(inst)


def _counted_loop_trips(inst: Instruction) -> int | None:
    cond, body = inst.called_by("condition"), inst.called_by("body")
    if cond is None or body is None or len(inst.operands) != 1:
        return None
    test = cond.root
    if test.opcode != "compare" or test.attrs.get("direction") != "LT" or len(test.operands) != 2:
        return None
    counter, bound = test.operands
    index = _tuple_index(counter)
    limit = _integer(bound)
    if index is None or limit is None:
        return None
    init, step = inst.operands[0], body.root
    if init.opcode != "tuple" or step.opcode != "tuple" or index >= min(len(init.operands), len(step.operands)):
        return None
    start = _integer(init.operands[index])
    update = step.operands[index]
    if start is None or update.opcode != "add" or len(update.operands) != 2:
        return None
    a, b = update.operands
    increments = (_tuple_index(a) == index and _integer(b) == 1) or (_tuple_index(b) == index and _integer(a) == 1)
    return max(0, limit - start) if increments else None


def _tuple_index(inst: Instruction) -> int | None:
    """``i`` when ``inst`` is element ``i`` of its computation's tuple parameter."""
    if inst.opcode != "get-tuple-element" or not inst.operands or inst.operands[0].opcode != "parameter":
        return None
    return inst.int_attr("index", -1)


def _integer(inst: Instruction) -> int | None:
    """The value of an integer scalar constant, else None."""
    if inst.opcode != "constant" or inst.shape.dims or inst.shape.dtype[:1] not in ("s", "u"):
        return None
    try:
        return int(inst.attrs.get("_literal", ""))
    except ValueError:
        return None
