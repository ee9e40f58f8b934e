"""Why theory and compiler differ: a ledger whose lines add up exactly.

The flops ledger walks from the textbook figure to XLA's, for the whole program::

    2 x textbook MACs                     dense: taps on padding counted          ┐ whole program:
      - padding taps                      XLA counts valid taps only              │ loop bodies x trip
      + elementwise/reduction work        BN, ReLU, pooling, softmax ...          │ count (theory and
      = theory, XLA convention                                                    │ jaxcost's walk of
      + lowering: <primitive>             known expansions (erf, logistic, ...)   │ the lowered HLO)
      + lowering: other (unexplained)     what no known cause covers              │
      = XLA unoptimized, trip-count corrected                                     ┘
      - XLA counts loop bodies once       the body of a while once, not n times  ┐ XLA's convention
      - custom calls XLA reports as -1                                            │ (what
      + XLA's float32 summation rounding  XLA sums float32 properties             │ cost_analysis()
      = XLA unoptimized (cost_analysis)                                           │ reports)
      - partitioned over N devices        global lowered work / N (SPMD)         │
      - rematerialised work XLA removed   recompute rows, compiled - lowered     │
      + optimizer rewrites                optimized - unoptimized, by primitive   │
      = XLA optimized (cost_analysis)                                             ┘

Every line is a signed amount; ``textbook + sum(lines) == total`` exactly (all figures are
integers below 2**53), which :meth:`Explanation.check` asserts. Beside it a bytes ledger
(XLA unoptimized bytes -> fusion -> eliminated ops -> other changes -> XLA optimized bytes),
per-layer lines (textbook -> padding -> work -> compiled), and notes that are not amounts
(the textbook's 2n - 1 per dot output, transcendentals XLA keeps apart).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from jaxcost.compiler.loops import trip_count
from jaxcost.compiler.model import CostModel
from jaxcost.names import RECOMPUTE, split_op_name
from jaxcost.report.show import Shown

CONTRACTIONS = ("conv_general_dilated", "dot_general")
WHOLE = "whole program, loop bodies x trip count"
XLA_BASIS = "XLA's convention, loop bodies once"


@dataclasses.dataclass(frozen=True)
class Difference:
    """One ledger line: the ``flops`` (or ``bytes``) it adds, signed so that the lines, applied
    in order, walk from the ledger's start to its total. ``basis`` says which total it is on."""

    cause: str
    flops: float = 0.0
    bytes: float = 0.0
    layer: str | None = None  # None: whole program
    detail: str = ""
    basis: str = ""


@dataclasses.dataclass(frozen=True)
class Explanation(Shown):
    """The ledgers. ``lines`` (flops) start at ``textbook_flops`` and end at ``total_flops``;
    ``bytes_lines`` start at ``bytes_start`` and end at ``bytes_total``; ``layer_lines`` walk each
    layer from its textbook flops to its compiled flops; ``notes`` are facts without an amount."""

    lines: list[Difference]
    textbook_flops: float  # 2 x dense MACs (trip-count corrected)
    theory_xla_flops: float
    xla_unoptimized_flops: float | None
    xla_optimized_flops: float | None
    total_flops: float
    total_label: str
    unexplained_flops: float = 0.0  # |net lowering difference| of primitives with no known cause
    unexplained_basis: float = 0.0  # the corrected unoptimized total the fraction is taken of
    bytes_lines: list[Difference] = dataclasses.field(default_factory=list)
    bytes_start: float = 0.0
    bytes_total: float = 0.0
    layer_lines: list[Difference] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def __repr__(self) -> str:
        return (f"Explanation(textbook={self.textbook_flops:,.0f}, lines={len(self.lines)}, "
                f"total={self.total_flops:,.0f} ({self.total_label}), "
                f"unexplained={self.unexplained_fraction:.3%})")

    @property
    def differences(self) -> list[Difference]:
        """Every line: the flops ledger, the bytes ledger, then the per-layer lines."""
        return [*self.lines, *self.bytes_lines, *self.layer_lines]

    @property
    def unexplained_fraction(self) -> float:
        """|unexplained lowering difference| / the trip-count corrected unoptimized total
        (the two are on the same basis)."""
        ref = self.unexplained_basis
        return abs(self.unexplained_flops) / ref if ref else 0.0

    def totals(self) -> list[Difference]:
        return [d for d in self.differences if d.layer is None]

    def for_layer(self, layer: str) -> list[Difference]:
        return [d for d in self.layer_lines if d.layer == layer]

    def check(self) -> None:
        """Raise AssertionError unless every ledger adds up exactly."""
        flops = self.textbook_flops + sum(d.flops for d in self.lines)
        assert flops == self.total_flops, f"flops ledger: {flops!r} != {self.total_flops!r}"
        if self.bytes_lines:
            b = self.bytes_start + sum(d.bytes for d in self.bytes_lines)
            assert b == self.bytes_total, f"bytes ledger: {b!r} != {self.bytes_total!r}"

    def __rich__(self):
        from rich.text import Text

        return Text(self.text(), no_wrap=True, overflow="ellipsis")

    def text(self, max_layers: int = 8) -> str:
        from jaxcost.report.format import si

        def line(sign: str, label: str, amount: str, detail: str = "") -> str:
            return f"  {sign} {label:<44}{amount:>14}" + (f"   {detail}" if detail else "")

        out = [f"Theory vs compiler, flops (lines add up exactly; {WHOLE} down to the corrected total,",
               "then XLA's convention):",
               line(" ", "2 x textbook MACs (dense)", si(self.textbook_flops))]
        for d in self.lines:
            out.append(line("+" if d.flops >= 0 else "-", d.cause, si(abs(d.flops)), d.detail))
        out.append(line("=", self.total_label, si(self.total_flops)))
        out.append(f"  unexplained: {si(self.unexplained_flops)} "
                   f"({100 * self.unexplained_fraction:.3f} % of the corrected unoptimized flops)")
        if self.bytes_lines:
            out += ["Bytes (XLA's convention):", line(" ", "XLA unoptimized bytes", si(self.bytes_start, "B"))]
            for d in self.bytes_lines:
                out.append(line("+" if d.bytes >= 0 else "-", d.cause, si(abs(d.bytes), "B"), d.detail))
            out.append(line("=", "XLA optimized bytes", si(self.bytes_total, "B")))
        if self.notes:
            out += ["Notes:"] + [f"  - {n}" for n in self.notes]
        per_layer: dict[str, float] = defaultdict(float)
        for d in self.layer_lines:
            if d.cause == "padding taps not counted by XLA":
                per_layer[d.layer] += -d.flops
        top = sorted(per_layer.items(), key=lambda kv: -kv[1])[:max_layers]
        if top:
            out.append("  largest padding-tap differences: " + ", ".join(f"{k} {si(v)}" for k, v in top))
        return "\n".join(out)


# Primitives whose XLA lowering does more (or other) arithmetic than the one op the theory counts.
LOWERING_CAUSES = {
    "erf": "erf is expanded into a rational polynomial when lowered",
    "erf_inv": "erf_inv is expanded into a polynomial when lowered",
    "erfc": "erfc is expanded into a polynomial when lowered",
    "lgamma": "lgamma is expanded into a series when lowered",
    "digamma": "digamma is expanded into a series when lowered",
    "atan": "atan is expanded when lowered", "asin": "asin is expanded when lowered",
    "acos": "acos is expanded when lowered", "sinh": "sinh is expanded when lowered",
    "cosh": "cosh is expanded when lowered", "asinh": "asinh is expanded when lowered",
    "acosh": "acosh is expanded when lowered", "atanh": "atanh is expanded when lowered",
    "gather": "gather's out-of-bounds handling (index compare and select of the fill value)",
    "_take": "jnp.take's out-of-bounds handling (index compare, select of the fill value)",
    "_take_along_axis": "jnp.take_along_axis's out-of-bounds handling",
    "logistic": "logistic is lowered to neg, exp, add, divide",
    "scatter": "scatter index arithmetic", "dynamic_slice": "dynamic_slice index clamping",
    "dynamic_update_slice": "dynamic_update_slice index clamping",
}


# The JAX primitive an HLO opcode comes from, for instructions without op_name metadata.
_OPCODE_PRIMITIVE = {
    "dot": "dot_general", "convolution": "conv_general_dilated", "add": "add", "subtract": "sub",
    "multiply": "mul", "divide": "div", "maximum": "max", "minimum": "min", "reduce": "reduce_sum",
    "reduce-window": "reduce_window_sum", "negate": "neg", "exponential": "exp",
}


LOOP_CONTROL = "loop control"
LOWERING_CAUSES[LOOP_CONTROL] = ("the counter increment and bound compare of lowered scan/fori_loop/while "
                                 "loops (the jaxpr has no equation for them)")


def _is_loop_control(inst) -> bool:
    """A scalar integer add/compare of a lowered while's body or condition (``.../while/body/add``)."""
    if inst.opcode not in ("add", "compare") or not inst.operands:
        return False
    s = inst.operands[0].shape
    if s.is_tuple or s.dims or not s.dtype.startswith(("s", "u")):
        return False
    path = split_op_name(inst.op_name).path
    return path.endswith(("while/body", "while/cond"))


@dataclasses.dataclass
class _Walk:
    """Flops of a module by JAX primitive, loop bodies x trip count (custom calls apart)."""

    by_primitive: dict[str, float]
    custom_calls: float  # flops XLA gives custom calls (-1 each), counted as XLA counts them
    loops: list[str]     # "while.3 x 10"
    opaque: set[str]     # primitives lowered to a custom call (LAPACK, callbacks): XLA can't price them


def _primitive_flops(module, primitives: frozenset[str] = frozenset()) -> _Walk:
    model = CostModel()
    out: dict[str, float] = defaultdict(float)
    custom = 0.0
    loops: list[str] = []
    opaque: set[str] = set()

    def primitive(inst, owner: str) -> str:
        # helpers emitted by a primitive's lowering carry a bare name ("select_n"): charge the owner;
        # instructions the optimizer created without metadata go by the primitive of their opcode
        if _is_loop_control(inst):
            return LOOP_CONTROL
        if "/" not in inst.op_name:
            if inst.op_name in primitives and owner not in LOWERING_CAUSES:
                return inst.op_name  # an equation of a jitted helper's own jaxpr (jnp.linalg's)
            return owner or inst.op_name or _OPCODE_PRIMITIVE.get(inst.opcode, inst.opcode)
        return split_op_name(inst.op_name).primitive or inst.opcode

    def owner_of(call) -> str:
        prim = split_op_name(call.op_name).primitive
        if prim.startswith("jit(") and prim.endswith(")"):
            prim = prim[4:-1]  # a jitted helper such as jnp.take's "jit(_take)"
        return "" if not prim or "(" in prim or prim in ("closed_call", "pjit", "call") else prim

    def walk(comp, mult: float, owner: str):
        nonlocal custom
        for inst in comp.instructions:
            if inst.opcode == "while" and inst.called:
                n = trip_count(inst)
                # unknown (data-dependent): body and condition once, as XLA and the theory do
                runs = (1, 1) if n is None else (n, n + 1)
                loops.append(f"{inst.name} x {'?' if n is None else n}")
                for key, k in zip(("body", "condition"), runs):
                    if inst.called_by(key) is not None:
                        walk(inst.called_by(key), mult * k, owner)
                continue
            if inst.opcode == "conditional" and inst.called:
                # XLA prices a conditional as its costliest branch: walk that one only
                branch = max(inst.called, key=lambda c: model.computation_cost(c).flops)
                walk(branch, mult, owner)
                continue
            if inst.opcode in ("fusion", "call") and inst.called:
                for sub in inst.called:
                    walk(sub, mult, owner_of(inst) if inst.opcode == "call" else owner)
                continue
            if inst.opcode in ("parameter", "constant"):
                continue
            flops = model.instruction_cost(inst).flops  # reduce & co. include their reducer
            if inst.opcode == "custom-call":
                custom += flops  # XLA's -1 marks work it cannot see; corrected apart
                opaque.add(primitive(inst, owner))
            elif flops:
                out[primitive(inst, owner)] += flops * mult

    walk(module.module.entry, 1.0, "")
    return _Walk(dict(out), custom, loops, opaque)


def _theory_by_primitive(theory) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for e in theory.eqns:
        out[e.primitive] += e.flops_xla * e.count
    return out


def _lowering_lines(theory_by_prim, lowered: _Walk) -> tuple[list[Difference], float]:
    known, opaque, unknown = [], [], []
    lowered_by_prim = lowered.by_primitive
    for prim in sorted(set(lowered_by_prim) | set(theory_by_prim)):
        delta = lowered_by_prim.get(prim, 0.0) - theory_by_prim.get(prim, 0.0)
        if not delta:
            continue
        if prim in lowered.opaque and delta < 0:
            opaque.append((prim, delta))  # the theory counts what the custom call does
        elif prim in LOWERING_CAUSES and delta > 0:
            known.append((prim, delta))
        else:
            # work that moved away (logistic -> neg/exp/add/div named apart) is relabelling
            # and nets against the other primitives
            unknown.append((prim, delta))
    lines = [Difference(f"lowering: {p}", d, detail=LOWERING_CAUSES[p], basis=WHOLE) for p, d in known]
    lines += [Difference(f"lowering: {p} is a custom call", d, basis=WHOLE,
                         detail="XLA cannot see inside it (LAPACK, a callback): the theory's count, "
                                "not XLA's") for p, d in opaque]
    unexplained = 0.0
    if unknown:
        # net, so that work merely relabelled between primitives (max vs relu) cancels
        net = sum(d for _, d in unknown)
        unexplained = abs(net)
        label = "lowering: relabelled between primitives" if not net else "lowering: other (unexplained)"
        lines.append(Difference(label, net, basis=WHOLE, detail="; ".join(
            f"{p} {d:+,.0f}" for p, d in sorted(unknown, key=lambda x: -abs(x[1]))[:5])))
    return lines, unexplained


def _xla_convention_lines(module, walk: _Walk, reported) -> tuple[list[Difference], float]:
    """From jaxcost's corrected walk of a module to what XLA reports for it."""
    lines = []
    walked = sum(walk.by_primitive.values())
    exact = float(module.total.flops)
    loops = exact - walk.custom_calls - walked
    if loops:
        label = "XLA counts loop bodies once" if walk.loops else "jaxcost walk vs XLA's sum"
        lines.append(Difference(label, loops, detail=", ".join(walk.loops[:6]), basis=XLA_BASIS))
    if walk.custom_calls:
        lines.append(Difference("custom calls XLA reports as -1", walk.custom_calls, basis=XLA_BASIS,
                                detail="see Analysis.corrected for what jaxcost counts for them"))
    total = exact
    if reported is not None and reported != exact:
        lines.append(Difference("XLA's float32 summation rounding", reported - exact, basis=XLA_BASIS,
                                detail="XLA keeps its properties in float32"))
        total = reported
    return lines, total


def _bytes_lines(analysis) -> tuple[list[Difference], float, float]:
    un, opt = analysis.compiler_unoptimized, analysis.compiler
    start = un.bytes_accessed if un.available else float(analysis.module_unoptimized.total.bytes_accessed)
    end = opt.bytes_accessed if opt.available else float(analysis.module.total.bytes_accessed)
    report = analysis.fusion_report()
    # kernels share the bytes of ops they both hold, so a kernel's saving may be fractional:
    # whole bytes keep the ledger exact
    fused = float(round(sum(k.saved for k in report.fusions)))
    eliminated = float(round(report.eliminated))
    lines = [Difference("bytes removed by fusion", bytes=-fused, basis=XLA_BASIS,
                        detail=f"{len(report.fusions)} fused kernels keep intermediates on chip"),
             Difference("ops removed by the optimizer", bytes=-eliminated, basis=XLA_BASIS,
                        detail="reshapes, broadcasts, transposes folded into layouts; constants folded")]
    rest = end - (start - fused - eliminated)
    if rest:
        lines.append(Difference("other changes (copies, layouts, unfused rewrites, rounding)", bytes=rest,
                                basis=XLA_BASIS))
    return lines, start, end


def _layer_lines(analysis) -> list[Difference]:
    out = []
    for row in analysis.layers:
        lt = row.theory
        if lt is None:
            continue
        path = row.path if row.direction == "forward" else f"{row.path} [{row.direction}]"
        if lt.padding_taps:
            out.append(Difference("padding taps not counted by XLA", -2.0 * lt.padding_taps, layer=path,
                                  basis=WHOLE))
        work = float(lt.flops_xla) - 2.0 * lt.macs_valid
        if work:
            out.append(Difference("elementwise/reduction work", work, layer=path, basis=WHOLE))
        compiled = row.flops if analysis.compiled else row.flops_unoptimized
        if compiled != lt.flops_xla:
            out.append(Difference("compiler vs theory (XLA convention)", compiled - lt.flops_xla, layer=path,
                                  basis="compiler: loop bodies once; theory: x trip count"))
    return out


def _manual(op) -> bool:
    """An op of the lowered module already written per device: a ``shard_map`` body."""
    return op.instruction is not None and split_op_name(op.instruction.op_name).primitive == "shard_map"


def explain(analysis) -> Explanation:
    """The ledgers of one :class:`~jaxcost.analysis.Analysis` (needs its theory side)."""
    th = analysis.theory
    if th is None:
        raise ValueError("explain() needs the theory side: analyze(..., theory=True)")
    t = th.totals
    textbook = 2.0 * t.macs
    lines = []
    if t.padding_taps:
        lines.append(Difference("padding taps not counted by XLA", -2.0 * t.padding_taps, basis=WHOLE,
                                detail=f"{t.padding_taps:,} MACs land on padding"))
    theory_by_prim = _theory_by_primitive(th)
    top = sorted(((p, v) for p, v in theory_by_prim.items() if p not in CONTRACTIONS and v),
                 key=lambda kv: -kv[1])
    lines.append(Difference("elementwise/reduction work", float(t.flops_xla) - 2.0 * t.macs_valid, basis=WHOLE,
                            detail="; ".join(f"{p} {v:,.0f}" for p, v in top[:6])))
    outputs = sum((e.flops_xla - e.flops_textbook + 2 * (e.macs - e.macs_valid)) * e.count
                  for e in th.eqns if e.primitive in CONTRACTIONS)
    notes = [(f"textbook FLOPs ({t.flops_textbook:,}) count 2n-1 per unbiased dot/conv output: "
              f"{outputs:,.0f} outputs fewer than 2 x MACs"),
             f"{t.transcendentals:,} transcendentals (exp/log/tanh/rsqrt/...) are kept apart by XLA, not in flops"]

    un, opt = analysis.compiler_unoptimized, analysis.compiler
    lowered = _primitive_flops(analysis.module_unoptimized, frozenset(theory_by_prim))
    low_lines, unexplained = _lowering_lines(theory_by_prim, lowered)
    lines += low_lines
    corrected_unopt = sum(lowered.by_primitive.values())
    conv_lines, total = _xla_convention_lines(analysis.module_unoptimized, lowered,
                                              un.flops if un.available else None)
    lines += conv_lines
    label = "XLA unoptimized (cost_analysis)" if un.available else "XLA unoptimized (jaxcost's sum)"
    bytes_lines, bytes_start, bytes_total = [], 0.0, 0.0
    if analysis.module is not None:
        after = _primitive_flops(analysis.module, frozenset(theory_by_prim)).by_primitive
        split = analysis.partitioning
        scale = 1 / split.devices if split.partitioned and not split.manual else 1  # detail only
        changes = {p: after.get(p, 0.0) - scale * lowered.by_primitive.get(p, 0.0)
                   for p in set(after) | set(lowered.by_primitive)}
        top = sorted(((p, v) for p, v in changes.items() if v), key=lambda kv: -abs(kv[1]))[:5]
        end = opt.flops if opt.available else float(analysis.module.total.flops)
        whole = sum(op.flops for op in analysis.ops_unoptimized if op.flops > 0 and not _manual(op))
        share = round(whole / split.devices) - whole
        if share:
            lines.append(Difference(f"partitioned over {split.devices} devices (SPMD: the compiled program is one "
                                    "device's)", share, basis=XLA_BASIS,
                                    detail=f"lowered global work outside shard_map {whole:,.0f} / {split.devices}"))
            total += share
        remat = [r for r in analysis.layers if r.direction == RECOMPUTE]
        lowered_remat, compiled_remat = sum(r.flops_unoptimized for r in remat), sum(r.flops for r in remat)
        recompute = compiled_remat - lowered_remat
        if recompute:
            lines.append(Difference("rematerialised work XLA removed (CSE with the forward pass, dead code)",
                                    recompute, basis=XLA_BASIS,
                                    detail=f"recompute rows: {lowered_remat:,.0f} lowered -> {compiled_remat:,.0f} compiled"))
            total += recompute
        lines.append(Difference("optimizer rewrites (optimized - unoptimized)", end - total, basis=XLA_BASIS,
                                detail="; ".join(f"{p} {v:+,.0f}" for p, v in top)))
        total = end
        label = "XLA optimized (cost_analysis)" if opt.available else "XLA optimized (jaxcost's sum)"
        bytes_lines, bytes_start, bytes_total = _bytes_lines(analysis)
    return Explanation(lines, textbook, float(t.flops_xla), un.flops if un.available else None,
                       opt.flops if opt.available else None, total, label, unexplained, corrected_unopt,
                       bytes_lines, bytes_start, bytes_total, _layer_lines(analysis), notes)
