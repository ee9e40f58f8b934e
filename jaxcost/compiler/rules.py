"""HLO opcode -> cost rules, counted the way XLA's ``HloCostAnalysis`` counts.

Each rule takes an :class:`~jaxcost.compiler.hlo.Instruction` and the
:class:`~jaxcost.compiler.model.CostModel` (to price called computations, in its
arithmetic) and returns an :class:`~jaxcost.compiler.cost.HloCost`. Adding an
opcode is adding one function decorated with ``@register("opcode")``.
Conventions (``xla/service/hlo_cost_analysis.cc``):

* bytes accessed default to the operands' sizes plus the output's size; an output
  counts every array of a tuple, a tuple operand only its index table of pointers;
* elementwise ops cost one flop per output element, or one transcendental for
  exp/log/tanh/logistic/pow/sqrt/rsqrt/... ;
* dot: 2 x output elements x contracted size; convolution: 2 x valid taps
  (taps that land on padding or on lhs-dilation holes are not counted);
* reduce: (input - output elements) x the reducer's cost; reduce-window:
  (window - 1) x output elements x the reducer's cost;
* a fusion costs what its computation costs, but moves only its parameters
  (as much of them as its slices read) and its outputs;
* a conditional costs its costliest branch, property by property;
* ``while`` counts its body and condition once (see :mod:`.corrections`);
* a custom call is unknown: -1 flops and -1 bytes (see :mod:`.custom_calls`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from jaxcost.compiler.cost import HloCost
from jaxcost.compiler.hlo import Instruction, Shape, conv_dims
from jaxcost.theory.formulas import valid_taps

Rule = Callable[[Instruction, Any], HloCost]  # (instruction, CostModel) -> cost
RULES: dict[str, Rule] = {}

FMA_FLOPS = 2


def register(*opcodes: str):
    """Register ``fn(inst, model) -> HloCost`` for the HLO opcodes named ``opcodes``."""

    def wrap(fn: Rule) -> Rule:
        for op in opcodes:
            RULES[op] = fn
        return fn

    return wrap


def size(shape: Shape) -> float:
    """Bytes an instruction writes: every array of its (possibly tuple) shape."""
    return float(shape.bytes)


def operand_size(shape: Shape, model=None) -> float:
    """Bytes an operand is read as: a tuple operand is only its index table (XLA's ShapeSize),
    padded as the ``model``'s TPU generation pads it."""
    if not shape.is_tuple:
        return float(shape.bytes)
    return float(shape.table_bytes(model.tpu_table_alignment) if model is not None else shape.index_table_bytes)


def default_bytes(inst: Instruction, model) -> float:
    """Operands read once plus the output written once."""
    return model.total([size(inst.shape)] + [operand_size(o.shape, model) for o in inst.operands])


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


@register(*TRANSCENDENTAL)
def _transcendental(inst, model):
    return model.cost(0, inst.shape.elements, default_bytes(inst, model))


@register(*ELEMENTWISE)
def _elementwise(inst, model):
    return model.cost(inst.shape.elements, 0, default_bytes(inst, model))


# -- data movement without arithmetic ---------------------------------------------------


@register("broadcast", "reshape", "dynamic-reshape", "copy", "pad", "concatenate", "reverse",
          "iota", "opt-barrier", "get-dimension-size", "set-dimension-size", "partition-id",
          "replica-id", "copy-done", "slice-done", "all-gather", "all-gather-start",
          "all-gather-done", "all-to-all", "collective-permute", "collective-permute-start",
          "collective-permute-done", "reduce-scatter", "all-reduce-done", "send", "send-done",
          "recv", "recv-done", "async-update", "async-done", "rng-get-and-update-state",
          "batch-norm-training", "batch-norm-inference", "batch-norm-grad", "infeed", "outfeed")
def _moves_data(inst, model):
    return model.cost(0, 0, default_bytes(inst, model))


@register("parameter", "constant", "get-tuple-element", "bitcast", "domain", "after-all",
          "add-dependency")
def _free(inst, model):
    return HloCost()


@register("tuple")
def _tuple(inst, model):
    """A tuple only gathers pointers: its index table is what it writes."""
    return model.cost(0, 0, inst.shape.table_bytes(model.tpu_table_alignment))


def transpose_is_bitcast(inst: Instruction) -> bool:
    """A transpose whose physical element order does not change (layouts permute along)."""
    op = inst.operands[0] if inst.operands else None
    perm = inst.int_list("dimensions")
    if op is None or op.shape.layout is None or inst.shape.layout is None:
        return False
    mapped = [perm[d] for d in inst.shape.layout if inst.shape.dims[d] != 1]
    source = [d for d in op.shape.layout if op.shape.dims[d] != 1]
    return mapped == source


@register("transpose")
def _transpose(inst, model):
    return HloCost() if transpose_is_bitcast(inst) else model.cost(0, 0, default_bytes(inst, model))


@register("slice")
def _slice(inst, model):
    return model.cost(0, 0, 2 * size(inst.shape))


@register("slice-start")
def _slice_start(inst, model):
    """XLA:TPU's asynchronous slice ``((x), slice, s32[] flag) slice-start(x)`` reads the
    slice and writes it, as ``slice``; its ``slice-done`` reads the tuple's index table and
    writes the slice again (an asynchronous slice of S bytes: 3S + 512 on TPU)."""
    return model.cost(0, 0, 2 * size(inst.shape.tuple_shapes[1]))


TPU_COPY_FLAG_BYTES = 4096  # XLA:TPU prices a copy-start's u32[]{:S(2)} flag at 4 KiB (measured)


@register("copy-start")
def _copy_start(inst, model):
    """``(destination, source, u32[] flag) copy-start(x)`` reads x and writes its tuple,
    priced by its arrays: destination, source alias and the flag (4 KiB on TPU). Its
    ``copy-done`` reads the tuple's index table and writes the destination: on TPU an
    asynchronous copy of X bytes costs 4X + 4 KiB + 512."""
    out = inst.shape.tuple_shapes
    flag = TPU_COPY_FLAG_BYTES if inst.shape.is_tpu_layout else sum(size(s) for s in out[2:])
    return model.cost(0, 0, model.total([operand_size(o.shape, model) for o in inst.operands]
                                        + [size(out[0]), size(out[1]), flag]))


@register("dynamic-slice")
def _dynamic_slice(inst, model):
    index = size(inst.operands[1].shape) if len(inst.operands) > 1 else 0
    return model.cost(0, 0, 2 * size(inst.shape) + index)


@register("dynamic-update-slice")
def _dynamic_update_slice(inst, model):
    update, index = inst.operands[1], inst.operands[2] if len(inst.operands) > 2 else None
    return model.cost(0, 0, 2 * size(update.shape) + (size(index.shape) if index else 0))


@register("gather")
def _gather(inst, model):
    return model.cost(0, 0, 2 * size(inst.shape) + size(inst.operands[1].shape))


@register("scatter")
def _scatter(inst, model):
    n = (len(inst.operands) - 1) // 2
    updates = inst.operands[n + 1:]
    indices = inst.operands[n]
    update_bytes = sum(size(u.shape) for u in updates)
    reducer = model.computation_cost(inst.called[0]) if inst.called else HloCost()
    return HloCost(reducer.flops * updates[0].shape.elements,
                   reducer.transcendentals * updates[0].shape.elements,
                   model.num(3 * update_bytes + size(indices.shape)))


# -- contractions -----------------------------------------------------------------------


def dot_flops(lhs: Shape, out: Shape, contracting: Sequence[int]) -> int:
    """2 x output elements x product of the lhs ``contracting`` dimensions
    (``HloCostAnalysis::GetDotFlops``)."""
    return FMA_FLOPS * out.elements * math.prod(lhs.dims[d] for d in contracting)


@register("dot")
def _dot(inst, model):
    flops = dot_flops(inst.operands[0].shape, inst.shape, inst.int_list("lhs_contracting_dims"))
    return model.cost(flops, 0, default_bytes(inst, model))


def conv_macs_valid(inst: Instruction, lhs: Shape, rhs: Shape, out: Shape) -> int:
    """Multiply-accumulates over valid taps, as ``HloCostAnalysis::GetConvolutionFlops``:
    Cin/groups x Cout x batch/batch_groups x the product over spatial dimensions of the
    (output, kernel) pairs that read a real input element."""
    d = conv_dims(inst.dim_labels)
    taps = 1
    for i, w in enumerate(inst.window):
        taps *= valid_taps(lhs.dims[d.lhs_spatial[i]], rhs.dims[d.rhs_spatial[i]], out.dims[d.out_spatial[i]],
                           w.stride, w.pad_lo, w.lhs_dilation, w.rhs_dilation)
    cin = lhs.dims[d.lhs_feature] // inst.feature_group_count
    batch = lhs.dims[d.lhs_batch] // inst.batch_group_count
    return cin * out.dims[d.out_feature] * batch * taps


@register("convolution")
def _convolution(inst, model):
    lhs, rhs = inst.operands[0].shape, inst.operands[1].shape
    return model.cost(FMA_FLOPS * conv_macs_valid(inst, lhs, rhs, inst.shape), 0,
                      default_bytes(inst, model))


@register("fft")
def _fft(inst, model):
    shape = inst.operands[0].shape
    shape = shape.tuple_shapes[0] if shape.is_tuple else shape
    log_factors = math.prod(int(n).bit_length() - 1 for n in inst.int_list("fft_length"))
    return model.cost(FMA_FLOPS * 4 * log_factors * shape.elements, 0, default_bytes(inst, model))


@register("triangular-solve")
def _triangular_solve(inst, model):
    a, b = inst.operands[0].shape, inst.operands[1].shape
    return model.cost(FMA_FLOPS * a.dims[-1] * b.elements, 0,
                      size(inst.shape) + size(a) / 2 + size(b))


@register("cholesky")
def _cholesky(inst, model):
    a = inst.operands[0].shape
    return model.cost((a.dims[-1] * a.elements) // 3, 0, size(a))


# -- reductions and windows -------------------------------------------------------------


def _applied(inst: Instruction, model, times: float) -> HloCost:
    """``times`` applications of the called reducer, with the default bytes."""
    sub = model.computation_cost(inst.called[0]) if inst.called else HloCost()
    return HloCost(sub.flops * times, sub.transcendentals * times, default_bytes(inst, model))


@register("reduce")
def _reduce(inst, model):
    return _applied(inst, model, inst.operands[0].shape.elements - output_elements(inst))


@register("map")
def _map(inst, model):
    return _applied(inst, model, inst.shape.elements)


@register("reduce-window")
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


@register("select-and-scatter")
def _select_and_scatter(inst, model):
    source = inst.operands[1].shape.elements
    n_window = math.prod(w.size for w in inst.window)
    select = model.computation_cost(inst.called[0]) if inst.called else HloCost()
    scatter = model.computation_cost(inst.called[1]) if len(inst.called) > 1 else HloCost()
    k = source * (n_window - 1)
    return HloCost(select.flops * k + scatter.flops * source,
                   select.transcendentals * k + scatter.transcendentals * source,
                   default_bytes(inst, model))


@register("sort")
def _sort(inst, model):
    n = inst.operands[0].shape.elements
    return model.cost(n * max(0, (n - 1).bit_length()), 0, default_bytes(inst, model))


@register("rng", "rng-bit-generator")
def _rng(inst, model):
    return model.cost(0, sum(s.elements for s in inst.shape.leaves()), default_bytes(inst, model))


@register("all-reduce", "all-reduce-start")
def _all_reduce(inst, model):
    out = inst.shape.leaves()
    return model.cost(sum(s.elements for s in out), 0,
                      sum(size(s) for s in out) + sum(operand_size(o.shape, model) for o in inst.operands))


@register("custom-call")
def _custom_call(inst, model):
    """Unknown to XLA whatever its target; jaxcost's count is :mod:`.custom_calls`."""
    return model.cost(-1, 0, -1)


# -- control flow and calls -------------------------------------------------------------


@register("while")
def _while(inst, model):
    body = model.computation_cost(inst.called_by("body"))
    cond = model.computation_cost(inst.called_by("condition"))
    return body + cond


@register("call", "async-start")
def _call(inst, model):
    return model.computation_cost(inst.called[0]) if inst.called else HloCost()


@register("conditional")
def _conditional(inst, model):
    return HloCost.branch_max([model.computation_cost(c) for c in inst.called])


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
            out.append((producer, size(sub)))
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


@register("fusion")
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
    return HloCost(inner.flops, inner.transcendentals, moved)
