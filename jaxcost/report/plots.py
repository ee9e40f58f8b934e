"""Plots from the API (matplotlib, optional: ``pip install matplotlib``).

- :func:`plot_layers` (``a.plot()``): the heaviest layer rows of an analysis as horizontal
  bars, by XLA flops (coloured by direction: forward, backward, recompute, optimizer) or by
  bytes accessed, the fused (compiled module) bar next to the unfused (lowered module) one:
  the gap between them is what fusion kept out of memory.
- :func:`plot_roofline`: the roofline of a program's kernels (:func:`jaxcost.program_roofline`),
  from an analysis or a :class:`~jaxcost.perf.roofline.Roofline`.

Both leave the pyplot backend as it is (``matplotlib.use("Agg")`` for files without a display).
"""

from __future__ import annotations

DIRECTION_COLORS = {"forward": "#4c78a8", "backward": "#f58518", "recompute": "#e45756", "optimizer": "#72b7b2"}
FUSED, UNFUSED = "#4c78a8", "#bab0ac"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("jaxcost's plots need matplotlib: pip install matplotlib") from e
    return plt


def _label(row) -> str:
    return (row.path or "(top level)") + ("" if row.direction == "forward" else f" [{row.direction}]")


def plot_layers(analysis, what: str = "flops", top: int = 20, ax=None):
    """Horizontal bars of the ``top`` heaviest layer rows (one per (path, direction)) of
    ``analysis``, heaviest at the top; returns the matplotlib Axes (new unless ``ax`` is given).

    ``what="flops"``: XLA's flops of each row in the optimized module (the lowered one when
    not compiled), coloured by direction. ``what="bytes"``: bytes accessed, fused (the
    compiled module: a fused kernel's bytes split among the layers it holds) below unfused
    (the lowered module: every instruction reads its operands and writes its result), rows
    ordered by the larger of the two."""
    if what not in ("flops", "bytes"):
        raise ValueError(f"what must be 'flops' or 'bytes', not {what!r}")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    compiled = analysis.compiled
    if what == "flops":
        key = (lambda r: r.flops) if compiled else (lambda r: r.flops_unoptimized)
    else:
        key = (lambda r: max(r.bytes_accessed, r.bytes_unoptimized)) if compiled else (lambda r: r.bytes_unoptimized)
    rows = sorted((r for r in analysis.layers if key(r) > 0), key=key, reverse=True)[:top][::-1]
    if not rows:
        raise ValueError(f"{analysis.name}: no layer has any {what}")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.3 * len(rows) + 1.2))
    y = list(range(len(rows)))
    if what == "flops":
        directions = dict.fromkeys(r.direction for r in rows)
        ax.barh(y, [key(r) for r in rows], color=[DIRECTION_COLORS.get(r.direction, "#999999") for r in rows])
        ax.set_xlabel("XLA flops" + ("" if compiled else " (lowered module: not compiled)"))
        if len(directions) > 1:
            from matplotlib.patches import Patch

            ax.legend(handles=[Patch(color=DIRECTION_COLORS.get(d, "#999999"), label=d) for d in directions],
                      loc="lower right")
    elif compiled:
        ax.barh([i + 0.2 for i in y], [r.bytes_unoptimized for r in rows], height=0.4, label="unfused (lowered)",
                color=UNFUSED)
        ax.barh([i - 0.2 for i in y], [r.bytes_accessed for r in rows], height=0.4, label="fused (compiled)",
                color=FUSED)
        ax.set_xlabel("bytes accessed")
        ax.legend(loc="lower right")
    else:
        ax.barh(y, [r.bytes_unoptimized for r in rows], label="unfused (lowered)", color=UNFUSED)
        ax.set_xlabel("bytes accessed (lowered module: not compiled, no fused figures)")
    ax.set_yticks(y)
    ax.set_yticklabels([_label(r) for r in rows])
    ax.set_title(f"{analysis.name}: heaviest layers by {what}")
    return ax


def plot_roofline(roofline, path: str | None = None, measured=None, label_top: int = 8, peaks=None):
    """Log-log roofline of a program's kernels; returns the matplotlib Figure, saved as a PNG
    to ``path`` if given. ``roofline``: a :class:`~jaxcost.perf.roofline.Roofline` or an
    :class:`~jaxcost.Analysis` (its :func:`jaxcost.program_roofline` with ``peaks``, by default
    the device's, measured once on a CPU). ``measured`` / ``label_top``: see
    :func:`jaxcost.perf.roofline.plot_roofline`, which draws it."""
    _pyplot()
    from jaxcost.perf.roofline import Roofline
    from jaxcost.perf.roofline import plot_roofline as draw

    if not isinstance(roofline, Roofline):
        from jaxcost.perf.predict import program_roofline

        roofline = program_roofline(roofline, peaks)
    return draw(roofline, path, measured, label_top)
