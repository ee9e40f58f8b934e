"""A counting convention as data: rules from torch-level op kinds to a tool's count.

A :class:`Convention` is a tool's name, its unit, the directions it sees and one
:class:`Rule` per op kind it counts (:mod:`jaxcost.conventions.ops` names the kinds and
their JAX primitive patterns); every rule cites the tool's source file. Kinds without a
rule are what the tool ignores. :meth:`Convention.apply` turns a list of
:class:`~jaxcost.conventions.ops.TorchOp` into a :class:`ConventionCount`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from jaxcost.conventions.ops import TorchOp
from jaxcost.names import FORWARD
from jaxcost.report.format import si


@dataclasses.dataclass(frozen=True)
class Rule:
    """``kind`` ops count ``count(op)`` each (per execution); ``what`` says it in words,
    ``source`` is where the tool does it (``owner/repo path: function``)."""

    kind: str
    what: str
    count: Callable[[TorchOp], int]
    source: str


@dataclasses.dataclass(frozen=True)
class ConventionCount:
    """A model's cost as ``tool`` counts it: ``total`` in ``unit`` (``"MACs"``, ``"FLOPs"`` or
    ``"params"``), ``per_layer`` by ``(path, direction)``, ``counted`` by op kind, ``ignored``
    op kinds with the number of ops of each the tool skips, the one-line ``reason`` it differs
    from jaxcost's theory, and the ``params`` the tool prints beside the total (``None`` when
    it prints none)."""

    tool: str
    total: int
    unit: str
    per_layer: dict[tuple[str, str], int]
    counted: dict[str, int]
    ignored: dict[str, int]
    reason: str
    params: int | None = None

    def __repr__(self) -> str:
        params = f", params={self.params:,}" if self.params is not None else ""
        return f"ConventionCount({self.tool}: {si(self.total)} {self.unit}{params})"


@dataclasses.dataclass(frozen=True)
class Convention:
    """How ``tool`` (``title`` in reports) counts: its ``rules``, the ``directions`` it sees
    (a forward-hook tool sees the forward pass only), whether it prints ``params`` beside the
    total, and the ``reason`` its total differs from jaxcost's."""

    tool: str
    title: str
    unit: str
    rules: tuple[Rule, ...]
    reason: str
    directions: tuple[str, ...] = (FORWARD,)
    prints_params: bool = True

    def rule(self, kind: str) -> Rule | None:
        return next((r for r in self.rules if r.kind == kind), None)

    def apply(self, ops: list[TorchOp], params: int) -> ConventionCount:
        """The count of ``ops`` (``params``: the model's parameter count, printed beside it)."""
        per_layer: dict[tuple[str, str], int] = {}
        counted: dict[str, int] = {}
        ignored: dict[str, int] = {}
        for op in ops:
            if op.direction not in self.directions:
                continue
            rule = self.rule(op.kind)
            if rule is None:
                ignored[op.kind] = ignored.get(op.kind, 0) + op.times
                continue
            n = rule.count(op) * op.times
            if not n:
                continue
            counted[op.kind] = counted.get(op.kind, 0) + n
            key = (op.path, op.direction)
            per_layer[key] = per_layer.get(key, 0) + n
        return ConventionCount(self.tool, sum(counted.values()), self.unit, per_layer, counted, ignored,
                               self.reason, params if self.prints_params else None)
