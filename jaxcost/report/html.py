"""One standalone HTML report of an analysis: ``a.to_html("report.html")``, ``jaxcost analyze
... --html report.html``, and the notebook view (``_repr_html_``).

Self-contained (inline CSS, JavaScript and SVG; nothing fetched): the header with the basis of
the figures, the totals, a training step's directions, the layer tree in model order
(collapsible, with input and output shapes; a click on a column header sorts the layers by it,
"model order" restores the tree; ``#sort=N`` in the URL sorts by column N on opening), the
collectives, the heaviest fused kernels with what they
absorbed, the explain ledgers, and two SVG plots (per-layer flops; the roofline of the compiled
kernels when the device's peaks are known). Every number in a cell carries its exact value in
``data-v`` (what sorting uses, and what the tests compare with ``to_json()``).
"""

from __future__ import annotations

import html
import math

from jaxcost.report.format import BASIS, CONVENTIONS, footnotes, secs, si
from jaxcost.report.tree import layer_tree

_CSS = """
body{font:13px/1.4 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:22px 0 6px;border-bottom:1px solid #ddd}
.meta{color:#555}.meta b{color:#222}.warn{color:#a15c00}
table{border-collapse:collapse;margin:4px 0}td,th{padding:2px 8px;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#f4f4f4;text-align:left;position:sticky;top:0}th.s{cursor:pointer}th.s:hover{background:#e4e8f0}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.own td:first-child{font-weight:500}tr.grp td{background:#fafafa}
.tg{display:inline-block;width:14px;cursor:pointer;color:#666;user-select:none}
.bar{display:inline-block;height:9px;background:#7aa6d8;vertical-align:middle;margin-right:4px}
button{font-size:12px;margin:0 6px 4px 0}.ledger td:nth-child(2){text-align:right}
svg text{font:11px sans-serif}
"""

_JS = r"""
(function(){
const t=document.getElementById('layers');if(!t)return;const tb=t.tBodies[0];
const rows=[...tb.rows];
function under(c,p){return c===''?p!=='':p.startsWith(c+'/');}
function vis(){if(t.dataset.flat==='1'){rows.forEach(r=>r.style.display='');return;}
 let closed=[];for(const r of rows){const p=r.dataset.path;closed=closed.filter(c=>under(c,p));
 r.style.display=closed.length?'none':'';if(r.dataset.open==='0')closed.push(p);}}
for(const r of rows){const g=r.querySelector('.tg');if(g)g.onclick=()=>{r.dataset.open=r.dataset.open==='0'?'1':'0';
 g.textContent=r.dataset.open==='0'?'\u25b8':'\u25be';vis();};}
let dir=1,last=-1;
[...t.tHead.rows[0].cells].forEach((th,i)=>{if(!th.classList.contains('s'))return;th.onclick=()=>{dir=(last===i)?-dir:-1;last=i;
 t.dataset.flat='1';const k=r=>{const c=r.cells[i];const v=c.dataset.v;return v===undefined?c.textContent:parseFloat(v);};
 rows.slice().sort((a,b)=>{const x=k(a),y=k(b);return (x<y?-1:x>y?1:0)*dir;}).forEach(r=>{r.style.display='';tb.appendChild(r);});};});
document.getElementById('order').onclick=()=>{t.dataset.flat='0';rows.forEach(r=>tb.appendChild(r));vis();};
document.getElementById('expand').onclick=()=>{rows.forEach(r=>{r.dataset.open='1';const g=r.querySelector('.tg');if(g)g.textContent='\u25be';});vis();};
document.getElementById('collapse').onclick=()=>{rows.forEach(r=>{if(+r.dataset.depth>=1&&r.querySelector('.tg')){r.dataset.open='0';r.querySelector('.tg').textContent='\u25b8';}});vis();};
vis();
const m=/sort=(\d+)/.exec(location.hash);if(m){const th=t.tHead.rows[0].cells[+m[1]];if(th)th.click();}
})();
"""


def _e(x) -> str:
    return html.escape(str(x))


def _num(v, text: str | None = None) -> str:
    """A right-aligned number cell carrying its exact value."""
    if v is None:
        return '<td class="n">-</td>'
    return f'<td class="n" data-v="{v!r}">{_e(text if text is not None else si(v))}</td>'


def _table(headers: list[str], rows: list[str], attrs: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _header(a) -> str:
    where = f"target {a.target} ({a.device_kind})" if a.target else f"backend {a.backend} ({a.device_kind})"
    state = f"; optimizer state {a.optimizer_state:,}" if a.optimizer_state else ""
    parts = [f"<h1>jaxcost: {_e(a.name)}</h1>",
             (f'<div class="meta"><b>{_e(where)}</b>; inputs {_e(", ".join(a.input_shapes))}; params '
             f"<b>{a.params:,}</b>{state}; dtypes: inputs {_e('/'.join(a.input_dtypes) or '-')}, params "
             f"{_e('/'.join(a.param_dtypes) or '-')}</div>"),
             f'<div class="meta">basis: {_e(BASIS)}</div>']
    if a.partitioning.partitioned:
        parts.append(f'<div class="meta"><b>{_e(a.partitioning.describe())}</b>: XLA figures per device '
                     f"(1 of {a.partitioning.devices}); theory and lowered module global outside shard_map</div>")
    if a.hbm is not None:
        parts.append(f'<div class="meta">HBM: {_e(a.hbm)}</div>')
    parts.append(f'<div class="meta">{_e(CONVENTIONS)}</div>')
    return "\n".join(parts)


def _totals(a) -> str:
    rows = []
    th = a.theory.totals if a.theory is not None else None
    if th is not None:
        rows.append(f"<tr><td>theory: MACs (dense)</td>{_num(th.macs)}<td></td><td></td></tr>")
        rows.append(f"<tr><td>theory: FLOPs textbook</td>{_num(th.flops_textbook)}<td></td><td></td></tr>")
        rows.append(f"<tr><td>theory: FLOPs XLA convention</td>{_num(th.flops_xla)}{_num(th.transcendentals)}"
                    "<td></td></tr>")
    for label, c in (("XLA unoptimized (lowered)", a.compiler_unoptimized), ("XLA optimized (compiled)", a.compiler)):
        if c.available:
            rows.append(f"<tr><td>{label}</td>{_num(c.flops)}{_num(c.transcendentals)}"
                        f"{_num(c.bytes_accessed, si(c.bytes_accessed, 'B'))}</tr>")
        else:
            rows.append(f"<tr><td>{label}</td><td colspan=3>not reported</td></tr>")
    c = a.corrected
    rows.append(f"<tr><td>jaxcost corrected</td>{_num(c.flops)}{_num(c.transcendentals)}"
                f"{_num(c.bytes_accessed, si(c.bytes_accessed, 'B'))}</tr>")
    m = a.memory
    memory = (f'<div class="meta">memory (XLA\'s memory_analysis): arguments {si(m.argument_bytes, "B")}, outputs '
              f'{si(m.output_bytes, "B")}, temporaries {si(m.temp_bytes, "B")}, peak {si(m.peak_bytes, "B")}</div>'
              if m.available else "")
    return "<h2>Totals</h2>" + _table(["", "flops", "transcendentals", "bytes accessed"], rows, 'id="totals"') + memory


def _training(a) -> str:
    if not a.is_training_step:
        return ""
    c = a.training()
    rows = [f"<tr><td>{d.direction}</td>{_num(d.theory_flops)}{_num(d.theory_contraction_flops)}"
            f"{_num(d.xla_flops)}{_num(d.xla_flops_unoptimized)}</tr>" for d in c.directions.values()]
    return ("<h2>Training step by direction</h2>"
            + _table(["direction", "theory", "theory: contractions", "XLA optimized", "XLA lowered"], rows)
            + f'<div class="meta">model FLOPs {si(c.model_flops)} (forward + backward contractions: MFU); hardware '
              f"FLOPs {si(c.hardware_flops)} (XLA compiled, recompute included: HFU); backward = input gradients "
              f"{si(c.input_grad_flops)} + weight gradients {si(c.weight_grad_flops)}</div>")


def _layers(a) -> str:
    nodes = layer_tree(a)
    if nodes and not nodes[0].path and not nodes[0].inputs:
        nodes[0].inputs = ", ".join(a.input_shapes)
    directions = [d for d in ("forward", "backward", "recompute", "optimizer") if any(d in n.flops for n in nodes)]
    total = nodes[0].total_flops if nodes else 0.0
    has_children = {n.path.rsplit("/", 1)[0] if "/" in n.path else "" for n in nodes if n.path}
    heads = ["layer", "input", "output", "params", "MACs", *(f"XLA flops {d}" for d in directions), "share",
             "bytes fused", "bytes unfused", "theory flops", "fusions"]
    rows = []
    for n in nodes:
        toggle = '<span class="tg">\u25be</span>' if n.path in has_children else '<span class="tg"></span>'
        indent = f'style="padding-left:{8 + 14 * n.depth}px"'
        share = n.total_flops / total if total else 0.0
        cls = ("own " if n.own else "") + ("grp" if n.path in has_children else "")
        cells = [f'<td {indent}>{toggle}{_e(n.name)}</td><td>{_e(n.inputs)}</td><td>{_e(n.outputs)}</td>',
                 _num(n.params, f"{n.params:,}" if n.params else ""), _num(n.macs if n.macs else None)]
        cells += [_num(n.flops.get(d)) for d in directions]
        cells.append(f'<td class="n" data-v="{share!r}"><span class="bar" style="width:{60 * share:.1f}px"></span>'
                     f"{100 * share:.1f} %</td>")
        cells += [_num(n.bytes_accessed, si(n.bytes_accessed, "B")) if a.compiled else _num(None),
                  _num(n.bytes_unoptimized, si(n.bytes_unoptimized, "B")), _num(n.theory_flops or None),
                  _num(n.fusions, str(n.fusions) if n.fusions else "")]
        rows.append(f'<tr class="{cls}" data-path="{_e(n.path)}" data-depth="{n.depth}" data-open="1">'
                    + "".join(cells) + "</tr>")
    head = "".join(f'<th class="s{" n" if i >= 3 else ""}">{_e(h)}</th>' for i, h in enumerate(heads))
    return ("<h2>Layers, in model order</h2>"
            '<div><button id="order">model order</button><button id="expand">expand all</button>'
            '<button id="collapse">collapse blocks</button><span class="meta">a click on a column header sorts by it; '
            "a parent's figures include its children's</span></div>"
            f'<table id="layers" data-flat="0"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _collectives(a) -> str:
    if not (a.compiled and a.partitioning.partitioned):
        return ""
    coll = a.collectives()
    if not coll:
        return ""
    rows = [f"<tr><td>{_e(c.name)}</td><td>{c.kind}</td><td>{_e(c.layer or '(top)')}</td>"
            f"{_num(c.buffer_bytes, si(c.buffer_bytes, 'B'))}{_num(c.group_size, str(c.group_size))}"
            f"<td>{_e(','.join(c.axes) or '-')}</td>{_num(c.link_bytes, si(c.link_bytes, 'B'))}<td>{c.model}</td>"
            f"{_num(c.seconds, secs(c.seconds) if c.seconds is not None else '-')}</tr>" for c in coll]
    return "<h2>Collectives (per device)</h2>" + _table(
        ["collective", "kind", "layer", "buffer", "group", "mesh axes", "sends", "model", "time"], rows)


def _fusions(a, top: int) -> str:
    if not (a.compiled and a.fusions):
        return ""
    report = a.fusion_report()
    kernels = sorted(report.kernels, key=lambda k: -k.saved)[:top]
    rows = [f"<tr><td>{_e(k.name)}</td><td>{_e(k.kind)}</td>{_num(k.bytes_unfused, si(k.bytes_unfused, 'B'))}"
            f"{_num(k.bytes_fused, si(k.bytes_fused, 'B'))}{_num(k.saved, si(k.saved, 'B'))}"
            f"<td>{_e(k.describe())}</td></tr>" for k in kernels]
    return (f"<h2>Fused kernels (the {len(kernels)} that save the most bytes, of {len(report.kernels)})</h2>"
            + _table(["kernel", "kind", "unfused", "fused", "saved", "absorbed (layer: ops)"], rows))


def _ledger(a) -> str:
    if a.theory is None:
        return ""
    e = a.explain()

    def rows(start_label, start, lines, end_label, end, unit=""):
        out = [f"<tr><td>{_e(start_label)}</td>{_num(start, si(start, unit))}<td></td></tr>"]
        out += [f"<tr><td>{'+' if d.flops + d.bytes >= 0 else '−'} {_e(d.cause)}</td>"
                f"{_num(d.flops or d.bytes, si(abs(d.flops or d.bytes), unit))}<td>{_e(d.detail)}</td></tr>"
                for d in lines]
        out.append(f"<tr><td>= {_e(end_label)}</td>{_num(end, si(end, unit))}<td></td></tr>")
        return out

    flops = rows("2 x textbook MACs (dense)", e.textbook_flops, e.lines, e.total_label, e.total_flops)
    parts = ["<h2>Theory vs compiler: the ledger (adds up exactly)</h2>",
             _table(["flops", "", "why"], flops, 'class="ledger" id="ledger"')]
    if e.bytes_lines:
        parts.append(_table(["bytes", "", "why"], rows("XLA unoptimized bytes", e.bytes_start, e.bytes_lines,
                                                       "XLA optimized bytes", e.bytes_total, "B"),
                            'class="ledger"'))
    parts += [f'<div class="meta">{_e(n)}</div>' for n in e.notes]
    return "\n".join(parts)


def _bars_svg(a, top: int = 20) -> str:
    """Per-layer XLA flops of the heaviest layers (own rows), as horizontal bars."""
    rows = sorted((r for r in a.layers if (r.flops if a.compiled else r.flops_unoptimized) > 0),
                  key=lambda r: -(r.flops if a.compiled else r.flops_unoptimized))[:top]
    if not rows:
        return ""
    vmax = max(r.flops if a.compiled else r.flops_unoptimized for r in rows)
    h, left, width = 16, 230, 380
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{h * len(rows) + 10}">']
    for i, r in enumerate(rows):
        v = r.flops if a.compiled else r.flops_unoptimized
        name = (r.path or "(top level)") + ("" if r.direction == "forward" else f" [{r.direction}]")
        y = 4 + i * h
        w = width * v / vmax
        color = {"forward": "#4c78a8", "backward": "#f58518", "recompute": "#e45756"}.get(r.direction, "#72b7b2")
        out.append(f'<text x="{left - 6}" y="{y + 11}" text-anchor="end">{_e(name[-38:])}</text>'
                   f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{h - 5}" fill="{color}"/>'
                   f'<text x="{left + w + 4:.1f}" y="{y + 11}">{_e(si(v))}</text>')
    out.append("</svg>")
    return f"<h2>Heaviest layers (XLA flops)</h2>{''.join(out)}"


def _roofline_svg(a) -> str:
    """The compiled kernels on the roofline of the device (published chip peaks for a TPU
    target, the cached measurement for this machine); omitted when no peaks are known."""
    if not a.compiled:
        return ""
    from jaxcost.perf.peaks import get_peaks
    from jaxcost.perf.predict import program_roofline

    try:
        roof = program_roofline(a) if a.target else program_roofline(a, get_peaks(a.backend, measure=False))
    except (LookupError, ValueError):
        return '<h2>Roofline</h2><div class="meta">no peaks known for this device (run `jaxcost peaks`)</div>'
    points = [p for p in roof.points if p.flops > 0 and p.bytes > 0 and p.time_s > 0]
    if not points:
        return ""
    w, h, pad = 620, 300, 46
    xs = [math.log10(p.intensity) for p in points] + [math.log10(roof.ridge_intensity)]
    ys = [math.log10(p.flops / p.time_s) for p in points] + [math.log10(roof.peak_flops_per_s)]
    x0, x1 = math.floor(min(xs)) - 0.5, math.ceil(max(xs)) + 0.5
    y0, y1 = math.floor(min(ys)) - 0.5, math.log10(roof.peak_flops_per_s) + 0.5
    px = lambda v: pad + (v - x0) / (x1 - x0) * (w - 2 * pad)
    py = lambda v: h - pad - (v - y0) / (y1 - y0) * (h - 2 * pad)
    bw, peak = math.log10(roof.bandwidth_bytes_per_s), math.log10(roof.peak_flops_per_s)
    ridge = math.log10(roof.ridge_intensity)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">',
           f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" stroke="#ccc"/>',
           (f'<polyline fill="none" stroke="#333" stroke-width="1.5" points="{px(x0):.1f},{py(x0 + bw):.1f} '
           f'{px(ridge):.1f},{py(peak):.1f} {px(x1):.1f},{py(peak):.1f}"/>')]
    total = sum(p.time_s for p in points)
    for p in points:
        r = 2 + 10 * math.sqrt(p.time_s / total)
        color = {"compute": "#4c78a8", "memory": "#f58518", "collective": "#e45756"}[p.bound]
        out.append(f'<circle cx="{px(math.log10(p.intensity)):.1f}" cy="{py(math.log10(p.flops / p.time_s)):.1f}" '
                   f'r="{r:.1f}" fill="{color}" fill-opacity="0.55"><title>{_e(p.name)}: {si(p.flops)} flops, '
                   f"{si(p.bytes, 'B')}, {secs(p.time_s)} ({p.bound}){' *' if p.note else ''}</title></circle>")
    for d in range(math.ceil(x0), math.floor(x1) + 1):
        out.append(f'<text x="{px(d):.1f}" y="{h - pad + 14}" text-anchor="middle">1e{d}</text>')
    for d in range(math.ceil(y0), math.floor(y1) + 1):
        out.append(f'<text x="{pad - 4}" y="{py(d) + 4:.1f}" text-anchor="end">1e{d}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle">arithmetic intensity (flop / byte)</text>'
               f'<text x="12" y="{h / 2}" transform="rotate(-90 12 {h / 2})" text-anchor="middle">FLOP/s '
               "(predicted)</text></svg>")
    notes = "".join(f'<div class="warn">{_e(line)}</div>' for line in footnotes(roof.notes).splitlines())
    return (f"<h2>Roofline ({_e(roof.device_kind)}: predicted {secs(roof.predicted_s)})</h2>"
            f'<div class="meta">each compiled kernel at its predicted rate; area: its share of the predicted time; '
            f"blue compute-bound, orange memory-bound, red collective</div>{''.join(out)}{notes}")


def _warnings(a) -> str:
    if not a.warnings:
        return ""
    return "<h2>Warnings</h2><ul>" + "".join(f'<li class="warn">{_e(w)}</li>' for w in a.warnings) + "</ul>"


def report_html(a, *, fusions: int = 25) -> str:
    """The whole report as one HTML document (see the module docstring)."""
    body = "\n".join([_header(a), _totals(a), _training(a), _layers(a), _collectives(a), _bars_svg(a),
                      _roofline_svg(a), _fusions(a, fusions), _ledger(a), _warnings(a)])
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>jaxcost: {_e(a.name)}</title>'
            f"<style>{_CSS}</style></head><body>{body}<script>{_JS}</script></body></html>")
