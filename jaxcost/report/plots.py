"""Plots from the API (matplotlib, optional): ``a.plot()`` draws the heaviest layers' XLA flops,
``a.plot("bytes")`` their bytes fused vs unfused; ``jaxcost.plot_roofline`` draws a roofline."""

from __future__ import annotations


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is in the test extra
        raise ImportError("plots need matplotlib: pip install matplotlib") from e
    return plt


def plot_layers(a, what: str = "flops", top: int = 20, ax=None):
    """Horizontal bars of the ``top`` heaviest layer rows of analysis ``a``: ``what="flops"``
    (XLA's, optimized module, coloured by direction) or ``"bytes"`` (fused next to unfused).
    Returns the matplotlib Axes."""
    if what not in ("flops", "bytes"):
        raise ValueError(f"what must be 'flops' or 'bytes', not {what!r}")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.3 * top + 1))
    fused = (lambda r: r.flops) if a.compiled else (lambda r: r.flops_unoptimized)
    key = fused if what == "flops" else (lambda r: max(r.bytes_accessed, r.bytes_unoptimized))
    rows = sorted((r for r in a.layers if key(r) > 0), key=key, reverse=True)[:top][::-1]
    names = [(r.path or "(top level)") + ("" if r.direction == "forward" else f" [{r.direction}]") for r in rows]
    y = range(len(rows))
    if what == "flops":
        colors = {"forward": "#4c78a8", "backward": "#f58518", "recompute": "#e45756", "optimizer": "#72b7b2"}
        ax.barh(y, [fused(r) for r in rows], color=[colors.get(r.direction, "#999") for r in rows])
        ax.set_xlabel("XLA flops" + ("" if a.compiled else " (lowered module)"))
    else:
        ax.barh([i + 0.2 for i in y], [r.bytes_unoptimized for r in rows], height=0.4, label="unfused (lowered)",
                color="#bab0ac")
        ax.barh([i - 0.2 for i in y], [r.bytes_accessed for r in rows], height=0.4, label="fused (compiled)",
                color="#4c78a8")
        ax.set_xlabel("bytes accessed")
        ax.legend(loc="lower right")
    ax.set_yticks(list(y))
    ax.set_yticklabels(names)
    ax.set_title(f"{a.name}: heaviest layers by {what}")
    return ax
