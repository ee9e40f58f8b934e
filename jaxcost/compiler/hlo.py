"""A typed graph of HLO text: modules, computations, instructions, shapes.

Parses what ``Compiled.as_text()`` (optimized, ``%``-prefixed names) and
``Lowered.as_text(dialect="hlo", debug_info=True)`` (unoptimized) print::

    %conv.1 = f32[8,56,56,64]{3,2,1,0} convolution(%x, %w), window={size=3x3 pad=1_1x1_1},
        dim_labels=b01f_01io->b01f, metadata={op_name="jit(f)/Net/conv/conv_general_dilated"}

Only the structure is parsed; what an instruction costs is the business of
:mod:`jaxcost.compiler.rules`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from functools import cached_property

# Bytes per element, as XLA's ShapeUtil::ByteSizeOfPrimitiveType.
DTYPE_BYTES = {
    "pred": 1, "s2": 1, "u2": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1,
    "s16": 2, "u16": 2, "f16": 2, "bf16": 2,
    "s32": 4, "u32": 4, "f32": 4,
    "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16,
    "f8e4m3fn": 1, "f8e5m2": 1, "f8e4m3fnuz": 1, "f8e5m2fnuz": 1, "f8e4m3b11fnuz": 1,
    "f8e4m3": 1, "f8e3m4": 1, "f8e8m0fnu": 1, "f4e2m1fn": 1,
    "token": 0,
}
POINTER_BYTES = 8  # a tuple is an index table of pointers (CPU/GPU shape-size function)
# XLA:TPU's tuple index table: 4-byte entries padded to a multiple of 512 bytes on v4 and
# v5e (2- to 128-element tuples cost 512 bytes, 130 elements 1024), of 32 bytes on v5p and v6e.
TPU_POINTER_BYTES, TPU_TABLE_ALIGNMENT = 4, 512


class HloParseError(ValueError):
    """HLO text that does not follow the grammar the parser knows."""


@dataclasses.dataclass(frozen=True)
class Shape:
    """An array shape ``dtype[dims]{layout}`` or a tuple of shapes.

    A TPU layout also carries tiles and a memory space,
    ``bf16[1024,1024]{1,0:T(8,128)(2,1)S(1)}``: ``tile`` is the first tile, (8, 128);
    ``memory_space`` the ``S(n)``, 0 (HBM) when absent (TPU: 1 VMEM, 2 SMEM).
    """

    dtype: str = ""
    dims: tuple[int, ...] = ()
    tuple_shapes: tuple[Shape, ...] | None = None
    layout: tuple[int, ...] | None = dataclasses.field(default=None, compare=False)
    tile: tuple[int, ...] = dataclasses.field(default=(), compare=False)
    memory_space: int = dataclasses.field(default=0, compare=False)

    @property
    def is_tuple(self) -> bool:
        return self.tuple_shapes is not None

    @property
    def elements(self) -> int:
        """Elements of an array shape; of the first element for a tuple (as XLA's reduce)."""
        if self.is_tuple:
            return 0
        return math.prod(self.dims)

    @property
    def stored_elements(self) -> int:
        """Elements as stored: with a tiled layout each minor dimension is padded up to a
        multiple of the first tile's size (dimensions the shape lacks count as 1), as
        XLA's ``ShapeUtil::ArraySize``; later tiles only reorder within the first.
        ``f32[3,5]{1,0:T(4,128)}`` stores 4 x 128 = 512 elements."""
        if self.is_tuple or not self.tile or self.layout is None:
            return self.elements
        minor = [self.dims[d] for d in self.layout] + [1] * max(0, len(self.tile) - len(self.dims))
        padded = [-(-n // t) * t for n, t in zip(minor, reversed(self.tile))]
        return math.prod(padded) * math.prod(minor[len(self.tile):])

    @property
    def bytes(self) -> int:
        """Bytes of its arrays as stored (tile padding included), summed over a tuple's leaves."""
        if self.is_tuple:
            return sum(s.bytes for s in self.tuple_shapes)
        return self.stored_elements * DTYPE_BYTES.get(self.dtype, 0)

    @property
    def is_tpu_layout(self) -> bool:
        """Does the shape (any leaf of a tuple) carry a TPU tile or memory space?"""
        return any(leaf.tile or leaf.memory_space for leaf in self.leaves())

    @property
    def index_table_bytes(self) -> int:
        """A tuple's table of pointers to its elements (XLA's ``ByteSizeOfTupleIndexTable``),
        see :meth:`table_bytes`; TPU tables padded as on v4/v5e."""
        return self.table_bytes()

    def table_bytes(self, tpu_alignment: int = TPU_TABLE_ALIGNMENT) -> int:
        """A tuple's index table: 8 bytes an element on CPU/GPU; with TPU layouts 4 bytes
        an element padded to ``tpu_alignment`` (measured: 512 on v4 and v5e, 32 on v5p and v6e)."""
        n = len(self.tuple_shapes or ())
        if n and self.is_tpu_layout:
            return -(-TPU_POINTER_BYTES * n // tpu_alignment) * tpu_alignment
        return POINTER_BYTES * n

    def leaves(self) -> list[Shape]:
        if not self.is_tuple:
            return [self]
        return [leaf for s in self.tuple_shapes for leaf in s.leaves()]

    def __str__(self) -> str:
        if self.is_tuple:
            return "(" + ", ".join(map(str, self.tuple_shapes)) + ")"
        return f"{self.dtype}[{','.join(map(str, self.dims))}]"


@dataclasses.dataclass(frozen=True)
class WindowDim:
    size: int = 1
    stride: int = 1
    pad_lo: int = 0
    pad_hi: int = 0
    lhs_dilation: int = 1
    rhs_dilation: int = 1
    rhs_reversal: int = 0  # 1: the kernel is read reversed along this dimension


@dataclasses.dataclass(frozen=True)
class ConvDims:
    """Dimension numbers of a convolution, from ``dim_labels=b01f_01io->b01f``: the batch,
    feature and spatial dimensions of the input (lhs), the kernel (rhs) and the output."""

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
    """Parse ``dim_labels`` (``b01f_01io->b01f``); spatial dimensions in the order of their digits."""
    lhs, rest = labels.split("_", 1)
    rhs, out = rest.split("->")

    def spatial(spec):
        digits = sorted((c for c in spec if c.isdigit()), key=int)
        return tuple(spec.index(c) for c in digits)

    return ConvDims(lhs.index("b"), lhs.index("f"), spatial(lhs), rhs.index("i"), rhs.index("o"),
                    spatial(rhs), out.index("b"), out.index("f"), spatial(out))


@dataclasses.dataclass
class Instruction:
    """One HLO instruction. ``attrs`` keeps every attribute's raw text."""

    name: str
    opcode: str
    shape: Shape
    operand_names: list[str]
    attrs: dict[str, str]
    is_root: bool = False
    computation: Computation | None = dataclasses.field(default=None, repr=False)
    operands: list[Instruction] = dataclasses.field(default_factory=list, repr=False)
    users: list[Instruction] = dataclasses.field(default_factory=list, repr=False)
    called: list[Computation] = dataclasses.field(default_factory=list, repr=False)

    # -- typed views of common attributes ------------------------------------------------
    @cached_property
    def op_name(self) -> str:
        meta = self.attrs.get("metadata", "")
        m = re.search(r'op_name="((?:[^"\\]|\\.)*)"', meta)
        return m.group(1) if m else ""

    @cached_property
    def backend_config(self) -> dict:
        raw = self.attrs.get("backend_config")
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return {"raw": raw}
        return value if isinstance(value, dict) else {"value": value}

    @cached_property
    def window(self) -> list[WindowDim]:
        return parse_window(self.attrs.get("window", ""))

    @property
    def dim_labels(self) -> str:
        return self.attrs.get("dim_labels", "")

    def int_attr(self, key: str, default: int = 1) -> int:
        raw = self.attrs.get(key)
        return int(raw) if raw is not None else default

    def int_list(self, key: str) -> list[int]:
        raw = self.attrs.get(key, "").strip("{}")
        return [int(x) for x in raw.split(",") if x.strip()]

    @property
    def feature_group_count(self) -> int:
        return self.int_attr("feature_group_count")

    @property
    def batch_group_count(self) -> int:
        return self.int_attr("batch_group_count")

    @property
    def fusion_kind(self) -> str:
        return self.attrs.get("kind", "")

    @property
    def custom_call_target(self) -> str:
        return self.attrs.get("custom_call_target", "").strip('"')

    def called_by(self, key: str) -> Computation | None:
        """The computation named by attribute ``key`` (``body``, ``condition``, ...)."""
        name = self.attrs.get(key, "").lstrip("%")
        return next((c for c in self.called if c.name == name), None)

    @property
    def fused_computation(self) -> Computation | None:
        return self.called[0] if self.opcode == "fusion" and self.called else None

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other) -> bool:
        return self is other


@dataclasses.dataclass
class Computation:
    name: str
    instructions: list[Instruction]
    is_entry: bool = False

    @property
    def root(self) -> Instruction:
        for inst in self.instructions:
            if inst.is_root:
                return inst
        return self.instructions[-1]

    @property
    def parameters(self) -> list[Instruction]:
        params = [i for i in self.instructions if i.opcode == "parameter"]
        return sorted(params, key=lambda i: int(i.attrs.get("_arg", "0")))


@dataclasses.dataclass
class Module:
    name: str
    computations: dict[str, Computation]
    entry: Computation

    def instructions(self):
        for comp in self.computations.values():
            yield from comp.instructions


# --------------------------------------------------------------------------------------
# Lexing helpers


# A string literal (skipped whole, in C) or one bracket/comma character.
_SPECIAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[(){}\[\],]')
_OPEN = "({["


def _scan(text: str, start: int = 0):
    """Yield ``(index, char, depth)`` for the bracket/comma characters of ``text``
    outside string literals; ``depth`` is the nesting before the character."""
    depth = 0
    for m in _SPECIAL.finditer(text, start):
        ch = m.group()
        if ch in _OPEN:
            yield m.start(), ch, depth
            depth += 1
        elif ch in ")}]":
            depth -= 1
            yield m.start(), ch, depth
        elif ch == ",":
            yield m.start(), ch, depth


def _match(text: str, start: int) -> int:
    """Index just past the bracket group opening at ``text[start]`` (quotes respected)."""
    for i, ch, depth in _scan(text, start):
        if depth == 0 and ch in ")}]":
            return i + 1
    raise HloParseError(f"unbalanced brackets in: {text[start:start + 80]!r}")


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` on commas outside brackets and quotes."""
    parts, last = [], 0
    for i, ch, depth in _scan(text):
        if ch == sep and depth == 0:
            parts.append(text[last:i].strip())
            last = i + 1
    tail = text[last:].strip()
    if tail:
        parts.append(tail)
    return parts


_ARRAY = re.compile(r"([a-z][a-z0-9]*)\[([^\]]*)\](\{[^}]*\})?")
_TILE = re.compile(r"T\(([\d,]+)\)")  # a layout's first tile: T(8,128)(2,1) -> (8, 128)
_SPACE = re.compile(r"S\((\d+)\)")    # a layout's memory space


def parse_shape(text: str, pos: int = 0) -> tuple[Shape, int]:
    """Parse a shape starting at ``text[pos]``; return it and the index after it."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if text.startswith("/*", pos):  # tuple index comments: /*index=5*/
        pos = text.index("*/", pos) + 2
    if text.startswith("(", pos):
        end = _match(text, pos)
        inner = text[pos + 1:end - 1]
        shapes = tuple(parse_shape(part)[0] for part in _split_top(inner)) if inner.strip() else ()
        return Shape(tuple_shapes=shapes), end
    m = _ARRAY.match(text, pos)
    if not m:
        if text.startswith("token[]", pos):
            return Shape("token", ()), pos + 7
        raise HloParseError(f"cannot parse a shape at: {text[pos:pos + 60]!r}")
    dims = tuple(int(d.lstrip("<=")) for d in m.group(2).split(",") if d.strip())
    layout, tile, space = None, (), 0
    if m.group(3):
        minor_to_major, _, extra = m.group(3)[1:-1].partition(":")
        layout = tuple(int(x) for x in minor_to_major.split(",") if x.strip().isdigit())
        if tm := _TILE.search(extra):
            tile = tuple(int(x) for x in tm.group(1).split(","))
        if sm := _SPACE.search(extra):
            space = int(sm.group(1))
    return Shape(m.group(1), dims, layout=layout, tile=tile, memory_space=space), m.end()


_WIN_KEYS = {"size": "size", "stride": "stride", "lhs_dilate": "lhs_dilation",
             "rhs_dilate": "rhs_dilation", "rhs_reversal": "rhs_reversal"}


def parse_window(text: str) -> list[WindowDim]:
    """``{size=3x3 stride=2x2 pad=0_1x0_1 lhs_dilate=.. rhs_dilate=.. rhs_reversal=..}`` -> per-dim windows."""
    text = text.strip().strip("{}").strip()
    if not text:
        return []
    fields: dict[str, list] = {}
    for item in text.split():
        key, _, value = item.partition("=")
        if key == "pad":
            fields["pad"] = [tuple(int(v) for v in p.split("_")) for p in value.split("x")]
        elif key in _WIN_KEYS:
            fields[_WIN_KEYS[key]] = [int(v) for v in value.split("x")]
    rank = len(fields.get("size", fields.get("pad", [])))
    dims = []
    for d in range(rank):
        kw = {k: v[d] for k, v in fields.items() if k != "pad"}
        if "pad" in fields:
            kw["pad_lo"], kw["pad_hi"] = fields["pad"][d]
        dims.append(WindowDim(**kw))
    return dims


# --------------------------------------------------------------------------------------
# Parsing

_COMMENT = re.compile(r"/\*.*?\*/")
_INST = re.compile(r"^\s*(ROOT\s+)?%?([^\s=]+)\s*=\s*")
_OPCODE = re.compile(r"\s*([a-z][\w\-]*)\(")
_HEADER = re.compile(r"^\s*(ENTRY\s+)?%?([^\s(]+)\s*(\(.*\))?.*\{\s*$")
_CALL_ATTRS = ("calls", "to_apply", "body", "condition", "branch_computations",
               "true_computation", "false_computation", "scatter", "select")


def _parse_instruction(line: str) -> Instruction:
    m = _INST.match(line)
    if not m:
        raise HloParseError(f"not an instruction: {line.strip()[:100]!r}")
    shape, pos = parse_shape(line, m.end())
    om = _OPCODE.match(line, pos)
    if not om:
        raise HloParseError(f"no opcode in: {line.strip()[:100]!r}")
    opcode = om.group(1)
    close = _match(line, om.end() - 1)
    operand_text = _COMMENT.sub("", line[om.end():close - 1])  # long lists carry /*index=5*/
    operands = []
    for part in _split_top(operand_text):
        # newer printers may put the shape first: "f32[8]{0} %x"; constants hold literals.
        token = part.split()[-1] if part else part
        if token.startswith("%"):
            operands.append(token[1:])
        elif opcode not in ("constant", "parameter", "iota") and part:
            operands.append(token)
    attrs: dict[str, str] = {}
    if opcode == "parameter":
        attrs["_arg"] = operand_text.strip()
    elif opcode == "constant":
        attrs["_literal"] = operand_text.strip()
    for item in _split_top(line[close:].lstrip(", ")):
        key, sep, value = item.partition("=")
        if sep:
            attrs[key.strip()] = value.strip()
    return Instruction(m.group(2), opcode, shape, operands, attrs, is_root=bool(m.group(1)))


def parse_module(text: str) -> Module:
    """Parse HLO module text into a :class:`Module` with resolved operands and calls."""
    name = "module"
    computations: dict[str, Computation] = {}
    entry = None
    current: list[Instruction] | None = None
    comp_name, comp_entry = "", False
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if current is None:
            if line.startswith("HloModule"):
                name = line.split()[1].rstrip(",")
                continue
            if line.endswith("{") and "=" not in line.split("(")[0]:
                hm = _HEADER.match(line)
                if hm:
                    current, comp_name, comp_entry = [], hm.group(2), bool(hm.group(1))
            continue
        if line.strip() == "}":
            comp = Computation(comp_name, current, comp_entry)
            computations[comp_name] = comp
            if comp_entry:
                entry = comp
            current = None
            continue
        inst = _parse_instruction(line)
        current.append(inst)
    if entry is None:
        if not computations:
            raise HloParseError("no computation found in HLO text")
        entry = list(computations.values())[-1]
        entry.is_entry = True
    _link(computations)
    return Module(name, computations, entry)


def _link(computations: dict[str, Computation]) -> None:
    for comp in computations.values():
        by_name = {i.name: i for i in comp.instructions}
        for inst in comp.instructions:
            inst.computation = comp
            inst.operands = [by_name[n] for n in inst.operand_names if n in by_name]
            for op in inst.operands:
                op.users.append(inst)
            for key in _CALL_ATTRS:
                raw = inst.attrs.get(key)
                if raw:
                    for callee in raw.strip("{}").split(","):
                        callee = callee.strip().lstrip("%")
                        if callee in computations:
                            inst.called.append(computations[callee])
