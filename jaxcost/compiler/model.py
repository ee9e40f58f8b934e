"""Summation: every instruction priced by its opcode's rule, computations summed as XLA sums them."""

from __future__ import annotations

from jaxcost.compiler.cost import HloCost
from jaxcost.compiler.hlo import TPU_TABLE_ALIGNMENT, Computation, Instruction
from jaxcost.compiler.rules import RULES, default_bytes


class CostModel:
    """Prices instructions and computations with :data:`~jaxcost.compiler.rules.RULES`, memoised.

    ``number`` is the arithmetic: ``float`` gives exact counts (integers are
    exact up to 2**53); ``numpy.float32`` reproduces XLA bit for bit, which
    keeps its properties in float32 and sums them in post-order (so its totals
    of large models are rounded: 12,677,750,008 true flops print as
    12,677,750,784).

    ``tpu_table_alignment`` pads a tuple's index table on TPU (512 bytes on v4 and
    v5e, 32 on v5p and v6e: :attr:`jaxcost.hardware.Chip.tuple_table_alignment`).

    ``unknown`` counts opcodes without a rule: they are priced at the default
    bytes and zero flops, and reported, never dropped silently.
    """

    def __init__(self, number=float, tpu_table_alignment: int = TPU_TABLE_ALIGNMENT) -> None:
        self.num = number
        self.tpu_table_alignment = tpu_table_alignment  # see Shape.table_bytes
        self._costs: dict[int, HloCost] = {}
        self._computations: dict[str, HloCost] = {}
        self.unknown: dict[str, int] = {}

    def cost(self, flops, transcendentals, bytes_accessed) -> HloCost:
        """An :class:`HloCost` in this model's arithmetic."""
        return HloCost(self.num(flops), self.num(transcendentals), self.num(bytes_accessed))

    def total(self, values) -> float:
        """Sum in this model's arithmetic, left to right (as XLA's ``+=``)."""
        acc = self.num(0)
        for v in values:
            acc = acc + self.num(v)
        return acc

    def instruction_cost(self, inst: Instruction) -> HloCost:
        """:meth:`price` of ``inst``, memoised."""
        key = id(inst)
        if key not in self._costs:
            self._costs[key] = self.price(inst)
        return self._costs[key]

    def price(self, inst: Instruction) -> HloCost:
        """The cost of one instruction by its opcode's rule."""
        fn = RULES.get(inst.opcode)
        if fn is None:
            self.unknown[inst.opcode] = self.unknown.get(inst.opcode, 0) + 1
            return self.cost(0, 0, default_bytes(inst, self))
        return fn(inst, self)

    def computation_cost(self, comp: Computation | None) -> HloCost:
        """Sum of the computation's instructions, visited in XLA's post order."""
        if comp is None:
            return HloCost()
        if comp.name not in self._computations:
            total = self.cost(0, 0, 0)
            for inst in post_order(comp):
                total = total + self.instruction_cost(inst)
            self._computations[comp.name] = total
        return self._computations[comp.name]


def post_order(comp: Computation) -> list[Instruction]:
    """Instructions in the order ``HloComputation::Accept`` visits them: a
    depth-first post order from each root, operands left to right; roots not
    reachable from the computation's root (unused instructions) first."""
    order: list[Instruction] = []
    state: dict[int, int] = {}  # 1 visiting, 2 visited

    def visit(start: Instruction) -> None:
        stack = [start]
        while stack:
            node = stack[-1]
            st = state.get(id(node))
            if st == 2:
                stack.pop()
                continue
            if st == 1:
                stack.pop()
                state[id(node)] = 2
                order.append(node)
                continue
            state[id(node)] = 1
            children = [c for c in node.operands if state.get(id(c)) != 2]
            stack.extend(reversed(children))

    root = comp.root
    for inst in comp.instructions:
        if not inst.users and inst is not root:
            visit(inst)
    visit(root)
    for inst in comp.instructions:  # anything the walk missed still costs
        if id(inst) not in state:
            visit(inst)
    return order
