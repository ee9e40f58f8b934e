"""``analyze()``: trace, lower, compile, price, attribute — the one entry point."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax

from jaxcost.compiler.corrections import Corrected, correct
from jaxcost.compiler.ops import ModuleCost, Op, parameter_layers, price_module
from jaxcost.compiler.totals import CostTotals, MemoryStats
from jaxcost.errors import AnalysisError
from jaxcost.target import Target, make_target


@dataclasses.dataclass
class LayerRow:
    """One layer path: compiler flops/bytes/transcendentals (optimized module),
    the unoptimized module's figures, parameters, and the fusions it ended up in."""

    path: str
    direction: str
    flops: float = 0.0
    transcendentals: float = 0.0
    bytes_accessed: float = 0.0
    flops_unoptimized: float = 0.0
    bytes_unoptimized: float = 0.0
    params: int = 0
    fusions: list[str] = dataclasses.field(default_factory=list)
    theory: Any = None  # jaxcost.theory totals for this layer, when computed


@dataclasses.dataclass
class Timings:
    """Where analyze() spent its time. XLA compiles in a worker thread (``compile_s``)
    while the unoptimized module is priced and the jaxpr walked (``background_s``);
    ``waited_s`` is how long analyze() then waited for the compiler; ``price_s``
    prices the optimized module."""

    trace_s: float = 0.0
    lower_s: float = 0.0
    compile_s: float = 0.0
    background_s: float = 0.0
    waited_s: float = 0.0
    price_s: float = 0.0
    analyze_s: float = 0.0


@dataclasses.dataclass
class Analysis:
    """Everything jaxcost knows about one compiled function.

    ``compiler`` / ``compiler_unoptimized`` are exactly XLA's ``cost_analysis()``
    of the optimized / lowered module; ``ops`` / ``ops_unoptimized`` are their
    top-level instructions priced by jaxcost's opcode rules; ``corrected`` fixes
    what XLA gets wrong (loops, custom calls); ``layers`` joins it all by layer.
    """

    name: str
    backend: str
    device_kind: str
    compiled: bool
    params: int
    params_by_layer: dict[str, int]
    compiler: CostTotals
    compiler_unoptimized: CostTotals
    memory: MemoryStats
    ops: list[Op]
    ops_unoptimized: list[Op]
    corrected: Corrected
    layers: list[LayerRow]
    warnings: list[str]
    timings: Timings
    input_shapes: list[str]
    module: ModuleCost | None = dataclasses.field(default=None, repr=False)
    module_unoptimized: ModuleCost | None = dataclasses.field(default=None, repr=False)
    theory: Any = None
    jaxpr: Any = dataclasses.field(default=None, repr=False)
    _fusion: Any = dataclasses.field(default=None, repr=False)

    @property
    def fusions(self) -> list[Op]:
        return [op for op in self.ops if op.is_fusion]

    def layer(self, path: str, direction: str = "forward") -> LayerRow:
        for row in self.layers:
            if row.path == path and row.direction == direction:
                return row
        raise KeyError(f"no layer {path!r} ({direction}); layers: {[r.path for r in self.layers][:20]}")

    def fusion_report(self):
        """Each fused kernel with the layers and ops it absorbed and the bytes it saved
        (see :mod:`jaxcost.diff.fusion`). Needs the compiled module."""
        from jaxcost.diff.fusion import fusion_report

        if self.module is None:
            raise ValueError("fusion_report() needs the optimized module: analyze(..., compile=True)")
        if self._fusion is None:
            self._fusion = fusion_report(self.module, self.module_unoptimized)
        return self._fusion

    def explain(self):
        """The differences between theory and compiler, each with cause and magnitude
        (see :mod:`jaxcost.diff.explain`)."""
        from jaxcost.diff.explain import explain

        return explain(self)

    # reports live in jaxcost.report; thin methods keep the object self-describing.
    def summary(self, *, max_layers: int = 40, max_fusions: int = 10, print_: bool = True) -> str | None:
        """Print the report (rich tables); with ``print_=False`` return it as text instead
        (returning None when printing keeps notebooks from showing it twice)."""
        from jaxcost.report.table import summary

        text = summary(self, max_layers=max_layers, max_fusions=max_fusions, print_=print_)
        return None if print_ else text

    def to_dict(self) -> dict:
        from jaxcost.report.export import to_dict

        return to_dict(self)

    def to_json(self, path=None, *, indent: int = 2) -> str:
        from jaxcost.report.export import to_json

        return to_json(self, path, indent=indent)

    def to_dataframe(self, what: str = "layers"):
        from jaxcost.report.export import to_dataframe

        return to_dataframe(self, what)

    def _repr_html_(self) -> str:
        from jaxcost.report.export import to_html

        return to_html(self)


def _layers(target: Target, opt: ModuleCost | None, unopt: ModuleCost) -> list[LayerRow]:
    rows: dict[tuple[str, str], LayerRow] = {}

    def row(path: str, direction: str) -> LayerRow:
        key = (path, direction)
        if key not in rows:
            rows[key] = LayerRow(path, direction)
        return rows[key]

    for module, optimized in ((opt, True), (unopt, False)):
        if module is None:
            continue
        for op in module.ops:
            parts = ([(i.layer, i.direction, i.flops, i.transcendentals) for i in op.inner]
                     if op.inner else [(op.layer, op.direction, op.flops, op.transcendentals)])
            if op.opcode == "custom-call":
                parts = [(op.layer, op.direction, 0.0, 0.0)]  # -1 means unknown, not negative work
            for path, direction, flops, trans in parts:
                r = row(path, direction)
                if optimized:
                    r.flops += flops
                    r.transcendentals += trans
                    if op.is_fusion and op.name not in r.fusions:
                        r.fusions.append(op.name)
                else:
                    r.flops_unoptimized += flops
            for path, b in op.layer_bytes:
                r = row(path, op.direction)
                if optimized:
                    r.bytes_accessed += max(b, 0.0)
                else:
                    r.bytes_unoptimized += max(b, 0.0)
    for path, n in target.params_by_layer.items():
        row(path, "forward").params += n
    return sorted(rows.values(), key=lambda r: (r.direction != "forward", r.path))


def _shape_hint(target: Target, args) -> str:
    shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in jax.tree.leaves(args[len(target.param_argnums):])
                       if hasattr(a, "shape"))
    hint = f" Inputs given: {shapes}." if shapes else ""
    if target.failures:
        from jaxcost.target import describe_expectation

        hint += f" Failed in layer {describe_expectation(*target.failures[0])}."
    return hint


def analyze(fn: Callable, *args, static_argnums=(), backend: str | None = None,
            compile: bool = True, params_argnums=(), compiler_options: dict | None = None,
            theory: bool = True, name: str | None = None, **kwargs) -> Analysis:
    """Analyze ``fn(*args, **kwargs)``: theory, compiler, and how they differ.

    ``fn`` is a jittable callable, an ``nnx.Module`` (called as ``module(*args)``)
    or a linen ``Module`` (initialised abstractly with ``jax.eval_shape``).
    ``args`` are arrays, ``jax.ShapeDtypeStruct``s or pytrees of them; no
    parameter is ever materialised. ``compile=False`` stops after lowering (the
    fast path: unoptimized module and theory only). ``params_argnums`` marks the
    arguments of a plain function that hold parameters. ``compiler_options`` go
    to ``Lowered.compile`` (XLA debug options, e.g. ``{"xla_disable_hlo_passes": "fusion"}``).
    """
    t_start = time.perf_counter()
    target = make_target(fn, args, kwargs, static_argnums=static_argnums,
                         params_argnums=params_argnums)
    name = name or target.name
    if backend is not None:
        try:
            device = jax.devices(backend)[0]
        except RuntimeError as e:
            raise AnalysisError(f"backend {backend!r} is not available "
                                f"(jax sees: {jax.default_backend()}): {e}") from e
    else:
        device = jax.devices()[0]
    timings = Timings()
    warnings: list[str] = []
    with jax.default_device(device):
        t0 = time.perf_counter()
        try:
            traced = jax.jit(target.fn, static_argnums=target.static_argnums).trace(*target.args)
        except Exception as e:
            raise AnalysisError(f"cannot trace {name}: {type(e).__name__}: {e}"
                                f"{_shape_hint(target, target.args)}") from e
        timings.trace_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            lowered = traced.lower()
        except Exception as e:
            raise AnalysisError(f"cannot lower {name}: {type(e).__name__}: {e}") from e
        timings.lower_s = time.perf_counter() - t0
        compiled = None
        # XLA compiles without the GIL: compile in a worker thread, and meanwhile price
        # the lowered module and walk the jaxpr here.
        def compile_():
            t = time.perf_counter()
            out = lowered.compile(compiler_options) if compiler_options else lowered.compile()
            timings.compile_s = time.perf_counter() - t
            return out

        theory_warnings: list[str] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(compile_) if compile else None
            t0 = time.perf_counter()
            unopt, compiler_unopt = _unoptimized(lowered)
            theory_result = _theory(traced, target, theory_warnings) if theory else None
            timings.background_s = time.perf_counter() - t0
            if future is not None:
                t0 = time.perf_counter()
                try:
                    compiled = future.result()
                except Exception as e:
                    raise AnalysisError(f"cannot compile {name}: {type(e).__name__}: {e}") from e
                timings.waited_s = time.perf_counter() - t0

    opt = None
    compiler_opt = CostTotals(None, None, None, available=False)
    memory = MemoryStats()
    if compiled is not None:
        t0 = time.perf_counter()
        opt = price_module(compiled.as_text(), parameter_layers(target.params_by_layer))
        timings.price_s = time.perf_counter() - t0
        compiler_opt = CostTotals.from_xla(compiled.cost_analysis())
        try:
            memory = MemoryStats.from_xla(compiled.memory_analysis())
        except Exception as e:  # noqa: BLE001 - some plugins do not implement it
            warnings.append(f"memory_analysis() unavailable: {e}")

    for label, module, xla in (("optimized", opt, compiler_opt), ("unoptimized", unopt, compiler_unopt)):
        if module is None:
            continue
        for opcode, count in sorted(module.unknown.items()):
            warnings.append(f"{label} HLO: no cost rule for opcode {opcode!r} ({count}x): "
                            "priced at its bytes, zero flops")
        if xla.available and not module.agrees_with(xla.flops, xla.transcendentals):
            warnings.append(f"{label} HLO: jaxcost's rules give {module.total.flops:,.0f} flops / "
                            f"{module.total.transcendentals:,.0f} transcendentals, XLA says "
                            f"{xla.flops:,.0f} / {xla.transcendentals:,.0f}")
        for op in module.ops:
            if op.opcode == "custom-call":
                warnings.append(f"{label} HLO: custom call {op.custom_call_target!r} ({op.name}) is "
                                "reported by XLA as -1 flops/bytes; see Analysis.corrected")
    priced = opt or unopt
    corrected = correct(priced.module.entry, priced.model)

    warnings.extend(theory_warnings)

    analysis = Analysis(
        name=name, backend=device.platform, device_kind=getattr(device, "device_kind", ""),
        compiled=compiled is not None, params=target.params, params_by_layer=target.params_by_layer,
        compiler=compiler_opt, compiler_unoptimized=compiler_unopt, memory=memory,
        ops=opt.ops if opt else [], ops_unoptimized=unopt.ops, corrected=corrected,
        layers=_layers(target, opt, unopt), warnings=list(dict.fromkeys(warnings)),
        timings=timings, input_shapes=[f"{a.dtype}{list(a.shape)}" for a in
                                       jax.tree.leaves(target.args[len(target.param_argnums):])
                                       if hasattr(a, "shape")],
        module=opt, module_unoptimized=unopt, theory=theory_result, jaxpr=traced.jaxpr)
    if theory_result is not None:
        _attach_theory(analysis)
    timings.analyze_s = time.perf_counter() - t_start
    return analysis


def analyze_theory(fn: Callable, *args, static_argnums=(), params_argnums=(), **kwargs):
    """Theory only: trace ``fn(*args)`` (no lowering, no compiling) and walk its jaxpr with
    the theory engine. Returns a :class:`jaxcost.theory.TheoryResult` with per-layer paths."""
    from jaxcost.theory import analyze_jaxpr

    target = make_target(fn, args, kwargs, static_argnums=static_argnums, params_argnums=params_argnums)
    try:
        traced = jax.jit(target.fn, static_argnums=target.static_argnums).trace(*target.args)
    except Exception as e:
        raise AnalysisError(f"cannot trace {target.name}: {type(e).__name__}: {e}"
                            f"{_shape_hint(target, target.args)}") from e
    return analyze_jaxpr(traced.jaxpr, param_invars=frozenset(_param_invars(target)))


def _param_invars(target: Target) -> set[int]:
    """Indices of the flat jaxpr inputs that hold parameters."""
    out, start = set(), 0
    for i, a in enumerate(target.args):
        n = len(jax.tree.leaves(a))
        if i in target.param_argnums:
            out.update(range(start, start + n))
        start += n
    return out


def _unoptimized(lowered) -> tuple[ModuleCost, CostTotals]:
    """The lowered module priced by jaxcost and by XLA."""
    priced = price_module(lowered.as_text(dialect="hlo", debug_info=True))
    return priced, CostTotals.from_xla(lowered.cost_analysis())


def _theory(traced, target: Target, warnings: list[str]):
    """Run the theory engine on the traced jaxpr (parameters marked by argument)."""
    try:
        from jaxcost.theory import analyze_jaxpr
    except ImportError:
        return None
    result = analyze_jaxpr(traced.jaxpr, param_invars=frozenset(_param_invars(target)))
    for w in getattr(result, "warnings", []):
        warnings.append(f"theory: {w}")
    return result


def _attach_theory(analysis: Analysis) -> None:
    by_layer = analysis.theory.by_layer()
    rows = {(r.path, r.direction): r for r in analysis.layers}
    for key, totals in by_layer.items():
        path, direction = key if isinstance(key, tuple) else (key, "forward")
        row = rows.get((path, direction))
        if row is None:
            row = LayerRow(path, direction)
            analysis.layers.append(row)
            rows[(path, direction)] = row
        row.theory = totals
    analysis.layers.sort(key=lambda r: (r.direction != "forward", r.path))
