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


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


CONVENTIONS = (
    "MAC = one multiply-accumulate; FLOP = one add/multiply/compare. XLA flops: 2 per MAC over "
    "valid conv taps (taps on padding not counted), 1 per elementwise op; exp/log/tanh/... are "
    "transcendentals, not flops. Bytes: operands + outputs per instruction; a fusion moves only its "
    "parameters and outputs. torchvision/ptflops 'GFLOPS' are MACs."
)
