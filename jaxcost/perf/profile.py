"""Where the time goes: measured time per kernel and per layer, from the JAX profiler.

``profile(fn, *args)`` compiles ``fn``, runs it ``warmup`` times, then ``steps`` times under
``jax.profiler.trace``; it reads the trace the profiler writes (``*.trace.json.gz``, Chrome
trace format, no TensorBoard needed) and keeps the events that name an HLO instruction of the
program (``args.hlo_op``, or an event named like one; ``args.hlo_module`` filters other
programs): on XLA:CPU one event per executed kernel (``ynn_fusion.14``), named exactly as in the
optimized HLO that jaxcost priced.

Per run (``args.run_id``, else one run per step) the **step** is the span from the first kernel's
start to the last kernel's end; the run whose span is the median is reported. Its rows add up to
the step exactly: each kernel's measured time (its summed durations), minus the time kernels ran
**concurrently**
(XLA:CPU runs independent kernels on several threads; their durations overlap), plus the
**gaps** between kernels (runtime overhead, host work, waits). Each kernel's time goes to the
layers of the instructions it holds, in proportion to their flops (their bytes for kernels
without flops), so the layer rows add up to the kernels'. :meth:`Profile.by_class` sums the
kernels by the class most of their flops go to (:func:`jaxcost.perf.kernels.main_class`: dense,
1x1, grouped or depthwise conv, dot, pool, attention, else ``other``), measured and predicted.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import json
import os
import tempfile
import time
from collections import defaultdict
from typing import NamedTuple

import jax

from jaxcost.compiler.loops import trip_count
from jaxcost.perf.kernels import main_class
from jaxcost.report.format import footnotes, secs
from jaxcost.report.show import Shown, console, render_text

GAPS = "(gaps between kernels: runtime, host work, waits)"
CONCURRENT = "(kernels running concurrently: overlap counted once)"


@dataclasses.dataclass(frozen=True)
class KernelTime:
    """One kernel of the program: measured seconds in the median step (all its calls), its share
    of the step, the priced op's flops and bytes (XLA's convention, but a while loop's counted
    every trip, as it runs), achieved rates, and
    the roofline's prediction and bound for it (None where there is no priced op)."""

    name: str
    measured_s: float
    share: float
    flops: float = 0.0
    bytes_accessed: float = 0.0
    predicted_s: float | None = None
    bound: str = ""
    layers: tuple[str, ...] = ()
    calls: int = 1
    note: str = ""  # a caveat on the prediction (jaxcost.perf.pricing)
    kernel_class: str = ""  # where most of its flops go (jaxcost.perf.kernels.main_class); "" for no op

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.measured_s if self.measured_s > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bytes_accessed / self.measured_s if self.measured_s > 0 else 0.0

    def __repr__(self) -> str:
        pred = f", predicted {secs(self.predicted_s)}" if self.predicted_s is not None else ""
        return f"KernelTime({self.name}: {secs(self.measured_s)} ({self.share:.1%}){pred}, {self.bound or '-'})"


class ClassTime(NamedTuple):
    """The kernels of one class (:func:`jaxcost.perf.kernels.main_class`) in a profiled step:
    how many, their measured seconds, and the seconds predicted for them (None: no prediction)."""

    kernels: int
    measured_s: float
    predicted_s: float | None


@dataclasses.dataclass(frozen=True)
class Profile(Shown):
    """Measured time of one compiled program: ``step_s`` (the median run's span), ``kernels``
    (heaviest first, with the concurrency and gap rows, adding up to ``step_s`` exactly),
    ``layers`` (seconds per layer path), ``predicted_s`` (the roofline's total: kernels one after
    another) and ``critical_path_s`` (its longest chain of dependent kernels: independent ones
    alongside; the measured concurrency row tells how much the runtime overlapped), ``runs``
    (steps profiled). ``unmatched``: events of the program naming no priced op."""

    name: str
    device_kind: str
    step_s: float
    kernels: list[KernelTime]
    layers: dict[str, float]
    predicted_s: float | None
    runs: int
    unmatched: dict[str, float] = dataclasses.field(default_factory=dict)
    critical_path_s: float | None = None

    def __repr__(self) -> str:
        return (f"Profile({self.name!r}, {self.device_kind}, step {secs(self.step_s)}, "
                f"{sum(1 for k in self.kernels if not k.name.startswith('('))} kernels, {self.runs} runs)")

    def kernel(self, name: str) -> KernelTime:
        return next(k for k in self.kernels if k.name == name)

    def summary(self, top: int = 20, print_: bool = True) -> str | None:
        """The ``top`` heaviest kernels and layers (rich tables); as text with ``print_=False``."""
        if print_:
            console().print(self.__rich__(top))
            return None
        return render_text(self.__rich__(top))

    def __rich__(self, top: int = 20):
        from rich.console import Group
        from rich.table import Table

        pred = "" if self.predicted_s is None else f"; predicted {secs(self.predicted_s)}" + (
            f", critical path {secs(self.critical_path_s)}" if self.critical_path_s is not None else "")
        t = Table(title=f"{self.name}: where the time goes (step {secs(self.step_s)}, median of {self.runs} runs{pred})")
        for col in ("kernel", "measured", "share", "predicted", "pred/meas", "bound", "GFLOP/s", "GB/s", "layers"):
            t.add_column(col, justify="left" if col in ("kernel", "bound", "layers") else "right",
                         no_wrap=col != "layers")
        for k in self.kernels[:top]:
            ratio = f"{k.predicted_s / k.measured_s:.2f}" if k.predicted_s and k.measured_s > 0 else ""
            t.add_row(k.name + (" *" if k.note else ""), secs(k.measured_s), f"{k.share:.1%}",
                      secs(k.predicted_s) if k.predicted_s else "", ratio, k.bound, f"{k.flops_per_s / 1e9:.1f}" if k.flops else "",
                      f"{k.bytes_per_s / 1e9:.1f}" if k.bytes_accessed else "", ", ".join(k.layers[:3]))
        notes = {k.name: k.note for k in self.kernels[:top] if k.note}
        if notes:
            t.caption = footnotes(notes)
        ct = Table(title="Kernel classes")
        for col in ("class", "kernels", "measured", "share", "predicted", "pred/meas"):
            ct.add_column(col, justify="left" if col == "class" else "right", no_wrap=True)
        for c, v in self.by_class().items():
            ct.add_row(c, str(v.kernels), secs(v.measured_s), f"{v.measured_s / self.step_s:.1%}",
                       secs(v.predicted_s) if v.predicted_s else "",
                       f"{v.predicted_s / v.measured_s:.2f}" if v.predicted_s and v.measured_s > 0 else "")
        lt = Table(title="Layers")
        for col in ("layer", "measured", "share"):
            lt.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
        for path, s in sorted(self.layers.items(), key=lambda kv: -kv[1])[:top]:
            lt.add_row(path or "(top level)", secs(s), f"{s / self.step_s:.1%}")
        return Group(t, ct, lt)

    def by_class(self) -> dict[str, ClassTime]:
        """The kernels summed per class (dense, 1x1, grouped and depthwise convs, dots, pools,
        attention, ``other``: the memory-bound rest), slowest first: which kind of kernel the
        step spends its time in, and how well each kind is predicted. The concurrency and gap
        rows, and events naming no priced op (``unmatched``), belong to no class."""
        out: dict[str, list] = {}
        for k in self.kernels:
            if k.kernel_class:
                n, measured, predicted = out.get(k.kernel_class, (0, 0.0, None))
                if k.predicted_s is not None:
                    predicted = (predicted or 0.0) + k.predicted_s
                out[k.kernel_class] = [n + 1, measured + k.measured_s, predicted]
        return {c: ClassTime(*v) for c, v in sorted(out.items(), key=lambda kv: -kv[1][1])}

    def to_dict(self) -> dict:
        return {"name": self.name, "device_kind": self.device_kind, "step_s": self.step_s, "runs": self.runs,
                "predicted_s": self.predicted_s, "critical_path_s": self.critical_path_s, "layers": self.layers,
                "unmatched": self.unmatched, "classes": {c: v._asdict() for c, v in self.by_class().items()},
                "kernels": [{**dataclasses.asdict(k), "layers": list(k.layers)} for k in self.kernels]}


def read_trace(directory: str) -> list[dict]:
    """The complete events (``ph == "X"``) of every ``*.trace.json.gz`` under ``directory``."""
    files = sorted(glob.glob(os.path.join(directory, "**", "*.trace.json.gz"), recursive=True))
    if not files:
        raise RuntimeError(f"the profiler wrote no *.trace.json.gz under {directory}")
    events = []
    for path in files:
        with gzip.open(path, "rt") as f:
            events += [e for e in json.load(f).get("traceEvents", []) if e.get("ph") == "X"]
    return events


def kernel_events(events: list[dict], op_names: set[str], module: str | None) -> list[dict]:
    """Events of executed kernels of ``module``: ``args.hlo_op`` names the instruction (XLA:CPU,
    GPU), else the event's name is one of ``op_names``."""
    out = []
    for e in events:
        a = e.get("args") or {}
        if module and a.get("hlo_module") not in (None, module):
            continue
        op = a.get("hlo_op") or (e["name"] if e["name"] in op_names else None)
        if op is not None and "dur" in e:
            out.append({**e, "op": op})
    return out


def _runs(events: list[dict], steps: int) -> list[list[dict]]:
    by: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        by[str((e.get("args") or {}).get("run_id", ""))].append(e)
    runs = [sorted(v, key=lambda e: e["ts"]) for v in by.values()]
    if len(runs) == 1 and steps > 1:  # no run ids: split the sorted events into equal steps
        flat = runs[0]
        n = len(flat) // steps
        runs = [flat[i * n:(i + 1) * n] for i in range(steps)] if n else runs
    return [r for r in runs if r]


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def _layer_split(op) -> dict[str, float]:
    """How a kernel's time divides among its layers: by the flops of its instructions, else
    by the bytes it moves for each."""
    weights: dict[str, float] = defaultdict(float)
    for i in op.inner:
        weights[i.layer] += max(i.flops, 0.0)
    if sum(weights.values()) <= 0:
        weights = defaultdict(float)
        for path, b in op.layer_bytes:
            weights[path] += max(b, 0.0)
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()} if total > 0 else {op.layer: 1.0}


def _owners(ops) -> dict[str, str]:
    """The top-level op that each instruction of a loop's, call's or conditional's body belongs
    to (XLA:CPU records the kernels of a while loop's body under their own names)."""
    owner = {}

    def walk(inst, top):
        for comp in inst.called:
            for sub in comp.instructions:
                owner[sub.name] = top
                walk(sub, top)

    for op in ops:
        if op.instruction is not None and op.opcode != "fusion":
            walk(op.instruction, op.name)
    return owner


def profile_compiled(analysis, run, *, steps: int = 5, name: str | None = None, device_kind: str = "",
                     peaks=None) -> Profile:
    """Profile ``run()`` (one step of the program ``analysis`` describes, blocking until done).
    Kernels of a loop's body count to the loop's row."""
    from jaxcost.perf.predict import program_roofline

    ops = {op.name: op for op in analysis.ops}
    owner = {k: v for k, v in _owners(analysis.ops).items() if k not in ops}
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d):
            for _ in range(steps):
                run()
        events = read_trace(d)
    module = analysis.module.module.name if analysis.module is not None else None
    found = kernel_events(events, set(ops) | set(owner), module)
    found = [{**e, "op": owner.get(e["op"], e["op"])} for e in found]
    if not found:
        raise RuntimeError("the profiler recorded no kernel of this program (the backend emits no per-kernel events)")
    runs = _runs(found, steps)
    spans = [max(e["ts"] + e["dur"] for e in r) - r[0]["ts"] for r in runs]
    run = runs[sorted(range(len(runs)), key=spans.__getitem__)[len(runs) // 2]]  # the median step
    step = spans[runs.index(run)] * 1e-6
    busy = _union([(e["ts"], e["ts"] + e["dur"]) for e in run]) * 1e-6
    per_kernel: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for e in run:
        per_kernel[e["op"]] += e["dur"] * 1e-6
        calls[e["op"]] += 1
    roof = None
    try:
        roof = program_roofline(analysis, peaks)
    except (LookupError, ValueError):
        pass
    predicted = {p.name: p for p in roof.points} if roof is not None else {}
    kernels, layers, unmatched = [], defaultdict(float), {}
    for k, t in per_kernel.items():
        op = ops.get(k)
        if op is None:
            unmatched[k] = t
        p = predicted.get(k)
        trips = (trip_count(op.instruction) or 1) if op is not None and op.opcode == "while" else 1
        kernels.append(KernelTime(k, t, t / step if step else 0.0, trips * op.flops if op else 0.0,
                                  trips * max(op.bytes_accessed, 0.0) if op else 0.0, p.time_s if p else None,
                                  p.bound if p else "", op.layers if op else (), calls[k], p.note if p else "",
                                  main_class(op) if op else ""))
        for path, w in (_layer_split(op) if op is not None else {"": 1.0}).items():
            layers[path] += w * t
    kernels.sort(key=lambda k: -k.measured_s)
    # <= 0: overlapping kernels counted once (a rounding excess of the union is no overlap)
    concurrent = min(busy - sum(per_kernel.values()), 0.0)
    gaps = step - sum(per_kernel.values()) - concurrent
    kernels += [KernelTime(CONCURRENT, concurrent, concurrent / step if step else 0.0),
                KernelTime(GAPS, gaps, gaps / step if step else 0.0)]
    layers[CONCURRENT] = concurrent
    layers[GAPS] = gaps
    return Profile(name or analysis.name, device_kind, step, kernels, dict(layers),
                   roof.predicted_s if roof is not None else None, len(runs), unmatched,
                   roof.critical_path_s if roof is not None else None)


def profile(fn, *args, steps: int = 5, warmup: int = 2, backend: str | None = None, analysis=None,
            peaks=None, **kwargs) -> Profile:
    """Measure where ``fn(*args)`` spends its time, per kernel and per layer (see the module
    docstring). ``fn``/``args`` as for :func:`jaxcost.analyze` (abstract arguments are filled
    with ones); ``analysis``: of the same program (compiled here when not given)."""
    from jaxcost.analysis import analyze
    from jaxcost.perf.timing import _materialize
    from jaxcost.target import make_target

    if analysis is None:
        analysis = analyze(fn, *args, backend=backend, theory=False, **kwargs)
    target = make_target(fn, args, kwargs)
    device = jax.devices(backend)[0]
    placed = [a if i in target.static_argnums else _materialize(a, device) for i, a in enumerate(target.args)]
    compiled = jax.jit(target.fn, static_argnums=target.static_argnums).lower(*placed).compile()
    dyn = [a for i, a in enumerate(placed) if i not in target.static_argnums]

    def run():
        jax.block_until_ready(compiled(*dyn))

    for _ in range(warmup):
        run()
    t = time.perf_counter()
    run()
    if time.perf_counter() - t > 60:
        steps = min(steps, 2)  # a minute a step: two profiled steps are enough
    return profile_compiled(analysis, run, steps=steps, name=analysis.name, device_kind=device.device_kind,
                            peaks=peaks)
