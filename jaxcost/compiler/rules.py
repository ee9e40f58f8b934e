"""HLO opcode -> cost rules, counted the way XLA's ``HloCostAnalysis`` counts.

Each rule takes an :class:`~jaxcost.compiler.hlo.Instruction` and the
:class:`CostModel` (to price called computations) and returns a :class:`Cost`.
Adding an opcode is adding one function decorated with ``@rule("opcode")``.
Conventions (``xla/service/hlo_cost_analysis.cc``):

* bytes accessed default to the operands' sizes plus the output's size;
* elementwise ops cost one flop per output element, or one transcendental for
  exp/log/tanh/logistic/pow/sqrt/rsqrt/... ;
* dot: 2 x output elements x contracted size; convolution: 2 x valid taps
  (taps that land on padding or on lhs-dilation holes are not counted);
* reduce: (input - output elements) x the reducer's cost; reduce-window:
  (window - 1) x output elements x the reducer's cost;
* a fusion costs what its computation costs, but moves only its parameters
  (as much of them as its slices read) and its outputs;
* ``while`` counts its body and condition once (see :mod:`.corrections`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from jaxcost.compiler.hlo import POINTER_BYTES, Computation, Instruction, Shape


@dataclasses.dataclass(frozen=True)
class Cost:
    """What an instruction costs: flops, transcendentals and bytes accessed."""

    flops: float = 0.0
    transcendentals: float = 0.0
    bytes_accessed: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.flops + other.flops, self.transcendentals + other.transcendentals,
                    self.bytes_accessed + other.bytes_accessed)

    def scaled(self, k: float, *, bytes_too: bool = True) -> Cost:
        return Cost(self.flops * k, self.transcendentals * k,
                    self.bytes_accessed * k if bytes_too else 0.0)


Rule = Callable[[Instruction, "CostModel"], Cost]
RULES: dict[str, Rule] = {}

FMA_FLOPS = 2


def rule(*opcodes: str):
    """Register a cost rule for one or more HLO opcodes."""

    def wrap(fn: Rule) -> Rule:
        for op in opcodes:
            RULES[op] = fn
        return fn

    return wrap


def size(shape: Shape) -> float:
    return float(shape.bytes)


def default_bytes(inst: Instruction, model: CostModel) -> float:
    """Operands read once plus the output written once."""
    return model.total([size(inst.shape)] + [size(o.shape) for o in inst.operands])


def output_elements(inst: Instruction) -> int:
    s = inst.shape
    return s.tuple_shapes[0].elements if s.is_tuple else s.elements


# -- elementwise ------------------------------------------------------------------------

TRANSCENDENTAL = {
    "exponential", "exponential-minus-one", "log", "log-plus-one", "logistic", "power",
    "sqrt", "cbrt", "rsqrt", "tanh", "sine", "cosine", "tan", "atan2", "erf",
}
ELEMENTWISE = {
    "add", "subtract", "multiply", "divide", "maximum", "minimum", "remainder",
    "and", "or", "xor", "not", "negate", "abs", "sign", "floor", "ceil",
    "round-nearest-afz", "round-nearest-even", "compare", "select", "clamp", "convert",
    "bitcast-convert", "is-finite", "shift-left", "shift-right-arithmetic",
    "shift-right-logical", "popcnt", "count-leading-zeros", "real", "imag", "complex",
    "reduce-precision", "stochastic-convert",
}


@rule(*TRANSCENDENTAL)
def _transcendental(inst, model):
    return model.cost(0, inst.shape.elements, default_bytes(inst, model))


@rule(*ELEMENTWISE)
def _elementwise(inst, model):
    return model.cost(inst.shape.elements, 0, default_bytes(inst, model))


# -- data movement without arithmetic ---------------------------------------------------


@rule("broadcast", "reshape", "dynamic-reshape", "copy", "pad", "concatenate", "reverse",
      "iota", "opt-barrier", "get-dimension-size", "set-dimension-size", "partition-id",
      "replica-id", "copy-start", "copy-done", "all-gather", "all-gather-start",
      "all-gather-done", "all-to-all", "collective-permute", "collective-permute-start",
      "collective-permute-done", "reduce-scatter", "all-reduce-done", "send", "send-done",
      "recv", "recv-done", "async-update", "async-done", "rng-get-and-update-state",
      "batch-norm-training", "batch-norm-inference", "batch-norm-grad", "infeed", "outfeed")
def _moves_data(inst, model):
    return model.cost(0, 0, default_bytes(inst, model))


@rule("parameter", "constant", "get-tuple-element", "bitcast", "domain", "after-all",
      "add-dependency")
def _free(inst, model):
    return Cost()


@rule("tuple")
def _tuple(inst, model):
    """A tuple only gathers pointers: its index table is what it writes."""
    return model.cost(0, 0, POINTER_BYTES * len(inst.shape.tuple_shapes or ()))


def transpose_is_bitcast(inst: Instruction) -> bool:
    """A transpose whose physical element order does not change (layouts permute along)."""
    op = inst.operands[0] if inst.operands else None
    perm = inst.int_list("dimensions")
    if op is None or op.shape.layout is None or inst.shape.layout is None:
        return False
    mapped = [perm[d] for d in inst.shape.layout if inst.shape.dims[d] != 1]
    source = [d for d in op.shape.layout if op.shape.dims[d] != 1]
    return mapped == source


@rule("transpose")
def _transpose(inst, model):
    return Cost() if transpose_is_bitcast(inst) else model.cost(0, 0, default_bytes(inst, model))


@rule("slice")
def _slice(inst, model):
    return model.cost(0, 0, 2 * size(inst.shape))


@rule("dynamic-slice")
def _dynamic_slice(inst, model):
    index = size(inst.operands[1].shape) if len(inst.operands) > 1 else 0
    return model.cost(0, 0, 2 * size(inst.shape) + index)


@rule("dynamic-update-slice")
def _dynamic_update_slice(inst, model):
    update, index = inst.operands[1], inst.operands[2] if len(inst.operands) > 2 else None
    return model.cost(0, 0, 2 * size(update.shape) + (size(index.shape) if index else 0))


@rule("gather")
def _gather(inst, model):
    return model.cost(0, 0, 2 * size(inst.shape) + size(inst.operands[1].shape))


@rule("scatter")
def _scatter(inst, model):
    n = (len(inst.operands) - 1) // 2
    updates = inst.operands[n + 1:]
    indices = inst.operands[n]
    update_bytes = sum(size(u.shape) for u in updates)
    reducer = model.computation_cost(inst.called[0]) if inst.called else Cost()
    return Cost(reducer.flops * updates[0].shape.elements,
                reducer.transcendentals * updates[0].shape.elements,
                model.num(3 * update_bytes + size(indices.shape)))


# -- contractions -----------------------------------------------------------------------


def dot_flops(inst: Instruction) -> int:
    """2 x output elements x product of the lhs contracting dimensions."""
    lhs = inst.operands[0].shape
    width = math.prod(lhs.dims[d] for d in inst.int_list("lhs_contracting_dims"))
    return FMA_FLOPS * inst.shape.elements * width


@rule("dot")
def _dot(inst, model):
    return model.cost(dot_flops(inst), 0, default_bytes(inst, model))


@dataclasses.dataclass(frozen=True)
class ConvDims:
    """Dimension numbers of a convolution, from ``dim_labels=b01f_01io->b01f``."""

    lhs_batch: int
    lhs_feature: int
    lhs_spatial: tuple[int, ...]
    rhs_in: int
    rhs_out: int
    rhs_spatial: tuple[int, ...]
    out_batch: int
    out_feature: int
    out_spatial: tuple[int, ...]


def conv_dims(labels: str) -> ConvDims:
    lhs, rest = labels.split("_", 1)
    rhs, out = rest.split("->")

    def spatial(spec):
        digits = sorted((c for c in spec if c.isdigit()), key=int)
        return tuple(spec.index(c) for c in digits)

    return ConvDims(lhs.index("b"), lhs.index("f"), spatial(lhs), rhs.index("i"), rhs.index("o"),
                    spatial(rhs), out.index("b"), out.index("f"), spatial(out))


def valid_taps(in_size: int, kernel: int, out_size: int, w) -> int:
    """(kernel index, output index) pairs whose input index is a real input element:
    not padding, not a hole of lhs (base) dilation."""
    count = 0
    for k in range(kernel):
        for o in range(out_size):
            undilated = o * w.stride - w.pad_lo + k * w.rhs_dilation
            if undilated % w.lhs_dilation:
                continue
            i = undilated // w.lhs_dilation
            if 0 <= i < in_size:
                count += 1
    return count


def conv_macs_valid(inst: Instruction, lhs: Shape, rhs: Shape, out: Shape) -> int:
    """Multiply-accumulates over valid taps, as ``HloCostAnalysis::GetConvolutionFlops``."""
    d = conv_dims(inst.dim_labels)
    taps = 1
    for i, w in enumerate(inst.window):
        taps *= valid_taps(lhs.dims[d.lhs_spatial[i]], rhs.dims[d.rhs_spatial[i]],
                           out.dims[d.out_spatial[i]], w)
    cin = lhs.dims[d.lhs_feature] // inst.feature_group_count
    batch = lhs.dims[d.lhs_batch] // inst.batch_group_count
    return cin * out.dims[d.out_feature] * batch * taps


@rule("convolution")
def _convolution(inst, model):
    lhs, rhs = inst.operands[0].shape, inst.operands[1].shape
    return model.cost(FMA_FLOPS * conv_macs_valid(inst, lhs, rhs, inst.shape), 0,
                      default_bytes(inst, model))


@rule("fft")
def _fft(inst, model):
    shape = inst.operands[0].shape
    shape = shape.tuple_shapes[0] if shape.is_tuple else shape
    log_factors = math.prod(int(n).bit_length() - 1 for n in inst.int_list("fft_length"))
    return model.cost(FMA_FLOPS * 4 * log_factors * shape.elements, 0, default_bytes(inst, model))


@rule("triangular-solve")
def _triangular_solve(inst, model):
    a, b = inst.operands[0].shape, inst.operands[1].shape
    return model.cost(FMA_FLOPS * a.dims[-1] * b.elements, 0,
                      size(inst.shape) + size(a) / 2 + size(b))


@rule("cholesky")
def _cholesky(inst, model):
    a = inst.operands[0].shape
    return model.cost((a.dims[-1] * a.elements) // 3, 0, size(a))


# -- reductions and windows -------------------------------------------------------------


def _applied(inst: Instruction, model: CostModel, times: float) -> Cost:
    """``times`` applications of the called reducer, with the default bytes."""
    sub = model.computation_cost(inst.called[0]) if inst.called else Cost()
    return Cost(sub.flops * times, sub.transcendentals * times, default_bytes(inst, model))


@rule("reduce")
def _reduce(inst, model):
    return _applied(inst, model, inst.operands[0].shape.elements - output_elements(inst))


@rule("map")
def _map(inst, model):
    return _applied(inst, model, inst.shape.elements)


@rule("reduce-window")
def _reduce_window(inst, model):
    window = inst.window
    n_window = math.prod(w.size for w in window)
    out = output_elements(inst)
    count = (n_window - 1) * out
    # XLA recognises a reduce-window that is a reduce + broadcast along one dim.
    reducing = [w for w in window if w.size != 1]
    padded = [w for w in window if w.pad_lo or w.pad_hi]
    if len(reducing) == 1 and len(padded) == 1 and not inst.shape.is_tuple:
        for dim, w in enumerate(window):
            if (w.size != 1 and w.pad_lo and w.pad_lo == w.pad_hi and w.size == 2 * w.pad_lo + 1
                    and w.pad_lo == inst.shape.dims[dim] - 1):
                span = inst.shape.dims[dim]
                count = out // span + span - 1
                break
    return _applied(inst, model, count)


@rule("select-and-scatter")
def _select_and_scatter(inst, model):
    source = inst.operands[1].shape.elements
    n_window = math.prod(w.size for w in inst.window)
    select = model.computation_cost(inst.called[0]) if inst.called else Cost()
    scatter = model.computation_cost(inst.called[1]) if len(inst.called) > 1 else Cost()
    k = source * (n_window - 1)
    return Cost(select.flops * k + scatter.flops * source,
                select.transcendentals * k + scatter.transcendentals * source,
                default_bytes(inst, model))


@rule("sort")
def _sort(inst, model):
    n = inst.operands[0].shape.elements
    return model.cost(n * max(0, (n - 1).bit_length()), 0, default_bytes(inst, model))


@rule("rng", "rng-bit-generator")
def _rng(inst, model):
    return model.cost(0, sum(s.elements for s in inst.shape.leaves()), default_bytes(inst, model))


@rule("all-reduce", "all-reduce-start")
def _all_reduce(inst, model):
    out = [s for s in inst.shape.leaves()]
    return model.cost(sum(s.elements for s in out), 0,
                      sum(size(s) for s in out) + sum(size(o.shape) for o in inst.operands))


@rule("custom-call")
def _custom_call(inst, model):
    # XLA marks what it cannot see as -1; jaxcost.compiler.corrections counts known targets.
    return model.cost(-1, 0, -1)


# -- control flow and calls -------------------------------------------------------------


@rule("while")
def _while(inst, model):
    body = model.computation_cost(inst.called_by("body"))
    cond = model.computation_cost(inst.called_by("condition"))
    return body + cond


@rule("call", "async-start")
def _call(inst, model):
    return model.computation_cost(inst.called[0]) if inst.called else Cost()


@rule("conditional")
def _conditional(inst, model):
    costs = [model.computation_cost(c) for c in inst.called]
    if not costs:
        return Cost()
    return Cost(max(c.flops for c in costs), max(c.transcendentals for c in costs),
                max(c.bytes_accessed for c in costs))


# -- fusion -----------------------------------------------------------------------------

IMMEDIATE_CONSTANT_MAX_ELEMENTS = 1


def fusion_parameter_read_bytes(param: Instruction) -> float:
    """How much of a fused parameter is read: slices read their output, everything
    else shares one full read (``HloCostAnalysis::FusionParameterReadBytes``)."""
    total, seen_trivial = 0.0, False
    for user in param.users:
        op = user.opcode
        if op == "fusion":
            for idx, operand in enumerate(user.operands):
                if operand is param and user.fused_computation is not None:
                    total += fusion_parameter_read_bytes(user.fused_computation.parameters[idx])
        elif op == "slice":
            total += size(user.shape)
        elif op == "dynamic-slice":
            if user.operands and user.operands[0] is param:
                total += size(user.shape)
            elif not seen_trivial:
                seen_trivial, total = True, total + size(param.shape)
        elif op == "dynamic-update-slice":
            if not (user.operands and user.operands[0] is param) and not seen_trivial:
                seen_trivial, total = True, total + size(param.shape)
        elif op in ("broadcast", "reshape"):
            total += size(param.shape)
        elif not seen_trivial:
            seen_trivial, total = True, total + size(param.shape)
    return total


def fusion_output_bytes(inst: Instruction) -> list[tuple[Instruction, float]]:
    """Bytes written per output of a fusion, with the fused instruction producing it.
    A dynamic-update-slice root writes only its update."""
    root = inst.fused_computation.root
    if not inst.shape.is_tuple:
        if root.opcode == "dynamic-update-slice":
            return [(root, size(root.operands[1].shape))]
        return [(root, size(inst.shape))]
    out = []
    for i, sub in enumerate(inst.shape.tuple_shapes):
        producer = root.operands[i] if root.opcode == "tuple" and i < len(root.operands) else root
        if producer.opcode == "dynamic-update-slice":
            out.append((producer, size(producer.operands[1].shape)))
        else:
            out.append((producer, sum(size(s) for s in sub.leaves())))
    return out


def fusion_parameter_bytes(inst: Instruction) -> list[tuple[Instruction, float]]:
    """Bytes read per fused parameter (tuple parameters through their get-tuple-elements)."""
    out = []
    for param in inst.fused_computation.parameters:
        if not param.shape.is_tuple:
            out.append((param, fusion_parameter_read_bytes(param)))
        else:
            total = sum(fusion_parameter_read_bytes(u) for u in param.users
                        if u.opcode == "get-tuple-element")
            out.append((param, total))
    return out


def fusion_constant_bytes(inst: Instruction) -> float:
    return sum(size(i.shape) for i in inst.fused_computation.instructions
               if i.opcode == "constant" and i.shape.elements > IMMEDIATE_CONSTANT_MAX_ELEMENTS)


@rule("fusion")
def _fusion(inst, model):
    comp = inst.fused_computation
    if comp is None:
        return model.cost(0, 0, default_bytes(inst, model))
    if inst.fusion_kind == "kCustom":
        for sub in comp.instructions:
            if sub.opcode in ("gather", "scatter"):
                return RULES[sub.opcode](sub, model)
    inner = model.computation_cost(comp)
    moved = model.total([b for _, b in fusion_output_bytes(inst)] + [fusion_constant_bytes(inst)]
                        + [b for _, b in fusion_parameter_bytes(inst)])
    return Cost(inner.flops, inner.transcendentals, moved)


class CostModel:
    """Prices instructions and computations with :data:`RULES`, memoised.

    ``number`` is the arithmetic: ``float`` gives exact counts (integers are
    exact up to 2**53); ``numpy.float32`` reproduces XLA bit for bit, which
    keeps its properties in float32 and sums them in post-order (so its totals
    of large models are rounded: 12,677,750,008 true flops print as
    12,677,750,784).

    ``unknown`` counts opcodes without a rule: they are priced at the default
    bytes and zero flops, and reported, never dropped silently.
    """

    def __init__(self, number=float) -> None:
        self.num = number
        self._costs: dict[int, Cost] = {}
        self._computations: dict[str, Cost] = {}
        self.unknown: dict[str, int] = {}

    def cost(self, flops, transcendentals, bytes_accessed) -> Cost:
        return Cost(self.num(flops), self.num(transcendentals), self.num(bytes_accessed))

    def total(self, values) -> float:
        """Sum in this model's arithmetic, left to right (as XLA's ``+=``)."""
        acc = self.num(0)
        for v in values:
            acc = acc + self.num(v)
        return acc

    def instruction_cost(self, inst: Instruction) -> Cost:
        key = id(inst)
        if key not in self._costs:
            fn = RULES.get(inst.opcode)
            if fn is None:
                self.unknown[inst.opcode] = self.unknown.get(inst.opcode, 0) + 1
                cost = self.cost(0, 0, default_bytes(inst, self))
            else:
                cost = fn(inst, self)
            self._costs[key] = cost
        return self._costs[key]

    def computation_cost(self, comp: Computation | None) -> Cost:
        """Sum of the computation's instructions, visited in XLA's post order."""
        if comp is None:
            return Cost()
        if comp.name not in self._computations:
            total = Cost(self.num(0), self.num(0), self.num(0))
            for inst in post_order(comp):
                total = total + self.instruction_cost(inst)
            self._computations[comp.name] = total
        return self._computations[comp.name]


def post_order(comp: Computation) -> list[Instruction]:
    """Instructions in the order ``HloComputation::Accept`` visits them: a
    depth-first post order from each root, operands left to right; roots not
    reachable from the computation's root (unused instructions) first."""
    order: list[Instruction] = []
    state: dict[int, int] = {}  # 1 visiting, 2 visited

    def visit(start: Instruction) -> None:
        stack = [start]
        while stack:
            node = stack[-1]
            st = state.get(id(node))
            if st == 2:
                stack.pop()
                continue
            if st == 1:
                stack.pop()
                state[id(node)] = 2
                order.append(node)
                continue
            state[id(node)] = 1
            children = [c for c in node.operands if state.get(id(c)) != 2]
            stack.extend(reversed(children))

    root = comp.root
    for inst in comp.instructions:
        if not inst.users and inst is not root:
            visit(inst)
    visit(root)
    for inst in comp.instructions:  # anything the walk missed still costs
        if id(inst) not in state:
            visit(inst)
    return order
