"""The terminal report: a rich summary of an :class:`~jaxcost.analysis.Analysis`."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from jaxcost.report.format import BASIS, CONVENTIONS, pct, si


def _header(a) -> Panel:
    where = f"target: {a.target} ({a.device_kind})" if a.target else f"backend: {a.backend} ({a.device_kind})"
    dtypes = (f"dtypes: inputs {'/'.join(a.input_dtypes) or '-'}, params {'/'.join(a.param_dtypes) or '-'}")
    state = f"   optimizer state: {a.optimizer_state:,}" if a.optimizer_state else ""
    if a.hbm is not None:
        where += f"  HBM {a.hbm}"
    lines = [
        f"[bold]{a.name}[/bold]  {where}  inputs: {', '.join(a.input_shapes)}",
        f"params: {a.params:,}{state}   {dtypes}",
        (f"trace {a.timings.trace_s:.2f} s, lower {a.timings.lower_s:.2f} s, "
         f"compile {a.timings.compile_s:.2f} s"),
        f"[dim]basis: {BASIS}[/dim]",
        *([(f"[bold]{a.partitioning.describe()}[/bold]: XLA figures per device (1 of {a.partitioning.devices}); "
           "theory and lowered module global outside shard_map")] if a.partitioning.partitioned else []),
        f"[dim]{CONVENTIONS}[/dim]",
    ]
    return Panel("\n".join(lines), title="jaxcost", expand=False)


def _totals(a) -> Table:
    t = Table(title="Totals", show_lines=False)
    t.add_column("")
    for col in ("flops", "transcendentals", "bytes accessed"):
        t.add_column(col, justify="right")
    th = a.theory.totals if a.theory is not None else None
    if th is not None:
        t.add_row("theory: MACs (dense)", si(th.macs), "", "")
        t.add_row("theory: FLOPs textbook", si(th.flops_textbook), "", "")
        t.add_row("theory: FLOPs XLA convention", si(th.flops_xla), si(th.transcendentals), "")
    for label, c in (("XLA unoptimized (lowered)", a.compiler_unoptimized), ("XLA optimized (compiled)", a.compiler)):
        if c.available:
            t.add_row(label, si(c.flops), si(c.transcendentals), si(c.bytes_accessed, "B"))
        else:
            t.add_row(label, "not reported", "", "")
    c = a.corrected
    t.add_row("jaxcost corrected", si(c.flops), si(c.transcendentals), si(c.bytes_accessed, "B"))
    return t


def _memory(a) -> Text:
    m = a.memory
    return Text(f"memory (XLA's memory_analysis): args {si(m.argument_bytes, 'B')}; out {si(m.output_bytes, 'B')}; "
                f"temp {si(m.temp_bytes, 'B')}; alias {si(m.alias_bytes, 'B')}; "
                f"code {si(m.generated_code_bytes, 'B')}; peak {si(m.peak_bytes, 'B')}", no_wrap=True,
                overflow="ellipsis")


def _layers(a, max_layers: int) -> Table:
    rows = sorted(a.layers, key=lambda r: -(r.flops or r.flops_unoptimized))[:max_layers]
    total = sum(r.flops for r in a.layers) or sum(r.flops_unoptimized for r in a.layers)
    t = Table(title=f"Layers (heaviest {len(rows)} of {len(a.layers)})")
    t.add_column("layer")
    t.add_column("params", justify="right")
    if a.theory is not None:
        t.add_column("MACs", justify="right")
    t.add_column("XLA flops", justify="right")
    t.add_column("share", justify="right")
    t.add_column("bytes (opt)", justify="right")
    t.add_column("bytes (unopt)", justify="right")
    t.add_column("fusions")
    for r in rows:
        name = (r.path or "(top level)") + (" [backward]" if r.direction == "backward" else "")
        flops = r.flops if a.compiled else r.flops_unoptimized
        cells = [name, f"{r.params:,}" if r.params else ""]
        if a.theory is not None:
            cells.append(si(getattr(r.theory, "macs", None)) if r.theory is not None else "")
        cells += [si(flops), pct(flops, total), si(r.bytes_accessed, "B") if a.compiled else "",
                  si(r.bytes_unoptimized, "B"), ", ".join(r.fusions[:3]) + (" ..." if len(r.fusions) > 3 else "")]
        t.add_row(*cells)
    return t


def _training(a):
    return a.training().__rich__()


def _training_layers(a, max_layers: int) -> Table:
    """One row per layer path, a column per direction (XLA optimized flops) and the theory's
    forward and backward (input + weight gradient) flops."""
    by_path: dict[str, dict] = {}
    for r in a.layers:
        by_path.setdefault(r.path, {})[r.direction] = r
    xla = lambda rows, d: (rows[d].flops if a.compiled else rows[d].flops_unoptimized) if d in rows else 0.0
    theory = lambda rows, d: rows[d].theory.flops_xla if d in rows and rows[d].theory is not None else None
    paths = sorted(by_path, key=lambda p: -sum(xla(by_path[p], d) for d in by_path[p]))[:max_layers]
    t = Table(title=f"Layers of the training step (heaviest {len(paths)} of {len(by_path)}; flops)")
    for col in ("layer", "params", "fwd XLA", "bwd XLA", "recompute XLA", "optimizer XLA", "fwd theory",
                "bwd theory", "= input grad", "+ weight grad", "bwd/fwd"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for p in paths:
        rows = by_path[p]
        bwd = rows.get("backward")
        f, b = theory(rows, "forward"), theory(rows, "backward")
        ig = bwd.input_grad.flops_xla if bwd is not None and bwd.input_grad is not None else None
        wg = bwd.weight_grad.flops_xla if bwd is not None and bwd.weight_grad is not None else None
        params = rows["forward"].params if "forward" in rows else 0
        t.add_row(p or "(top level)", f"{params:,}" if params else "",
                  *(si(xla(rows, d)) if d in rows else "" for d in ("forward", "backward", "recompute", "optimizer")),
                  si(f), si(b), si(ig), si(wg), f"{b / f:.2f}" if f and b is not None else "")
    return t


def _tree(a, max_layers: int, depth: int | None) -> Table:
    """The layer tree in model order with input/output shapes (like ``nnx.tabulate``), down to
    ``depth``, by default as deep as fits in ``max_layers`` rows; a node's figures include its
    children's."""
    from jaxcost.report.tree import layer_tree

    nodes = layer_tree(a)
    if nodes and not nodes[0].path and not nodes[0].inputs:
        nodes[0].inputs = ", ".join(a.input_shapes)
    if depth is None:
        depth = 1
        while depth < 32 and sum(n.depth <= depth + 1 for n in nodes) <= max_layers:
            depth += 1
    shown = [n for n in nodes if n.depth <= depth]
    hidden = len(nodes) - len(shown)
    directions = [d for d in ("forward", "backward", "recompute", "optimizer") if any(d in n.flops for n in nodes)]
    total = nodes[0].total_flops if nodes else 0.0
    title = f"Layers in model order ({len(shown)} of {len(nodes)}; depth {depth}"
    title += ", deeper levels folded: --depth / --flat)" if hidden else ")"
    t = Table(title=title)
    t.add_column("layer", no_wrap=True, overflow="ellipsis", max_width=48)
    t.add_column("input", no_wrap=True, overflow="ellipsis", max_width=28)
    t.add_column("output", no_wrap=True, overflow="ellipsis", max_width=28)
    for col in ("params", "MACs", *(f"XLA {d}" if len(directions) > 1 else "XLA flops" for d in directions), "share",
                *(["bytes (opt)"] if a.compiled else []), "bytes (unopt)"):
        t.add_column(col, justify="right", no_wrap=True)
    for n in shown:
        cells = ["  " * n.depth + n.name, n.inputs, n.outputs, f"{n.params:,}" if n.params else "",
                 si(n.macs) if n.macs else "", *(si(n.flops.get(d)) if d in n.flops else "" for d in directions),
                 pct(n.total_flops, total), *([si(n.bytes_accessed, "B")] if a.compiled else []),
                 si(n.bytes_unoptimized, "B")]
        t.add_row(*cells)
    return t


def _collectives(a) -> Table:
    rows = a.collectives()
    timed = any(c.seconds is not None for c in rows)
    t = Table(title=f"Collectives ({len(rows)}; per device; bytes sent under the standard algorithms)")
    for col in ("collective", "kind", "layer", "buffer", "group", "mesh axes", "sends", "model", "time", "x"):
        t.add_column(col, justify="right" if col in ("buffer", "group", "sends", "time", "x") else "left")
    for c in rows:
        t.add_row(c.name, c.kind, c.layer or "(top)", si(c.buffer_bytes, "B"), str(c.group_size),
                  ",".join(c.axes) or "-", si(c.link_bytes, "B"), c.model,
                  f"{c.seconds * 1e6:.1f} us" if c.seconds is not None else "-", str(c.count))
    if not timed:
        t.caption = "no link bandwidth known for this backend: pass one to Analysis.collectives()"
    return t


def _conventions(a) -> Table:
    from jaxcost.conventions import conventions_table

    t = Table(title="As other tools count it")
    for col, j in (("tool", "left"), ("total", "right"), ("unit", "left"), ("vs jaxcost", "right"),
                   ("why it differs", "left")):
        t.add_column(col, justify=j, no_wrap=col != "why it differs")
    for r in conventions_table(a):
        vs = f"{100 * (r.ratio - 1):+.1f} % vs {r.jaxcost_label}" if r.ratio is not None else "-"
        t.add_row(r.title, f"{r.total:,}" if r.unit == "params" else si(r.total), r.unit, vs, r.reason)
    return t


def _fusions(a, max_fusions: int) -> Table:
    fusions = sorted(a.fusions, key=lambda op: -op.bytes_accessed)[:max_fusions]
    t = Table(title=f"Heaviest fusions (by bytes, {len(fusions)} of {len(a.fusions)})")
    for col, j in (("fusion", "left"), ("kind", "left"), ("flops", "right"), ("bytes", "right"),
                   ("flop/byte", "right"), ("layers", "left")):
        t.add_column(col, justify=j)
    for op in fusions:
        t.add_row(op.name, op.fusion_kind, si(op.flops), si(op.bytes_accessed, "B"),
                  f"{op.intensity:.1f}", ", ".join(layer or "(top)" for layer in op.layers[:4])
                  + (" ..." if len(op.layers) > 4 else ""))
    return t


def render(a, *, max_layers: int = 40, max_fusions: int = 10, flat: bool = False,
           depth: int | None = None) -> Group:
    parts = [_header(a), _totals(a)]
    if a.memory.available:
        parts.append(_memory(a))
    if a.is_training_step:
        parts.append(_training(a))
    if not flat:
        parts.append(_tree(a, max_layers, depth))
    elif a.is_training_step:
        parts.append(_training_layers(a, max_layers))
    else:
        parts.append(_layers(a, max_layers))
    if a.compiled and a.partitioning.partitioned and a.collectives():
        parts.append(_collectives(a))
    if a.compiled and a.fusions:
        parts.append(_fusions(a, max_fusions))
        from jaxcost.diff.fusion import fusion_table

        parts.append(fusion_table(a.fusion_report(), max_fusions))
    if a.theory is not None:
        parts.append(a.explain().__rich__())
        parts.append(_conventions(a))
    if a.corrected.reasons:
        parts.append(Text("Corrections to XLA's totals:\n" + "\n".join(f"  - {r}" for r in a.corrected.reasons)))
    if a.warnings:
        parts.append(Text("Warnings:\n" + "\n".join(f"  - {w}" for w in a.warnings), style="yellow"))
    return Group(*parts)


def summary(a, *, max_layers: int = 40, max_fusions: int = 10, print_: bool = True, flat: bool = False,
            depth: int | None = None) -> str:
    """Print (at the terminal's width) and return as text (160 columns) the summary of an
    analysis: the layer tree in model order, or with ``flat=True`` the heaviest layers."""
    from jaxcost.report.show import console, render_text

    group = render(a, max_layers=max_layers, max_fusions=max_fusions, flat=flat, depth=depth)
    if print_:
        console().print(group)
    return render_text(group)
