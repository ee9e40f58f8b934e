"""The theory registry: JAX primitive name → rule, and the cost records.

A rule takes ``(eqn)`` and returns a :class:`TheoryCost` for ONE execution of the
equation. The engine fills in what every equation has (operand bytes, parameters
read), wraps it in an :class:`EqnCost` with the layer path, direction and the
multiplier of enclosing loops. Adding an op = adding one ``@register``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

_RULES: dict[str, Callable] = {}
_EXPANSIONS: dict[str, Callable] = {}
_NOTES: dict[str, str] = {}


def register(*primitives: str, note: str | None = None):
    """Register ``fn(eqn) -> TheoryCost`` for the JAX primitives named ``primitives``.

    ``note``: a caveat every analysis that meets one of these primitives repeats in its
    warnings (an estimate, or a count XLA's cost analysis does not make).
    """

    def deco(fn):
        for n in primitives:
            _RULES[n] = fn
            if note:
                _NOTES[n] = note
        return fn

    return deco


def register_expansion(*primitives: str):
    """Register ``fn(eqn) -> ClosedJaxpr``: the primitive is priced by walking the jaxpr JAX
    itself lowers it with (its invars are the equation's operands, in order)."""

    def deco(fn):
        for n in primitives:
            _EXPANSIONS[n] = fn
        return fn

    return deco


def get_rule(name: str):
    return _RULES.get(name)


def get_expansion(name: str):
    return _EXPANSIONS.get(name)


def note(name: str) -> str | None:
    return _NOTES.get(name)


def registered() -> frozenset[str]:
    """Every primitive the theory prices: by a rule or by an expansion."""
    return frozenset(_RULES) | frozenset(_EXPANSIONS)


@dataclasses.dataclass(frozen=True)
class TheoryCost:
    """Hand-derived cost; elements and operation counts, all exact integers.

    macs: dense MACs (conv: padded taps counted, the textbook count); macs_valid: conv taps
    that land on real input only (XLA's count). padding_taps = macs − macs_valid.
    flops_textbook: 2n − 1 per length-n dot (a bias add brings it to 2n); one per
    transcendental (sigmoid = 4). flops_xla: XLA's HloCostAnalysis convention (2 per valid
    MAC, 1 per elementwise op, transcendentals apart, reduce n_in − n_out).
    transcendentals: exp, log, tanh, rsqrt, ... elements. params_read: model-parameter
    elements read. bytes_in / bytes_out: operand / result bytes.
    accesses_naive / accesses_ideal: memory accesses in elements, Hollemans' per-layer model
    without reuse ("How fast is my model?") / the read-once model.
    """

    macs: int = 0
    macs_valid: int = 0
    flops_textbook: int = 0
    flops_xla: int = 0
    transcendentals: int = 0
    params_read: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    accesses_naive: int = 0
    accesses_ideal: int = 0
    padding_taps: int = 0

    @property
    def activation_bytes(self) -> int:
        return self.bytes_in + self.bytes_out

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f):,}" for f in COST_FIELDS if getattr(self, f))
        return f"TheoryCost({shown})"

    def _values(self) -> tuple[int, ...]:
        return tuple(getattr(self, f) for f in COST_FIELDS)

    def __add__(self, other: TheoryCost) -> TheoryCost:
        return TheoryCost(*(a + b for a, b in zip(self._values(), other._values())))

    def scaled(self, k: int) -> TheoryCost:
        """The cost of ``k`` executions."""
        return self if k == 1 else TheoryCost(*(k * a for a in self._values()))

    @staticmethod
    def sum(costs) -> TheoryCost:
        """The sum of an iterable of costs (an empty one costs nothing)."""
        out = TheoryCost()
        for c in costs:
            out = out + c
        return out


COST_FIELDS = tuple(f.name for f in dataclasses.fields(TheoryCost))


@dataclasses.dataclass(frozen=True)
class EqnCost:
    """One jaxpr equation: where it is, what it is, its cost for ONE execution and ``count``,
    the product of the trip counts of the loops around it. The cost fields read through:
    ``e.macs`` is ``e.cost.macs``. ``grad``: of a backward contraction, ``"input"`` or
    ``"weight"`` gradient (see :mod:`jaxcost.theory.engine`)."""

    path: str
    direction: str
    primitive: str
    cost: TheoryCost
    count: int = 1
    grad: str = ""

    @property
    def total(self) -> TheoryCost:
        """The cost of all ``count`` executions."""
        return self.cost.scaled(self.count)

    def __repr__(self) -> str:
        where = f"{self.path or '<root>'} ({self.direction})"
        times = f" ×{self.count}" if self.count != 1 else ""
        return f"EqnCost({self.primitive} at {where}{times}: {self.cost.flops_xla:,} flops_xla)"


for _name in (*COST_FIELDS, "activation_bytes"):
    setattr(EqnCost, _name, property(lambda self, _n=_name: getattr(self.cost, _n)))


@dataclasses.dataclass(frozen=True)
class TheoryResult:
    """Every priced equation, their totals, warnings and the primitives without a rule."""

    eqns: list[EqnCost]
    totals: TheoryCost
    warnings: list[str]
    unknown: dict[str, int]

    def by_layer(self) -> dict[tuple[str, str], TheoryCost]:
        """Totals per ``(path, direction)``: the backward pass of a layer is its own row."""
        out: dict[tuple[str, str], TheoryCost] = {}
        for e in self.eqns:
            key = (e.path, e.direction)
            out[key] = out.get(key, TheoryCost()) + e.total
        return out

    def by_grad(self) -> dict[tuple[str, str], TheoryCost]:
        """Backward contractions per ``(path, "input" | "weight")``: the input- and
        weight-gradient work of each conv / dense layer."""
        out: dict[tuple[str, str], TheoryCost] = {}
        for e in self.eqns:
            if e.grad:
                key = (e.path, e.grad)
                out[key] = out.get(key, TheoryCost()) + e.total
        return out

    def by_direction(self) -> dict[str, TheoryCost]:
        """Totals per direction (``forward``, ``backward``, ``recompute``, ``optimizer``)."""
        out: dict[str, TheoryCost] = {}
        for e in self.eqns:
            out[e.direction] = out.get(e.direction, TheoryCost()) + e.total
        return out

    def __repr__(self) -> str:
        return (f"TheoryResult({len(self.eqns)} eqns, {self.totals.flops_xla:,} flops_xla, "
                f"{self.totals.macs:,} MACs, {len(self.unknown)} unknown primitives)")
