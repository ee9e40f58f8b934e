"""Number formatting shared by the reports."""

from __future__ import annotations


def si(x: float | None, unit: str = "") -> str:
    """1.23 G, 456.0 M, ... ; '-' for None."""
    if x is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= factor:
            return f"{x / factor:.3f} {prefix}{unit}"
    return f"{x:.0f} {unit}".rstrip()


def secs(x: float | None) -> str:
    """Seconds with a readable unit: 1.23 s, 45.6 ms, 789 us; '-' for None."""
    if x is None:
        return "-"
    if abs(x) >= 1:
        return f"{x:.3f} s"
    if abs(x) >= 1e-3:
        return f"{x * 1e3:.2f} ms"
    return f"{x * 1e6:.1f} us"


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


CONVENTIONS = (
    "MAC = one multiply-accumulate; FLOP = one add/multiply/compare. XLA flops: 2 per MAC over "
    "valid conv taps (taps on padding not counted), 1 per elementwise op; exp/log/tanh/... are "
    "transcendentals, not flops. Bytes: operands + outputs per instruction; a fusion moves only its "
    "parameters and outputs. torchvision/ptflops 'GFLOPS' are MACs."
)

# The basis of every figure of an Analysis (report header, JSON).
BASIS = ("one call of the compiled program, per device; XLA's totals count loop bodies once, "
         "'corrected' and 'theory' count them trip-count times")


def footnotes(notes: dict[str, str], shown: int = 4) -> str:
    """Table footnotes: ``* a, b, c: note`` once per distinct note (the first ``shown`` names
    it applies to, then how many more)."""
    by: dict[str, list[str]] = {}
    for name, note in notes.items():
        by.setdefault(note, []).append(name)
    lines = []
    for note, names in by.items():
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        lines.append(f"* {', '.join(names[:shown])}{more}: {note}")
    return "\n".join(lines)
