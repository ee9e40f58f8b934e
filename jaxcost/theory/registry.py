"""The theory registry: JAX primitive name → rule, and the cost records.

A rule takes ``(eqn)`` and returns a :class:`Cost` for ONE execution of the
equation. The engine adds the layer path, direction, params read and the
multiplier of enclosing loops. Adding an op = adding one ``@rule``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

_RULES: dict[str, Callable] = {}


def rule(*names: str):
    """Register ``fn(eqn) -> Cost`` for the primitives ``names``."""

    def deco(fn):
        for n in names:
            _RULES[n] = fn
        return fn

    return deco


def get_rule(name: str):
    return _RULES.get(name)


def registered() -> frozenset[str]:
    return frozenset(_RULES)


@dataclasses.dataclass(frozen=True)
class Cost:
    """What a rule returns (elements and operation counts for one execution)."""

    macs: int = 0
    macs_valid: int = 0
    flops_textbook: int = 0
    flops_xla: int = 0
    transcendentals: int = 0
    accesses_naive: int = 0
    accesses_ideal: int = 0
    padding_taps: int = 0


_SUM_FIELDS = ("macs", "macs_valid", "flops_textbook", "flops_xla", "transcendentals", "params_read",
               "bytes_in", "bytes_out", "accesses_naive", "accesses_ideal", "padding_taps")


@dataclasses.dataclass(frozen=True)
class EqnCost:
    """Cost of one jaxpr equation for ONE execution; ``count`` is the loop multiplier (scan length).

    macs: dense MACs (conv: padded taps counted, textbook); macs_valid: conv valid taps only (XLA).
    flops_textbook: 2n−1 per length-n dot output (a following bias add brings it to 2n);
    transcendentals count 1 textbook FLOP each (sigmoid = 4). flops_xla: XLA HloCostAnalysis
    convention (2 per valid MAC, 1 per elementwise op, transcendentals apart, reduce in − out).
    params_read: elements of model parameters read (``param_invars``). bytes_in / bytes_out:
    operand / result bytes. accesses_naive / accesses_ideal: memory accesses in elements
    (seed 002 model / read-once model). padding_taps: macs − macs_valid.
    """

    path: str
    direction: str
    primitive: str
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
    count: int = 1


@dataclasses.dataclass(frozen=True)
class TheoryTotals:
    """Sums over equations, each multiplied by its ``count``."""

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

    @staticmethod
    def of(eqns) -> TheoryTotals:
        acc = dict.fromkeys(_SUM_FIELDS, 0)
        for e in eqns:
            c = e.count
            for f in _SUM_FIELDS:
                acc[f] += getattr(e, f) * c
        return TheoryTotals(**acc)


@dataclasses.dataclass(frozen=True)
class TheoryResult:
    eqns: list[EqnCost]
    totals: TheoryTotals
    warnings: list[str]
    unknown: dict[str, int]

    def by_layer(self) -> dict[str, TheoryTotals]:
        groups: dict[str, list[EqnCost]] = {}
        for e in self.eqns:
            groups.setdefault(e.path, []).append(e)
        return {p: TheoryTotals.of(es) for p, es in groups.items()}
