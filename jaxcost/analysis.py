"""``analyze()``: the pipeline, in order.

    target   fn / nnx.Module / linen Module  -> pure function of abstract args  (target.py)
    trace    jax.jit(...).trace               -> jaxpr
    lower    .lower()                         -> unoptimized HLO      ┐ XLA compiles in a worker thread
    price    unoptimized HLO + jaxpr          -> compiler + theory     ┘ while these are priced here
    compile  .compile()                       -> optimized HLO, cost_analysis, memory_analysis
    join     both sides by (layer path, direction)                     (join.py)
    -> Analysis
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax

from jaxcost.compiler.corrections import Corrected, correct
from jaxcost.compiler.diagnostics import module_warnings
from jaxcost.compiler.ops import ModuleCost, Op, parameter_layers, price_module
from jaxcost.compiler.totals import CostTotals, MemoryStats
from jaxcost.errors import AnalysisError
from jaxcost.join import LayerRow, join
from jaxcost.report.format import si
from jaxcost.sharding import Partitioning, abstract_on, local_mesh, partitioning
from jaxcost.target import Target, describe_expectation, make_target
from jaxcost.theory import TheoryResult, analyze_jaxpr

if TYPE_CHECKING:
    from jaxcost.diff.fusion import FusionReport
    from jaxcost.hardware import CompileTarget, HbmFit

__all__ = ["Analysis", "LayerRow", "Timings", "analyze", "analyze_theory"]


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


@dataclasses.dataclass(repr=False)
class Analysis:
    """Everything jaxcost knows about one compiled function.

    ``compiler`` / ``compiler_unoptimized`` are exactly XLA's ``cost_analysis()``
    of the optimized / lowered module; ``ops`` / ``ops_unoptimized`` are their
    top-level instructions priced by jaxcost's opcode rules; ``corrected`` fixes
    what XLA gets wrong (loops, custom calls); ``layers`` joins it all by layer;
    ``theory`` is the hand-derived cost of the jaxpr (:mod:`jaxcost.theory`).

    Basis of the figures: one call of the compiled program on one device; XLA's totals
    count loop bodies once, ``corrected`` and ``theory`` count them trip-count times. A program
    partitioned over several devices (``partitioning``) is compiled into one per-device program:
    the compiler figures are per device, the theory and the lowered module global (outside
    ``shard_map``), see :mod:`jaxcost.sharding`.
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
    input_dtypes: tuple[str, ...] = ()
    param_dtypes: tuple[str, ...] = ()
    optimizer_state: int = 0  # elements held by optimizer arguments (nnx.Optimizer)
    optimizer_state_bytes: int = 0
    module: ModuleCost | None = None
    module_unoptimized: ModuleCost | None = None
    theory: TheoryResult | None = None
    target: str = ""  # the hardware target compiled for ("tpu-v5e:2x4"); "" = the local backend
    hbm: HbmFit | None = None  # of a TPU target: does it fit in HBM, by how much
    partitioning: Partitioning = dataclasses.field(default_factory=Partitioning)
    # layer path -> (input, output) shapes, in model (call) order, for NNX and linen modules
    layer_shapes: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    jaxpr: object | None = None
    _fusion: FusionReport | None = None

    def __repr__(self) -> str:
        flops = self.compiler.flops if self.compiler.available else self.compiler_unoptimized.flops
        return (f"Analysis({self.name!r}, {self.backend}, params={self.params:,}, "
                f"xla_flops={si(flops)}, bytes={si(self.compiler.bytes_accessed, 'B')}, "
                f"layers={len(self.layers)}, ops={len(self.ops)}, warnings={len(self.warnings)})")

    # pickling: the parsed HLO graphs and the jaxpr are rebuilt from the HLO text
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(jaxpr=None, _fusion=None, ops=None, ops_unoptimized=None,
                     module=self.module.text if self.module is not None else None,
                     module_unoptimized=self.module_unoptimized.text if self.module_unoptimized else None)
        return state

    def __setstate__(self, state: dict) -> None:
        layer_of = parameter_layers(state["params_by_layer"])
        options = {}
        if state.get("target"):
            from jaxcost.hardware import parse_target

            options["tpu_table_alignment"] = parse_target(state["target"]).chip.tuple_table_alignment
        for key, ops_key in (("module", "ops"), ("module_unoptimized", "ops_unoptimized")):
            text = state[key]
            state[key] = price_module(text, layer_of, **(options if key == "module" else {})) if text else None
            state[ops_key] = state[key].ops if state[key] is not None else []
        self.__dict__.update(state)

    @property
    def fusions(self) -> list[Op]:
        return [op for op in self.ops if op.is_fusion]

    def layer(self, path: str, direction: str = "forward") -> LayerRow:
        for row in self.layers:
            if row.path == path and row.direction == direction:
                return row
        raise KeyError(f"no layer {path!r} ({direction}); layers: {[r.path for r in self.layers][:20]}")

    def collectives(self, link_bandwidth: float | None = None):
        """The collectives of the optimized module (a list of
        :class:`jaxcost.compiler.collectives.Collective`): bytes per device, mesh axes, bytes sent
        and time over one link direction: ``link_bandwidth`` (bytes/s), by default the target
        chip's published ICI bandwidth per link, else None (no time)."""
        from jaxcost.compiler.collectives import collectives

        if self.module is None:
            raise ValueError("collectives() needs the optimized module: analyze(..., compile=True)")
        if link_bandwidth is None and self.target:
            from jaxcost.hardware import parse_target

            per_link = parse_target(self.target).chip.ici_link_bandwidth
            link_bandwidth = per_link / 2 if per_link else None  # one direction of one link
        elif link_bandwidth is None and self.backend == "cpu":
            from jaxcost.perf.peaks import get_peaks

            try:  # host devices exchange through memory: its bandwidth, when measured before
                link_bandwidth = get_peaks("cpu", measure=False).bandwidth_bytes_per_s
            except LookupError:
                link_bandwidth = None
        return collectives(self.module.module.entry, self.partitioning, link_bandwidth)

    def fusion_report(self):
        """Each fused kernel with the layers and ops it absorbed and the bytes it saved
        (a :class:`jaxcost.FusionReport`). Needs the compiled module."""
        from jaxcost.diff.fusion import fusion_report

        if self.module is None:
            raise ValueError("fusion_report() needs the optimized module: analyze(..., compile=True)")
        if self._fusion is None:
            self._fusion = fusion_report(self.module, self.module_unoptimized)
        return self._fusion

    def training(self):
        """Of a training step: forward / backward / recompute / optimizer cost, the backward's
        input- and weight-gradient flops, model vs hardware FLOPs (a :class:`jaxcost.StepCost`)."""
        from jaxcost.train.cost import step_cost

        return step_cost(self)

    @property
    def is_training_step(self) -> bool:
        """Has the program a backward pass (``jax.grad`` / ``nnx.value_and_grad`` inside)?"""
        return any(row.direction != "forward" for row in self.layers)

    def conventions(self) -> dict:
        """This program's cost as ptflops, fvcore, torch's FlopCounterMode, DeepSpeed, Flax
        ``tabulate`` and Keras count it: one :class:`jaxcost.conventions.ConventionCount` per
        tool (:mod:`jaxcost.conventions`)."""
        from jaxcost.conventions import count_all

        return count_all(self)

    def explain(self):
        """The ledger from textbook flops to XLA's, each line with its cause (a
        :class:`jaxcost.Explanation`; its lines add up exactly)."""
        from jaxcost.diff.explain import explain

        return explain(self)

    # reports live in jaxcost.report; thin methods keep the object self-describing.
    def summary(self, *, max_layers: int = 40, max_fusions: int = 10, print_: bool = True, flat: bool = False,
                depth: int | None = None) -> str | None:
        """Print the report (rich tables, at the terminal's width): the layer tree in model order
        with shapes (as deep as ``max_layers`` rows allow, or down to ``depth``), or with
        ``flat=True`` the heaviest layers; with ``print_=False`` return it as text instead
        (returning None when printing keeps notebooks from showing it twice)."""
        from jaxcost.report.table import summary

        text = summary(self, max_layers=max_layers, max_fusions=max_fusions, print_=print_, flat=flat, depth=depth)
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

    def plot(self, what: str = "flops", top: int = 20, ax=None):
        """The ``top`` heaviest layers by XLA flops (``what="flops"``) or bytes fused vs unfused
        (``"bytes"``), as a matplotlib Axes (:func:`jaxcost.report.plots.plot_layers`)."""
        from jaxcost.report.plots import plot_layers

        return plot_layers(self, what, top, ax)

    def to_html(self, path=None) -> str:
        """The standalone HTML report (inline CSS/JS/SVG): the layer tree in model order with
        shapes, sortable, the ledger, fused kernels and plots; written to ``path`` if given."""
        from jaxcost.report.export import to_html

        return to_html(self, path)

    def _repr_html_(self) -> str:
        from jaxcost.report.export import to_html

        return to_html(self)


def _device(backend: str | None) -> jax.Device:
    if backend is None:
        return jax.devices()[0]
    try:
        return jax.devices(backend)[0]
    except RuntimeError as e:
        raise AnalysisError(f"backend {backend!r} is not available "
                            f"(jax sees: {jax.default_backend()}): {e}") from e


def _trace(target: Target, name: str):
    try:
        return jax.jit(target.fn, static_argnums=target.static_argnums).trace(*target.args)
    except Exception as e:
        hint = f" Inputs given: {shapes}." if (shapes := target.describe_inputs()) else ""
        if target.failures:
            hint += f" Failed in layer {describe_expectation(*target.failures[0])}."
        raise AnalysisError(f"cannot trace {name}: {type(e).__name__}: {e}{hint}") from e


def _param_invars(target: Target) -> frozenset[int]:
    """Indices of the flat jaxpr inputs that hold parameters."""
    out, start = set(), 0
    for i, a in enumerate(target.args):
        n = len(jax.tree.leaves(a))
        if i in target.param_argnums:
            out.update(range(start, start + n))
        start += n
    return frozenset(out)


def _theory(traced, target: Target) -> TheoryResult:
    return analyze_jaxpr(traced.jaxpr, param_invars=_param_invars(target))


def _step(what: str, name: str, fn: Callable):
    """Run one pipeline step; any failure becomes a one-line AnalysisError naming the step."""
    try:
        return fn()
    except Exception as e:
        raise AnalysisError(f"cannot {what} {name}: {type(e).__name__}: {e}") from e


def _compile(lowered, options: dict | None, timings: Timings):
    t = time.perf_counter()
    out = lowered.compile(options) if options else lowered.compile()
    timings.compile_s = time.perf_counter() - t
    return out


def _on_target(target: Target, where, in_specs, mesh) -> tuple[Target, CompileTarget, jax.Device]:
    """Put the abstract arguments on a TPU slice's compile-only devices (see
    :mod:`jaxcost.hardware`): the first device, or sharded by ``in_specs`` over ``mesh``."""
    from jaxcost.hardware import CompileTarget, parse_target

    try:
        tpu = where if isinstance(where, CompileTarget) else parse_target(where)
        devices = tpu.devices()
    except (ValueError, RuntimeError) as e:
        raise AnalysisError(str(e)) from None
    specs = None if in_specs is None else _full_specs(target, in_specs)
    placed = [a if i in target.static_argnums else
              tpu.place(a, None if specs is None else specs[i], axes=mesh)
              for i, a in enumerate(target.args)]
    return dataclasses.replace(target, args=tuple(placed)), tpu, devices[0]


def _full_specs(target: Target, in_specs) -> list:
    """One spec per argument of the target's function (None: replicated over the mesh). For a
    module (NNX or linen) ``in_specs`` are the specs of its inputs; parameters and state are
    replicated (data parallelism); for a function of NNX objects, one per argument (the
    objects' own are ignored: they are replicated)."""
    from jax.sharding import PartitionSpec

    in_specs = list(in_specs)
    if target.kind == "nnx-function":  # (params, state, *the user's arguments, kwargs)
        if len(in_specs) != len(target.args) - 3:
            raise AnalysisError(f"in_specs has {len(in_specs)} entries for {len(target.args) - 3} arguments")
        # NNX objects (their holes are None) are replicated
        in_specs = [None, None, *(spec if target.args[2 + j] is not None else None for j, spec in enumerate(in_specs)),
                    None]
    elif target.kind in ("nnx", "linen"):
        inputs = [i for i in target.input_argnums if jax.tree.leaves(target.args[i])]
        if len(in_specs) != len(inputs):
            raise AnalysisError(f"in_specs has {len(in_specs)} entries; {target.name} takes "
                                f"{len(inputs)} inputs (parameters are replicated)")
        out = [None] * len(target.args)
        for i, spec in zip(inputs, in_specs):
            out[i] = spec
        in_specs = out
    elif len(in_specs) == len(target.args) - 1 and isinstance(target.args[-1], dict):
        in_specs.append(None)  # the keyword arguments' dict
    if len(in_specs) != len(target.args):
        raise AnalysisError(f"in_specs has {len(in_specs)} entries for {len(target.args)} arguments")
    return [PartitionSpec() if spec is None else spec for spec in in_specs]


def _on_local_mesh(target: Target, backend: str | None, in_specs, mesh) -> Target:
    """Shard the abstract arguments over a mesh of this machine's devices."""
    if in_specs is None or mesh is None:
        raise AnalysisError("give both mesh= (axis sizes) and in_specs= (one PartitionSpec per argument)")
    specs = _full_specs(target, in_specs)
    try:
        m = local_mesh(dict(mesh), backend)
    except ValueError as e:
        raise AnalysisError(str(e)) from None
    placed = [a if i in target.static_argnums else abstract_on(a, specs[i], m) for i, a in enumerate(target.args)]
    return dataclasses.replace(target, args=tuple(placed))


def analyze(fn: Callable, *args, static_argnums=(), backend: str | None = None,
            compile: bool = True, params_argnums=(), compiler_options: dict | None = None,
            theory: bool = True, name: str | None = None, param_dtype=None, target=None,
            in_specs=None, mesh: dict[str, int] | None = None, opt_state_argnums=(), **kwargs) -> Analysis:
    """Analyze ``fn(*args, **kwargs)``: theory, compiler, and how they differ.

    ``fn`` is a jittable callable, an ``nnx.Module`` (called as ``module(*args)``)
    or a linen ``Module`` (initialised abstractly with ``jax.eval_shape``).
    ``args`` are arrays, ``jax.ShapeDtypeStruct``s or pytrees of them; no
    parameter is ever materialised. ``compile=False`` stops after lowering (the
    fast path: unoptimized module and theory only). ``params_argnums`` marks the
    arguments of a plain function that hold parameters; ``param_dtype`` casts the
    parameters (e.g. ``jnp.bfloat16``); ``opt_state_argnums`` marks those holding optimizer
    state (an ``nnx.Optimizer`` argument is found by itself). ``compiler_options`` go to ``Lowered.compile``
    (XLA debug options, e.g. ``{"xla_disable_hlo_passes": "fusion"}``).

    ``target`` (``"tpu-v5e"``, ``"tpu-v5e:2x4"`` or a :class:`jaxcost.hardware.CompileTarget`)
    compiles for a TPU slice without a TPU (libtpu's compile-only devices, ``pip install
    'jaxcost[tpu]'``): the arguments go on its first device, or, with ``in_specs`` (one
    ``PartitionSpec`` per argument, parameters included; for a module, one per input, the
    parameters replicated), are sharded over a mesh of ``mesh``
    (``{"data": 2, "model": 4}``). Figures are then per device; a footprint larger than the
    chip's HBM is a warning. Without ``target``, ``mesh`` and ``in_specs`` shard the arguments
    over this machine's devices (several CPU devices: ``XLA_FLAGS=
    --xla_force_host_platform_device_count=8``). Arguments that already carry a sharding keep it;
    ``Analysis.partitioning`` records the devices, the mesh and each input's sharding.
    """
    t_start = time.perf_counter()
    where = target
    target = make_target(fn, args, kwargs, static_argnums=static_argnums, params_argnums=params_argnums,
                         param_dtype=param_dtype, opt_state_argnums=opt_state_argnums)
    name = name or target.name
    tpu = None
    if where is not None:
        target, tpu, device = _on_target(target, where, in_specs, mesh)
    else:
        device = _device(backend)
        if in_specs is not None or mesh is not None:
            target = _on_local_mesh(target, backend, in_specs, mesh)
    timings = Timings()
    with jax.default_device(device) if tpu is None else contextlib.nullcontext():
        t0 = time.perf_counter()
        traced = _trace(target, name)
        timings.trace_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lowered = _step("lower", name, traced.lower)
        timings.lower_s = time.perf_counter() - t0
        # XLA compiles without the GIL: compile in a worker thread, and meanwhile price
        # the lowered module and walk the jaxpr here.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(_compile, lowered, compiler_options, timings) if compile else None
            t0 = time.perf_counter()
            unopt = price_module(lowered.as_text(dialect="hlo", debug_info=True))
            compiler_unopt = CostTotals.from_xla(lowered.cost_analysis())
            theory_result = _theory(traced, target) if theory else None
            timings.background_s = time.perf_counter() - t0
            compiled = None
            if future is not None:
                from jaxcost.report.progress import status

                t0 = time.perf_counter()
                with status(f"XLA compiling {name} for {tpu.name if tpu is not None else device.platform} ..."):
                    compiled = _step("compile", name, future.result)
                timings.waited_s = time.perf_counter() - t0

    warnings: list[str] = []
    fit = None
    opt, compiler_opt, memory = None, CostTotals(None, None, None, available=False), MemoryStats()
    if compiled is not None:
        t0 = time.perf_counter()
        alignment = {} if tpu is None else {"tpu_table_alignment": tpu.chip.tuple_table_alignment}
        opt = price_module(compiled.as_text(), parameter_layers(target.params_by_layer), **alignment)
        timings.price_s = time.perf_counter() - t0
        compiler_opt = CostTotals.from_xla(compiled.cost_analysis())
        try:
            memory = MemoryStats.from_xla(compiled.memory_analysis())
        except Exception as e:  # noqa: BLE001 - some plugins do not implement it
            warnings.append(f"memory_analysis() unavailable: {e}")
        if tpu is not None and memory.available:
            from jaxcost.hardware import hbm_fit

            fit = hbm_fit(memory, tpu.chip, compiled.as_text())
            if not fit.fits:
                warnings.append(f"{tpu.name}: {fit}")
        warnings += module_warnings("optimized", opt, compiler_opt)
    warnings += module_warnings("unoptimized", unopt, compiler_unopt)
    priced = opt or unopt
    corrected = correct(priced.module.entry, priced.model)
    split = partitioning(target.args, traced.jaxpr, priced.text)
    if theory_result is not None:
        warnings += [f"theory: {w}" for w in theory_result.warnings]

    analysis = Analysis(
        name=name, backend=device.platform, device_kind=getattr(device, "device_kind", ""),
        compiled=compiled is not None, params=target.params, params_by_layer=target.params_by_layer,
        compiler=compiler_opt, compiler_unoptimized=compiler_unopt, memory=memory,
        ops=opt.ops if opt else [], ops_unoptimized=unopt.ops, corrected=corrected,
        layers=join(target.params_by_layer, opt, unopt, theory_result),
        warnings=list(dict.fromkeys(warnings)), timings=timings, input_shapes=[f"{a.dtype}{list(a.shape)}" for a in target.inputs()],
        input_dtypes=target.input_dtypes, param_dtypes=target.param_dtypes,
        optimizer_state=target.optimizer_state, optimizer_state_bytes=target.optimizer_state_bytes,
        module=opt, module_unoptimized=unopt, theory=theory_result, jaxpr=traced.jaxpr,
        target=tpu.name if tpu is not None else "", hbm=fit, partitioning=split, layer_shapes=dict(target.shapes))
    timings.analyze_s = time.perf_counter() - t_start
    return analysis


def analyze_theory(fn: Callable, *args, static_argnums=(), params_argnums=(), param_dtype=None,
                   **kwargs) -> TheoryResult:
    """Theory only: trace ``fn(*args)`` (no lowering, no compiling) and walk its jaxpr with
    the theory engine. Returns a :class:`jaxcost.TheoryResult` with per-layer paths."""
    target = make_target(fn, args, kwargs, static_argnums=static_argnums, params_argnums=params_argnums,
                         param_dtype=param_dtype)
    return _theory(_trace(target, target.name), target)
