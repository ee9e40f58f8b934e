"""Peer conventions as data: a model's cost as ptflops, fvcore, torch's FlopCounterMode,
DeepSpeed, Flax ``tabulate`` and Keras count it, from jaxcost's theory records.

>>> import jax, jaxcost, models
>>> th = jaxcost.analyze_theory(models.build_abstract("resnet50"),
...                             jax.ShapeDtypeStruct((1, 224, 224, 3), jax.numpy.float32))
>>> jaxcost.conventions.count(th, "ptflops")
ConventionCount(ptflops: 4.132 G MACs, params=25,557,032)

Each tool is a :class:`Convention`: rules from torch-level op kinds (recognised from JAX
primitive patterns, :mod:`jaxcost.conventions.ops`) to that tool's count, every rule citing
the tool's source file (:mod:`jaxcost.conventions.peers`). :func:`conventions_table` and
:func:`summary` put every tool's total beside jaxcost's own figures with the reason each
differs.
"""

from __future__ import annotations

import dataclasses

from jaxcost.conventions.convention import Convention, ConventionCount, Rule
from jaxcost.conventions.ops import KINDS, TorchOp, torch_ops
from jaxcost.conventions.peers import CONVENTIONS
from jaxcost.names import FORWARD
from jaxcost.report.format import si
from jaxcost.theory.registry import TheoryResult

TOOLS: tuple[str, ...] = tuple(CONVENTIONS)

__all__ = ["KINDS", "TOOLS", "Convention", "ConventionCount", "ConventionRow", "Rule", "TorchOp", "convention",
           "conventions_table", "count", "count_all", "summary", "torch_ops"]


def _theory(x) -> TheoryResult:
    if isinstance(x, TheoryResult):
        return x
    if hasattr(x, "theory"):
        if x.theory is None:
            raise ValueError("this Analysis has no theory records (made with theory=False): re-run with theory=True")
        return x.theory
    raise TypeError(f"expected a jaxcost Analysis or TheoryResult, got {type(x).__name__}")


def _params(x, theory: TheoryResult) -> int:
    """The model's parameters: the Analysis' exact count, else the parameter elements the
    forward pass reads (each parameter read once)."""
    if not isinstance(x, TheoryResult):
        return x.params
    return sum(e.params_read * e.count for e in theory.eqns if e.direction == FORWARD)


def convention(tool: str) -> Convention:
    """The :class:`Convention` of ``tool`` (one of :data:`TOOLS`)."""
    try:
        return CONVENTIONS[tool]
    except KeyError:
        raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}") from None


def count(theory_or_analysis, tool: str) -> ConventionCount:
    """The cost of an :class:`~jaxcost.Analysis` or :class:`~jaxcost.TheoryResult` as ``tool``
    counts it (one of :data:`TOOLS`)."""
    conv = convention(tool)
    theory = _theory(theory_or_analysis)
    return conv.apply(torch_ops(theory), _params(theory_or_analysis, theory))


def count_all(theory_or_analysis) -> dict[str, ConventionCount]:
    """Every tool's count, by tool name (the ops are recognised once)."""
    theory = _theory(theory_or_analysis)
    ops, params = torch_ops(theory), _params(theory_or_analysis, theory)
    return {name: c.apply(ops, params) for name, c in CONVENTIONS.items()}


@dataclasses.dataclass(frozen=True)
class ConventionRow:
    """One line of "as other tools count it": ``tool``'s total beside jaxcost's figure in the
    same unit over the same directions (``jaxcost``, named by ``jaxcost_label``), and why they
    differ."""

    tool: str
    title: str
    total: int
    unit: str
    jaxcost: int
    jaxcost_label: str
    reason: str

    @property
    def ratio(self) -> float | None:
        """``total / jaxcost`` (``None`` when jaxcost's figure is 0)."""
        return self.total / self.jaxcost if self.jaxcost else None


def _reference(theory: TheoryResult, conv: Convention, params: int) -> tuple[int, str]:
    """jaxcost's own figure in ``conv``'s unit over its directions."""
    if conv.unit == "params":
        return params, "parameters"
    eqns = [e for e in theory.eqns if e.direction in conv.directions]
    if conv.unit == "MACs":
        return sum(e.macs * e.count for e in eqns), "theory MACs (dense)"
    return sum(e.flops_xla * e.count for e in eqns), "theory XLA flops"


def conventions_table(theory_or_analysis) -> list[ConventionRow]:
    """One :class:`ConventionRow` per tool of :data:`TOOLS`."""
    theory = _theory(theory_or_analysis)
    params = _params(theory_or_analysis, theory)
    rows = []
    for name, c in count_all(theory_or_analysis).items():
        conv = CONVENTIONS[name]
        ref, label = _reference(theory, conv, params)
        rows.append(ConventionRow(name, conv.title, c.total, c.unit, ref, label, c.reason))
    return rows


def _jaxcost_line(x, theory: TheoryResult, params: int) -> str:
    fwd = [e for e in theory.eqns if e.direction == FORWARD]
    t = {f: sum(getattr(e, f) * e.count for e in fwd) for f in ("macs", "macs_valid", "flops_textbook", "flops_xla")}
    line = (f"jaxcost (forward): {si(t['macs'])} MACs dense, {si(t['macs_valid'])} on valid taps, "
            f"{si(t['flops_textbook'])} textbook FLOPs, {si(t['flops_xla'])} XLA FLOPs, {params:,} params")
    if not isinstance(x, TheoryResult):
        xla = [f"{label} {si(totals.flops)}" for label, totals in
               (("lowered", x.compiler_unoptimized), ("compiled", x.compiler)) if totals.available]
        if xla:
            line += f"; XLA {', '.join(xla)} FLOPs (whole program)"
    return line


def summary(theory_or_analysis) -> str:
    """"As other tools count it": every tool's total next to jaxcost's figure in the same unit,
    with the one-line reason it differs, under a line of jaxcost's theory (and XLA) totals."""
    theory = _theory(theory_or_analysis)
    params = _params(theory_or_analysis, theory)
    lines = ["As other tools count it", "  " + _jaxcost_line(theory_or_analysis, theory, params)]
    rows = conventions_table(theory_or_analysis)
    width = max(len(r.title) for r in rows)
    for r in rows:
        total = f"{r.total:,}" if r.unit == "params" else si(r.total)
        delta = f"{100 * (r.ratio - 1):+.1f} %" if r.ratio is not None else "-"
        lines.append(f"  {r.title:<{width}}  {total:>11} {r.unit:<6} {delta:>8} vs {r.jaxcost_label}: {r.reason}")
    return "\n".join(lines)
