"""What a priced module must tell its reader: opcodes without a rule, disagreement
with XLA's totals, and custom calls whose cost nobody can see."""

from __future__ import annotations

from collections import Counter

from jaxcost.compiler.custom_calls import kind
from jaxcost.compiler.ops import ModuleCost
from jaxcost.compiler.totals import CostTotals


def module_warnings(label: str, module: ModuleCost, xla: CostTotals) -> list[str]:
    """Warnings about ``module`` (``label``: "optimized" or "unoptimized"), XLA's totals ``xla``.

    * each opcode without a cost rule, with its count;
    * jaxcost's totals differing from XLA's by more than XLA's float32 rounding;
    * each custom-call target XLA prices at −1, with its count, except annotations
      and memory moves (no arithmetic to miss); a host callback is named without a
      count or label, so that one program says it once.
    """
    out = [f"{label} HLO: no cost rule for opcode {opcode!r} ({count}x): priced at its bytes, zero flops"
           for opcode, count in sorted(module.unknown.items())]
    if xla.available and not module.agrees_with(xla.flops, xla.transcendentals):
        out.append(f"{label} HLO: jaxcost's rules give {module.total.flops:,.0f} flops / "
                   f"{module.total.transcendentals:,.0f} transcendentals, XLA says "
                   f"{xla.flops:,.0f} / {xla.transcendentals:,.0f}")
    targets = Counter(inst.custom_call_target for inst in module.module.instructions()
                      if inst.opcode == "custom-call")
    for target, count in sorted(targets.items()):
        what = kind(target)
        if what == "host callback":
            out.append(f"host callback {target!r}: its work runs in Python on the host and is not counted")
        elif what not in ("annotation", "memory move"):
            out.append(f"{label} HLO: custom call {target!r} ({count}x) is priced by XLA at -1 flops "
                       "and -1 bytes (unknown); see Analysis.corrected")
    return out
