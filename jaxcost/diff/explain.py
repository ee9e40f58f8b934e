"""Why theory and compiler differ: a ledger of causes, each with its magnitude.

The chain, for the whole program and for each layer::

    2 x textbook MACs (dense: padded taps counted)
      - 2 x padding taps               (XLA counts valid taps only)
      + elementwise/reduction work     (BN, ReLU, pooling, softmax ... the textbook ignores)
      = theory, XLA convention          (jaxcost's theory engine)
      + lowering differences           (XLA unoptimized - theory; the unexplained part)
      + optimizer rewrites             (XLA optimized - unoptimized, by primitive)
      = XLA optimized flops

and beside it the textbook's own convention (2n - 1 per unbiased dot output), the
transcendentals XLA keeps apart, and the bytes that fusion removed.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from jaxcost.compiler.corrections import trip_count
from jaxcost.names import split_op_name

CONTRACTIONS = ("conv_general_dilated", "dot_general")


@dataclasses.dataclass(frozen=True)
class Difference:
    """One cause of a difference: ``flops`` (or ``bytes``) it accounts for, signed so that
    applying the differences in order walks from the textbook figure to XLA's."""

    cause: str
    flops: float = 0.0
    bytes: float = 0.0
    layer: str | None = None  # None: whole program
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class Explanation:
    differences: list[Difference]
    textbook_flops: float  # 2 x dense MACs
    theory_xla_flops: float
    xla_unoptimized_flops: float | None
    xla_optimized_flops: float | None

    unexplained_flops: float = 0.0  # |net lowering difference| of primitives with no known cause

    @property
    def unexplained_fraction(self) -> float:
        ref = self.xla_optimized_flops or self.xla_unoptimized_flops or 0.0
        return abs(self.unexplained_flops) / ref if ref else 0.0

    def totals(self) -> list[Difference]:
        return [d for d in self.differences if d.layer is None]

    def for_layer(self, layer: str) -> list[Difference]:
        return [d for d in self.differences if d.layer == layer]

    def text(self, max_layers: int = 8) -> str:
        from jaxcost.report.format import si

        lines = ["Theory vs compiler (flops):",
                 f"  2 x textbook MACs (dense)           {si(self.textbook_flops):>14}"]
        for d in self.totals():
            amount = si(d.flops) if d.flops else (si(d.bytes, "B") if d.bytes else "")
            lines.append(f"  {'+' if (d.flops or d.bytes) >= 0 else '-'} {d.cause:<34}{amount.lstrip('-'):>14}"
                         + (f"   {d.detail}" if d.detail else ""))
        lines.append(f"  = XLA optimized                      {si(self.xla_optimized_flops):>14}")
        lines.append(f"  unexplained: {si(self.unexplained_flops)} "
                     f"({100 * self.unexplained_fraction:.3f} % of XLA's flops)")
        per_layer = defaultdict(float)
        for d in self.differences:
            if d.layer is not None and d.cause == "padding taps not counted by XLA":
                per_layer[d.layer] += -d.flops
        top = sorted(per_layer.items(), key=lambda kv: -kv[1])[:max_layers]
        if top:
            lines.append("  largest padding-tap differences: "
                         + ", ".join(f"{layer} {si(v)}" for layer, v in top))
        return "\n".join(lines)


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


def _primitive_flops(module) -> dict[str, float]:
    """Flops by primitive name (from op_name) over every priced instruction of a module,
    loop bodies multiplied by their known trip count (as the theory engine does)."""
    from jaxcost.compiler.rules import CostModel

    model = CostModel()
    out: dict[str, float] = defaultdict(float)

    def primitive(inst, owner: str) -> str:
        # helpers emitted by a primitive's lowering carry a bare name ("select_n"): charge the owner;
        # instructions the optimizer created without metadata go by the primitive of their opcode
        if "/" not in inst.op_name:
            return owner or inst.op_name or _OPCODE_PRIMITIVE.get(inst.opcode, inst.opcode)
        return split_op_name(inst.op_name).primitive or inst.opcode

    def owner_of(call) -> str:
        prim = split_op_name(call.op_name).primitive
        if prim.startswith("jit(") and prim.endswith(")"):
            prim = prim[4:-1]  # a jitted helper such as jnp.take's "jit(_take)"
        return "" if not prim or "(" in prim or prim in ("closed_call", "pjit", "call") else prim

    def walk(comp, mult: float, owner: str):
        for inst in comp.instructions:
            name = primitive(inst, owner)
            if inst.opcode == "while" and inst.called:
                n = trip_count(inst)
                for key, k in (("body", n), ("condition", n + 1)):
                    if inst.called_by(key) is not None:
                        walk(inst.called_by(key), mult * k, owner)
                continue
            if inst.opcode in ("fusion", "call", "conditional") and inst.called:
                for sub in inst.called:
                    walk(sub, mult, owner_of(inst) if inst.opcode == "call" else owner)
                continue
            if inst.opcode in ("parameter", "constant"):
                continue
            flops = model.instruction_cost(inst).flops  # reduce & co. include their reducer
            if flops > 0:
                out[name] += flops * mult

    walk(module.module.entry, 1.0, "")
    return out


def explain(analysis) -> Explanation:
    th = analysis.theory
    if th is None:
        raise ValueError("explain() needs the theory side: analyze(..., theory=True)")
    t = th.totals
    diffs: list[Difference] = []
    textbook = 2.0 * t.macs
    diffs.append(Difference("padding taps not counted by XLA", -2.0 * t.padding_taps,
                            detail=f"{t.padding_taps:,} MACs land on padding"))
    other = float(t.flops_xla) - 2.0 * t.macs_valid
    by_prim: dict[str, float] = defaultdict(float)
    outputs = 0.0
    for e in th.eqns:
        if e.primitive in CONTRACTIONS:
            outputs += (e.flops_xla - e.flops_textbook + 2 * (e.macs - e.macs_valid)) * e.count
        else:
            by_prim[e.primitive] += e.flops_xla * e.count
    top = sorted(by_prim.items(), key=lambda kv: -kv[1])[:6]
    diffs.append(Difference("elementwise/reduction work", other,
                            detail="; ".join(f"{p} {v:,.0f}" for p, v in top)))
    diffs.append(Difference("textbook 2n-1 vs XLA 2n per dot output", 0.0,
                            detail=f"textbook FLOPs {t.flops_textbook:,} count 2n-1 per unbiased output: "
                                   f"{outputs:,.0f} outputs"))
    diffs.append(Difference("transcendentals (kept apart by XLA)", 0.0,
                            detail=f"{t.transcendentals:,} exp/log/tanh/rsqrt/... not in flops"))
    un = analysis.compiler_unoptimized
    opt = analysis.compiler
    unexplained = 0.0
    if analysis.module_unoptimized is not None:
        theory_by_prim: dict[str, float] = defaultdict(float)
        for e in th.eqns:
            theory_by_prim[e.primitive] += e.flops_xla * e.count
        lowered = _primitive_flops(analysis.module_unoptimized)
        known, unknown = [], []
        for prim in sorted(set(lowered) | set(theory_by_prim)):
            delta = lowered.get(prim, 0.0) - theory_by_prim.get(prim, 0.0)
            if delta:
                (known if prim in LOWERING_CAUSES else unknown).append((prim, delta))
        for prim, delta in known:
            diffs.append(Difference(f"lowering: {prim}", delta, detail=LOWERING_CAUSES[prim]))
        if unknown:
            # net, so that work merely relabelled between primitives (max vs relu) cancels
            unexplained = abs(sum(d for _, d in unknown))
            label = ("lowering: relabelled between primitives (nets to 0)" if not unexplained
                     else "lowering: other (unexplained)")
            diffs.append(Difference(label, sum(d for _, d in unknown),
                                    detail="; ".join(f"{p} {d:+,.0f}" for p, d in
                                                     sorted(unknown, key=lambda x: -abs(x[1]))[:5])))
        loops = analysis.corrected.flops - (opt.flops if opt.available else un.flops or 0.0)
        if any("while loop" in r for r in analysis.corrected.reasons):
            diffs.append(Difference("XLA counts loop bodies once", -loops,
                                    detail="see Analysis.corrected for the trip counts"))
    if opt.available and un.available and analysis.module is not None:
        before = _primitive_flops(analysis.module_unoptimized)
        after = _primitive_flops(analysis.module)
        changes = {p: after.get(p, 0.0) - before.get(p, 0.0) for p in set(before) | set(after)}
        changes = {p: v for p, v in changes.items() if v}
        top = sorted(changes.items(), key=lambda kv: -abs(kv[1]))[:5]
        diffs.append(Difference("optimizer rewrites (optimized - unoptimized)", opt.flops - un.flops,
                                detail="; ".join(f"{p} {v:+,.0f}" for p, v in top)))
        report = analysis.fusion_report()
        diffs.append(Difference("bytes removed by fusion", 0.0, -report.saved,
                                detail=f"{report.bytes_unfused:,.0f} -> {report.bytes_fused:,.0f} bytes"))
    for row in analysis.layers:
        lt = row.theory
        if lt is None:
            continue
        if lt.padding_taps:
            diffs.append(Difference("padding taps not counted by XLA", -2.0 * lt.padding_taps, layer=row.path))
        work = float(lt.flops_xla) - 2.0 * lt.macs_valid
        if work:
            diffs.append(Difference("elementwise/reduction work", work, layer=row.path))
        compiled = row.flops if analysis.compiled else row.flops_unoptimized
        if compiled != lt.flops_xla:
            diffs.append(Difference("compiler vs theory (XLA convention)", compiled - lt.flops_xla, layer=row.path))
        if row.bytes_unoptimized and analysis.compiled:
            diffs.append(Difference("bytes removed by fusion", 0.0, row.bytes_accessed - row.bytes_unoptimized,
                                    layer=row.path))
    return Explanation(diffs, textbook, float(t.flops_xla), un.flops if un.available else None,
                       opt.flops if opt.available else None, unexplained)
