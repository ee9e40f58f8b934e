"""The terminal report: a rich summary of an :class:`~jaxcost.analysis.Analysis`."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from jaxcost.report.export import BASIS
from jaxcost.report.format import CONVENTIONS, pct, si


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


def _training(a) -> Group:
    c = a.training()
    t = Table(title="Training step by direction (flops; theory loops x trips, XLA loop bodies once)")
    for col in ("direction", "theory", "theory: contractions", "XLA optimized", "XLA lowered"):
        t.add_column(col, justify="left" if col == "direction" else "right")
    for row in c.rows():
        t.add_row(*row)
    note = Text(f"model FLOPs {si(c.model_flops)} (forward + backward contractions, theory: what MFU counts); "
                f"hardware FLOPs {si(c.hardware_flops)} (XLA compiled, recompute included: HFU)\n"
                f"backward contractions: input gradients {si(c.input_grad_flops)} + weight gradients "
                f"{si(c.weight_grad_flops)}; backward/forward {c.backward_ratio:.2f} (2.00 = the 3x rule)")
    return Group(t, note)


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


def render(a, *, max_layers: int = 40, max_fusions: int = 10) -> Group:
    parts = [_header(a), _totals(a)]
    if a.memory.available:
        parts.append(_memory(a))
    if a.is_training_step:
        parts += [_training(a), _training_layers(a, max_layers)]
    else:
        parts.append(_layers(a, max_layers))
    if a.compiled and a.partitioning.partitioned and a.collectives():
        parts.append(_collectives(a))
    if a.compiled and a.fusions:
        parts.append(_fusions(a, max_fusions))
        from jaxcost.diff.fusion import fusion_table

        parts.append(fusion_table(a.fusion_report(), max_fusions))
    if a.theory is not None:
        parts.append(Text(a.explain().text()))
    if a.corrected.reasons:
        parts.append(Text("Corrections to XLA's totals:\n" + "\n".join(f"  - {r}" for r in a.corrected.reasons)))
    if a.warnings:
        parts.append(Text("Warnings:\n" + "\n".join(f"  - {w}" for w in a.warnings), style="yellow"))
    return Group(*parts)


def summary(a, *, max_layers: int = 40, max_fusions: int = 10, print_: bool = True, console=None) -> str:
    """Print (and return as text) the summary of an analysis."""
    group = render(a, max_layers=max_layers, max_fusions=max_fusions)
    console = console or Console(width=160)
    with console.capture() as cap:
        console.print(group)
    text = cap.get()
    if print_:
        console.print(group)
    return text
