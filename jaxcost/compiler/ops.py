"""The priced HLO graph: one :class:`Op` per top-level instruction or fusion."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable

import numpy as np

from jaxcost.compiler.cost import HloCost
from jaxcost.compiler.hlo import TPU_TABLE_ALIGNMENT, Instruction, Module, parse_module
from jaxcost.compiler.model import CostModel
from jaxcost.compiler.rules import fusion_output_bytes, fusion_parameter_bytes
from jaxcost.names import BACKWARD, FORWARD, PLAIN, RECOMPUTE, OpName, resolve, split_op_name

_SKIP = {"parameter", "constant", "get-tuple-element", "bitcast"}


@dataclasses.dataclass(frozen=True)
class InnerOp:
    """An instruction inside a fusion (or a called computation), with its own layer."""

    name: str
    opcode: str
    layer: str
    direction: str
    flops: float
    transcendentals: float


@dataclasses.dataclass(frozen=True)
class Op:
    """A top-level instruction of the entry computation, priced as XLA prices it.

    ``layers`` are the layer paths of the instructions it holds (one for a plain
    instruction, several for a fusion); ``layer_bytes`` splits its bytes among
    them: a fused parameter's read goes to the layer of its first consumer, an
    output's write to the layer of the instruction producing it.
    """

    name: str
    opcode: str
    shape: str
    flops: float
    transcendentals: float
    bytes_accessed: float
    layer: str
    direction: str
    fusion_kind: str = ""
    custom_call_target: str = ""
    inner: tuple[InnerOp, ...] = dataclasses.field(default=(), repr=False)
    layer_bytes: tuple[tuple[str, float], ...] = dataclasses.field(default=(), repr=False)
    instruction: Instruction | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def layers(self) -> tuple[str, ...]:
        seen = dict.fromkeys(i.layer for i in self.inner) if self.inner else {self.layer: None}
        return tuple(seen)

    @property
    def is_fusion(self) -> bool:
        return self.opcode == "fusion"

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes_accessed if self.bytes_accessed > 0 else float("inf")


@dataclasses.dataclass
class ModuleCost:
    """A parsed module with every top-level op priced.

    ``total`` is the exact sum of ``ops``; ``xla_total`` is the same sum done
    XLA's way (float32, post order), which equals ``cost_analysis()`` bit for bit.
    """

    module: Module
    ops: list[Op]
    total: HloCost
    unknown: dict[str, int]
    text: str = dataclasses.field(repr=False, default="")
    model: CostModel | None = dataclasses.field(repr=False, default=None)

    def __repr__(self) -> str:
        t = self.total
        return (f"ModuleCost({len(self.ops)} ops, flops={t.flops:,.0f}, "
                f"transcendentals={t.transcendentals:,.0f}, bytes={t.bytes_accessed:,.0f}, "
                f"unknown={dict(self.unknown)})")

    @functools.cached_property
    def xla_total(self) -> HloCost:
        """The module total computed XLA's way: float32 properties summed in post order."""
        alignment = self.model.tpu_table_alignment if self.model else TPU_TABLE_ALIGNMENT
        total = CostModel(np.float32, alignment).computation_cost(self.module.entry)
        return HloCost(float(total.flops), float(total.transcendentals), float(total.bytes_accessed))

    @property
    def fusions(self) -> list[Op]:
        return [op for op in self.ops if op.is_fusion]

    def rounding_bound(self, value: float) -> float:
        """Worst-case float32 rounding of XLA's sum of ``value`` over this module:
        one half-ulp per addition, ``n * 2**-24 * value`` with n the instruction count."""
        n = sum(len(c.instructions) for c in self.module.computations.values())
        return n * 2.0 ** -24 * abs(value)

    def agrees_with(self, flops: float | None, transcendentals: float | None) -> bool:
        """Do jaxcost's exact totals equal XLA's up to XLA's float32 rounding?"""
        if flops is None or transcendentals is None:
            return True
        return (abs(self.total.flops - flops) <= self.rounding_bound(flops)
                and abs(self.total.transcendentals - transcendentals) <= self.rounding_bound(transcendentals))


def _inner_ops(inst: Instruction, model: CostModel, fallback: str, direction: str) -> list[InnerOp]:
    out = []
    for comp in inst.called:
        for sub in comp.instructions:
            if sub.opcode in _SKIP:
                continue
            cost = model.instruction_cost(sub)
            name = split_op_name(sub.op_name) if sub.op_name else None
            nested = _inner_ops(sub, model, name.path if name else fallback,
                                name.direction if name else direction) if sub.called else []
            if nested and sub.opcode in ("fusion", "call", "while", "conditional", "async-start"):
                out.extend(nested)
                continue
            if name is None and sub.opcode in ("convolution", "dot"):
                # a contraction XLA created inside a kernel: backward if it computes from gradients
                name = OpName(fallback, "", _producer_direction(sub, inst) or direction)
            out.append(InnerOp(sub.name, sub.opcode, name.path if name else fallback,
                               name.direction if name else direction, cost.flops,
                               cost.transcendentals))
    return out


def _producers(inst: Instruction, outer: Instruction | None = None) -> list[Instruction]:
    """What ``inst`` reads: its operands, a fused parameter standing for the operand of the
    fusion ``outer`` it holds the place of."""
    out = []
    for o in inst.operands:
        if o.opcode == "parameter" and outer is not None and o.computation in outer.called:
            n = int(o.attrs.get("_arg", "0"))
            if n < len(outer.operands):
                out.append(outer.operands[n])
        elif o.opcode != "parameter":
            out.append(o)
    return out


def _producer_direction(inst: Instruction, outer: Instruction | None = None) -> str | None:
    """The direction of the values ``inst`` is computed from (the named instructions within a
    few steps, through a fusion's parameters): ``backward`` / ``recompute`` if any is, else
    ``forward`` if any is, else None."""
    found = set()
    for x in _nearby(inst, lambda i: _producers(i, outer if i.computation is not None and outer is not None
                                                 and i.computation in outer.called else None)):
        if x.op_name:
            found.add(split_op_name(x.op_name).direction)
    for d in (BACKWARD, RECOMPUTE, FORWARD):
        if d in found:
            return d
    return None


def _first_layer(inst: Instruction, fallback: str) -> str:
    """Layer of the first user that names one (breadth-first through unnamed users)."""
    frontier, seen = list(inst.users), set()
    while frontier:
        user = frontier.pop(0)
        if id(user) in seen:
            continue
        seen.add(id(user))
        if user.op_name:
            return split_op_name(user.op_name).path
        frontier.extend(user.users)
    return fallback


def _layer_bytes(inst: Instruction, cost: HloCost, layer: str) -> tuple[tuple[str, float], ...]:
    if inst.opcode != "fusion" or inst.fused_computation is None or cost.bytes_accessed <= 0:
        return ((layer, cost.bytes_accessed),)
    split: dict[str, float] = {}
    parts = [(_first_layer(p, layer), b) for p, b in fusion_parameter_bytes(inst)]
    parts += [(split_op_name(r.op_name).path if r.op_name else layer, b)
              for r, b in fusion_output_bytes(inst)]
    for name, b in parts:
        split[name] = split.get(name, 0.0) + b
    rest = cost.bytes_accessed - sum(split.values())  # large fused constants
    if rest:
        split[layer] = split.get(layer, 0.0) + rest
    return tuple(split.items())


def parameter_layers(layers: Iterable[str]) -> Callable[[str], str]:
    """A function naming the layer an entry parameter belongs to, from its name.

    JAX names parameters after their argument paths with every non-identifier
    character replaced (``state['layer4'][1]['conv2']['kernel'].value`` becomes
    ``state__layer4___1___conv2____kernel___value``): the longest layer path
    whose words appear in a row among the parameter name's words wins.
    """
    words = {layer: tuple(w for w in re.split(r"[^0-9A-Za-z]+", layer) if w) for layer in layers}
    ranked = sorted((w, layer) for layer, w in words.items() if w)
    ranked.sort(key=lambda item: -len(item[0]))

    def layer_of(name: str) -> str:
        have = tuple(w for w in re.split(r"[^0-9A-Za-z]+", name) if w)
        for w, layer in ranked:
            n = len(w)
            if any(have[i:i + n] == w for i in range(len(have) - n + 1)):
                return layer
        return ""

    return layer_of


def _parameter_layer(inst: Instruction, layer_of: Callable[[str], str] | None) -> str:
    """Layer of the first entry parameter ``inst`` reads (for instructions XLA created
    without metadata: a matmul rewritten from a dot, a kernel flip)."""
    if layer_of is None:
        return ""
    for operand in inst.operands:
        if operand.opcode == "parameter" and (layer := layer_of(operand.name)):
            return layer
    return ""


def _nearby(inst: Instruction, step: Callable[[Instruction], list[Instruction]], depth: int = 4):
    """Instructions reached from ``inst`` by ``step`` (operands or users), nearest first."""
    frontier, seen = list(step(inst)), {id(inst)}
    for _ in range(depth):
        nxt = []
        for x in frontier:
            if id(x) in seen:
                continue
            seen.add(id(x))
            yield x
            nxt += step(x)
        frontier = nxt


def _unnamed(inst: Instruction, layer_of: Callable[[str], str] | None) -> OpName:
    """Where an instruction XLA created without metadata belongs (a strided conv's gradient
    rewritten with window dilation, a copy, a transpose): its direction is that of the values
    it is computed from (a value computed from gradients is backward work); its layer is that
    of a parameter it reads, else of a parameter its consumers read with it (a weight gradient
    meets its parameter in the optimizer's update)."""
    inner = [split_op_name(i.op_name).direction for c in inst.called for i in c.instructions if i.op_name]
    direction = _producer_direction(inst) or next((d for d in inner if d in (BACKWARD, RECOMPUTE)), PLAIN)
    layer = _parameter_layer(inst, layer_of)
    if not layer and layer_of is not None:
        layer = next((found for user in _nearby(inst, lambda i: i.users, depth=2)
                      if (found := _parameter_layer(user, layer_of))), "")
    return OpName(layer, "", direction)


def price_module(text: str, layer_of_parameter: Callable[[str], str] | None = None, *,
                 tpu_table_alignment: int = TPU_TABLE_ALIGNMENT) -> ModuleCost:
    """Parse HLO text and price every top-level instruction of its entry computation.

    Instructions without ``op_name`` metadata are attributed to the layer of an entry
    parameter they read, when ``layer_of_parameter`` (see :func:`parameter_layers`) names one.
    ``tpu_table_alignment``: how the TPU generation the text was compiled for pads tuple
    index tables (``Chip.tuple_table_alignment``; the HLO text does not say).
    """
    module = parse_module(text)
    model = CostModel(tpu_table_alignment=tpu_table_alignment)
    ops, total = [], HloCost()
    for inst in module.entry.instructions:
        cost = model.instruction_cost(inst)
        total = total + cost
        if inst.opcode in _SKIP and cost == HloCost():
            continue
        name = split_op_name(inst.op_name) if inst.op_name else _unnamed(inst, layer_of_parameter)
        if ".remat" in inst.name:  # cloned by XLA's rematerialization pass
            name = dataclasses.replace(name, direction=RECOMPUTE)
        ops.append(_op(inst, cost, model, name))
    return ModuleCost(module, _resolve_directions(ops), total, dict(model.unknown), text, model)


def _op(inst: Instruction, cost: HloCost, model: CostModel, name: OpName) -> Op:
    inner = tuple(_inner_ops(inst, model, name.path, name.direction)) if inst.called else ()
    return Op(inst.name, inst.opcode, str(inst.shape), cost.flops, cost.transcendentals, cost.bytes_accessed,
              name.path, name.direction, inst.fusion_kind if inst.opcode == "fusion" else "",
              inst.custom_call_target, inner, _layer_bytes(inst, cost, name.path), inst)


def body_ops(loop: Op) -> list[Op]:
    """The instructions of a while loop's body (``loop``: a ``while`` op), each priced as a
    top-level op is (for one trip: XLA prices the body once), in the loop's layer and direction
    where they name none. [] for an op that is not a while loop with a body."""
    body = loop.instruction.called_by("body") if loop.opcode == "while" and loop.instruction is not None else None
    if body is None:
        return []
    model = CostModel()
    ops = []
    for inst in body.instructions:
        cost = model.instruction_cost(inst)
        if inst.opcode in _SKIP and cost == HloCost():
            continue
        ops.append(_op(inst, cost, model, split_op_name(inst.op_name) if inst.op_name
                       else OpName(loop.layer, "", loop.direction)))
    return ops


def _resolve_directions(ops: list[Op]) -> list[Op]:
    """Settle unwrapped name stacks (:func:`jaxcost.names.resolve`): the optimizer update of a
    module with a backward pass, the forward pass of any other."""
    marked = (BACKWARD, RECOMPUTE)
    differentiated = any(op.direction in marked or any(i.direction in marked for i in op.inner) for op in ops)

    def fix(x):
        d = resolve(x.direction, differentiated)
        return x if d == x.direction else dataclasses.replace(x, direction=d)

    return [dataclasses.replace(fix(op), inner=tuple(fix(i) for i in op.inner)) if op.inner else fix(op)
            for op in ops]
