"""The layer tree in model order: what ``nnx.tabulate`` and Keras' ``summary()`` show, with
jaxcost's costs.

Each layer row (:class:`~jaxcost.join.LayerRow`) is added to its node and to every ancestor
(``layer1/0/conv1`` also counts in ``layer1/0`` and ``layer1``), so a node's figures cover its
subtree and the root's are the program's totals. Model order is the order modules were first
called while tracing (``Analysis.layer_shapes``, which also gives each module's input and output
shapes); paths no module call named (plain functions' ``jax.named_scope``\\ s) follow in the
order the theory engine met them.
"""

from __future__ import annotations

import dataclasses

from jaxcost.names import DIRECTIONS, FORWARD


@dataclasses.dataclass
class Node:
    """One layer path and its subtree: ``flops`` per direction (XLA; the optimized module, or
    the lowered one when the program was not compiled), bytes optimized / lowered, parameters,
    theory MACs and flops (forward), input and output shapes where known."""

    path: str
    depth: int
    order: int
    inputs: str = ""
    outputs: str = ""
    params: int = 0
    macs: int = 0
    theory_flops: int = 0
    flops: dict[str, float] = dataclasses.field(default_factory=dict)
    bytes_accessed: float = 0.0
    bytes_unoptimized: float = 0.0
    fusions: int = 0
    own: bool = False  # a layer row of its own (not only an ancestor of others)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1] if self.path else "(program)"

    @property
    def total_flops(self) -> float:
        return sum(self.flops.values())

    def __repr__(self) -> str:
        return f"Node({self.path or '(program)'}, depth={self.depth}, params={self.params:,}, flops={self.total_flops:,.0f})"


def _prefixes(path: str) -> list[str]:
    parts = path.split("/") if path else []
    return [""] + ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def layer_tree(a) -> list[Node]:
    """The nodes of analysis ``a`` in model order (pre-order: a parent before its children)."""
    rank: dict[str, int] = {}
    for path in a.layer_shapes:
        rank.setdefault(path, len(rank))
    if a.theory is not None:
        for e in a.theory.eqns:
            rank.setdefault(e.path, len(rank))
    for r in a.layers:
        rank.setdefault(r.path, len(rank))
    nodes: dict[str, Node] = {}

    def node(path: str) -> Node:
        if path not in nodes:
            nodes[path] = Node(path, 0 if not path else path.count("/") + 1, rank.get(path, len(rank)))
        return nodes[path]

    for r in a.layers:
        flops = r.flops if a.compiled else r.flops_unoptimized
        node(r.path).own = True
        for p in _prefixes(r.path):
            n = node(p)
            n.flops[r.direction] = n.flops.get(r.direction, 0.0) + flops
            n.bytes_accessed += r.bytes_accessed
            n.bytes_unoptimized += r.bytes_unoptimized
            n.params += r.params
            n.fusions += len(r.fusions)
            if r.theory is not None and r.direction == FORWARD:
                n.macs += r.theory.macs
                n.theory_flops += r.theory.flops_xla
    for path, (inputs, outputs) in a.layer_shapes.items():
        n = node(path)
        n.inputs, n.outputs = inputs, outputs
    # pre-order: a subtree sorts where its first-called member does
    first: dict[str, int] = {}
    for n in nodes.values():
        for p in _prefixes(n.path):
            first[p] = min(first.get(p, n.order), n.order)
    key = {path: tuple((first[p], p) for p in _prefixes(path)[1:]) for path in nodes}
    ordered = sorted(nodes.values(), key=lambda n: key[n.path])
    for n in ordered:
        n.flops = {d: n.flops[d] for d in DIRECTIONS if d in n.flops}
    return ordered
