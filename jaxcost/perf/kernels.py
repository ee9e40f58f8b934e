"""Kernel classes: what kind of compute an op of the optimized HLO does, and at what size.

A roofline with one peak assumes every kernel reaches the matmul peak. Compilers do
not get there on every kernel: on XLA:CPU (jax 0.10, 2 cores) a 3x3 conv with 128
output channels runs near the matmul peak, one with 32 at half of it, a grouped conv
at a tenth and a depthwise conv at under 1 % -- so a roofline with one peak predicts
MobileNet ten times too fast. Each convolution and dot (fusions included) is
classified:

    dot        dot / matmul; also a 1x1 convolution on a map of one pixel (:func:`is_matmul_conv`)
    conv       convolution, one feature group, spatial window larger than 1x1
    conv1x1    convolution, one feature group, 1x1 window, a map of several pixels
    grouped    convolution, 1 < groups, several input channels per group
    depthwise  convolution, one input channel per group
    window     reduce-window (max and average pooling)
    attention  one kernel running ``softmax(q k^T) v``: two dots, the second fed by the first
               through an exponential (XLA:CPU fuses attention so from a few images up)
    other      the rest of the op's flops and transcendentals (elementwise, reductions)

and sized as the ``groups`` matrix products ``(M x K) @ (K x N)`` it implements, with the
spatial window's taps (:func:`kernel_features`; a reduce-window: its outputs and taps; an
attention kernel: its first dot, ``q k^T``), and the kind of kernel that runs it
(:func:`kernel_impl`; a convolution that pads no side is a kind of its own, :func:`is_unpadded`). An attention kernel runs several times slower than its two dots apart
would (XLA:CPU, jax 0.10: 8-45 GFLOP/s where a dot of that size reaches 100-200), the slower
the more heads and images it holds; its rate is its own class's. A reduce-window is no matmul, but it
is no stream either: XLA:CPU's own loop (jax 0.10) runs a 3x3 max-pool at ~0.4 ns per output
and tap, 2-5 GB/s, ten times slower than its bytes at memory bandwidth would say, while
YNNPACK takes 2x2 stride-2 pools at 20-40 GB/s. :mod:`jaxcost.perf.calibrate` times synthetic kernels of each class
on the device; :mod:`jaxcost.perf.rates` fits how fast each class runs at each size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from jaxcost.compiler.hlo import Instruction, conv_dims

CLASSES = ("dot", "conv", "conv1x1", "grouped", "depthwise", "window", "attention", "other")
# Instructions that launch no kernel of their own.
NO_KERNEL = frozenset({"parameter", "constant", "get-tuple-element", "tuple", "bitcast"})


# Instructions whose called computations hold instructions of their own (a reduce's or a
# reduce-window's reducer does not: it is applied inside the one instruction).
CALLS_KERNELS = frozenset({"fusion", "while", "call", "conditional", "async-start"})
# Instructions priced by a class of their own (the rest of an op's work is ``other``).
CLASSED = frozenset({"convolution", "dot", "reduce-window"})
MATMULS = frozenset({"convolution", "dot"})


def is_matmul_conv(inst: Instruction) -> bool:
    """Whether ``inst`` is a convolution that is a plain matmul: one feature group, a 1x1 window
    and an output map of one pixel -- the batch's rows times the weights (squeeze-and-excitation
    blocks, 1x1 convs after a global pool, Keras's small images deep in a network). It is
    priced as a dot: the 1x1-conv calibration kernels have maps of 3x3 pixels and more, and
    their law, extrapolated to one pixel, priced random such convs (batch 1-8, 32-2900 input
    and 8-2300 output channels) at 2.3-2.6x their measured time (geometric mean), the dot law
    at 1.1-1.2x (median error 140-170 % against 27-30 %; 2-core x86 VM, jax 0.10:
    ``benchmarks/results/matmul_convs.md``)."""
    if inst.opcode != "convolution" or inst.feature_group_count != 1 or any(w.size != 1 for w in inst.window):
        return False
    return math.prod(inst.shape.dims[i] for i in conv_dims(inst.dim_labels).out_spatial) == 1


def conv_class(inst: Instruction) -> str:
    """The class of one ``convolution`` instruction (see the module docstring)."""
    groups = inst.feature_group_count
    if groups > 1:
        rhs = inst.operands[1].shape
        in_per_group = rhs.dims[conv_dims(inst.dim_labels).rhs_in]
        return "depthwise" if in_per_group == 1 else "grouped"
    if is_matmul_conv(inst):
        return "dot"
    return "conv1x1" if all(w.size == 1 for w in inst.window) else "conv"


def gemm_dims(inst: Instruction) -> tuple[int, int, int, int]:
    """``(M, K, N, groups)``: a ``convolution`` or ``dot`` is ``groups`` independent matrix
    products ``(M x K) @ (K x N)`` -- a conv's feature groups (M its output positions, K the
    taps x input channels of a group, N the output channels of a group), a dot's batch
    dimensions (M its rows, N its columns per batch element)."""
    out = inst.shape
    if inst.opcode == "dot":
        lhs, rhs = inst.operands[0].shape, inst.operands[1].shape
        k = math.prod(lhs.dims[d] for d in inst.int_list("lhs_contracting_dims"))
        batch = math.prod(lhs.dims[d] for d in inst.int_list("lhs_batch_dims"))
        skip = set(inst.int_list("rhs_contracting_dims")) | set(inst.int_list("rhs_batch_dims"))
        n = math.prod(s for d, s in enumerate(rhs.dims) if d not in skip)
        return max(out.elements // max(n * batch, 1), 1), k, n, batch
    d = conv_dims(inst.dim_labels)
    rhs = inst.operands[1].shape
    groups = inst.feature_group_count
    n = out.dims[d.out_feature] // groups
    k = math.prod(rhs.dims[i] for i in d.rhs_spatial) * rhs.dims[d.rhs_in]
    return out.elements // max(out.dims[d.out_feature], 1), k, n, groups


def kernel_features(inst: Instruction) -> tuple[int, ...]:
    """What sets a convolution's or dot's rate: ``(M, K, N, taps, groups, pixels)`` -- its
    matrix products (:func:`gemm_dims`), the spatial window's taps (1 for a dot) and the
    output pixels of one image (a dot's rows). The groups tell a depthwise conv's channels
    and a batched matmul's batch, the pixels a batch of small maps (mostly padding for a
    large window) from one large map, which ``M``, ``K``, ``N`` alone do not show. A
    reduce-window: ``(outputs, taps, 1, taps, 1, outputs)``."""
    if inst.opcode == "reduce-window":
        taps, out = max(math.prod(w.size for w in inst.window), 1), max(inst.shape.leaves()[0].elements, 1)
        return out, taps, 1, taps, 1, out
    m, k, n, groups = gemm_dims(inst)
    if inst.opcode == "dot" or is_matmul_conv(inst):
        return m, k, n, 1, groups, m
    d = conv_dims(inst.dim_labels)
    pixels = math.prod(inst.shape.dims[i] for i in d.out_spatial)
    return m, k, n, max(math.prod(w.size for w in inst.window), 1), groups, max(pixels, 1)


# The kind of kernel of a convolution that pads no side (:func:`is_unpadded`): ``kernel_impl``
# plus this suffix.
UNPADDED = "/unpadded"
# The kind of the kernels of a while loop's body, run trip after trip, back to back on the same
# operands: ``kernel_impl`` plus this suffix. They are calibrated as loop trips
# (jaxcost.perf.calibrate.LOOP_CELLS, LOOP_MEMORY_SIZES) and priced from those
# (jaxcost.perf.pricing.price_loop).
LOOP = "/loop"


def is_unpadded(inst: Instruction) -> bool:
    """Whether ``inst`` is a convolution whose window spans more than one pixel and pads no
    side ("VALID" padding, a patchify conv of stride = window). XLA:CPU's YNNPACK (jax 0.10)
    runs these on another path than padded ones: on a 2-core x86 VM a batch-8 3x3 conv on
    56x56x64 took 49 ms unpadded against 19 ms padded for 7 % fewer flops, a batch-1 one the
    same time; two pixels of padding on one axis only keep the fast path."""
    return (inst.opcode == "convolution" and math.prod(w.size for w in inst.window) > 1
            and all(w.pad_lo == 0 and w.pad_hi == 0 for w in inst.window))


# The kind of kernel of a convolution XLA rewrote with its window reversed (:func:`is_reversed`):
# ``kernel_impl`` plus this suffix.
REVERSED = "/reversed"


def is_reversed(inst: Instruction) -> bool:
    """Whether ``inst`` is a convolution that reads its window reversed (``rhs_reversal``):
    XLA:CPU (jax 0.10) rewrites a padded conv whose window is larger than its map into one over
    the batch as its features (``dim_labels=01fb_o01i->f01b``), whose M, K and N are not the
    conv's. On a 2-core x86 VM those ran at ~3 GFLOP/s, where plain convs on XLA's own emitter
    (1x7 windows on 4x4 maps: Keras's InceptionV3 on 96-pixel images; 3-channel stems to 16
    channels) ran at 30-70: priced as one kind, the plain ones came out 10-25x too slow."""
    return inst.opcode == "convolution" and any(w.rhs_reversal for w in inst.window)


def kernel_impl(inst: Instruction, leaf: Instruction | None = None) -> str:
    """Which kind of kernel runs ``inst`` (a top-level instruction): ``fusion:<kind>`` (the
    backend's fusion kind, e.g. ``fusion:__ynn_fusion`` for XLA:CPU's YNNPACK kernels,
    ``fusion:kLoop``), ``custom-call:<target>`` (a library call), else the opcode (XLA's own
    emitter); with :data:`REVERSED` after it when the convolution ``leaf`` it runs (``inst``
    itself when None) reads its window reversed (:func:`is_reversed`), else :data:`UNPADDED`
    when it pads no side (:func:`is_unpadded`). The same convolution runs at
    different rates in different kernels: XLA:CPU hands a depthwise conv to YNNPACK unless
    the window is larger than the padded map."""
    conv = leaf or inst
    suffix = REVERSED if is_reversed(conv) else UNPADDED if is_unpadded(conv) else ""
    if inst.opcode == "fusion":
        config = inst.backend_config.get("fusion_config") or {}
        return f"fusion:{config.get('kind') or inst.fusion_kind}{suffix}"
    if inst.opcode == "custom-call":
        return f"custom-call:{inst.custom_call_target}{suffix}"
    return inst.opcode + suffix


def leaves(inst: Instruction, kernel: Instruction | None = None):
    """``(kernel, leaf)`` for ``inst`` itself, or for every instruction inside the
    computations it calls: a fusion's instructions run in the fusion's kernel, a loop's
    or call's body instructions in kernels of their own."""
    kernel = kernel or inst
    if inst.opcode not in CALLS_KERNELS or not inst.called:  # a reduce's reducer runs inside it
        yield kernel, inst
        return
    for comp in inst.called:
        for sub in comp.instructions:
            yield from leaves(sub, kernel if inst.opcode == "fusion" else sub)


def feeding_matmuls(i: Instruction) -> list[Instruction]:
    """The convolutions and dots whose outputs reach ``i`` through non-matmul instructions (inside
    the computation ``i`` belongs to: a fusion's elementwise instructions, its parameters ending
    the walk)."""
    seen: set[str] = set()

    def walk(j: Instruction) -> list[Instruction]:
        out = []
        for o in j.operands:
            if o.name not in seen:
                seen.add(o.name)
                out += [o] if o.opcode in MATMULS else walk(o)
        return out

    return walk(i)


def chained_matmuls(inst: Instruction) -> int:
    """How many convolutions and dots of the fusion ``inst`` take another one's output as an
    input, directly or through the fusion's elementwise instructions: a chain of ``n`` run as one
    kernel counts ``n - 1``; side-by-side matmuls on one input count 0.

    XLA:CPU (jax 0.10) hands a whole chain of convs to one YNNPACK kernel when a reduction
    follows it (a pool, a global mean), and YNNPACK then runs it at other rates than the same
    convs as separate kernels: up to 6x slower at batch 1 on maps of a few pixels, a little
    faster on large maps (``benchmarks/chain_fusions.py``). Such a kernel is priced as the longer
    of its convs apart and of its weights read row by row (:func:`streamed_weights`) and flagged
    (:func:`jaxcost.perf.pricing.price_op`). Attention's ``q k^T``, softmax and ``p v`` in one
    kernel (:func:`is_attention`) are a class of their own."""
    if inst.opcode != "fusion":
        return 0
    return sum(bool(feeding_matmuls(leaf)) for _, leaf in leaves(inst) if leaf.opcode in MATMULS)


def streamed_weights(inst: Instruction) -> float:
    """Bytes of weights a chain of convolutions run as one kernel (:func:`chained_matmuls`) reads
    row by row: 0 unless a windowed conv of the fusion (a window of more than one tap) takes
    another matmul's output, directly or through the fusion's elementwise instructions; then
    each such conv and each matmul that feeds one count their weights once per row of their
    output map (its first spatial side)::

        streamed = sum(rows_c * weight_bytes_c)      over the convs computed a few rows at a time

    XLA:CPU's YNNPACK (jax 0.10) computes such a chain a few output rows at a time -- a windowed
    conv needs the rows around each of its outputs from the conv before it -- and reads every
    weight of those convs again for each: at batch 1 a 3x3 pair on a 7x7x512 map took 29 ms fused,
    4.6 ms as two kernels, and its 132 MB of weights read row by row at ~5-10 GB/s tell that
    time; a 3x3 conv followed by a 1x1 one (no rows around an output needed) ran as fast fused as
    apart (``benchmarks/results/chain_fusions.md``). Dots count one row."""
    if inst.opcode != "fusion":
        return 0.0
    tiled: dict[str, Instruction] = {}
    for _, leaf in leaves(inst):
        windowed = leaf.opcode == "convolution" and math.prod(w.size for w in leaf.window) > 1
        if windowed and (fed := feeding_matmuls(leaf)):
            tiled.update({m.name: m for m in [leaf, *fed]})

    def rows(m: Instruction) -> int:
        if m.opcode != "convolution":
            return 1
        spatial = conv_dims(m.dim_labels).out_spatial
        return m.shape.dims[spatial[0]] if spatial else 1

    return float(sum(rows(m) * m.operands[1].shape.bytes for m in tiled.values()))


class Work(NamedTuple):
    """Part of an op's flops: its class, flops, :func:`kernel_features` (None for
    ``other``) and :func:`kernel_impl` of the kernel that runs it."""

    cls: str
    flops: float
    features: tuple[int, ...] | None = None
    impl: str = ""


def is_attention(inst: Instruction) -> bool:
    """Whether the kernel ``inst`` runs attention, ``softmax(q k^T) v``: a fusion of exactly two
    dots and no convolution, the second fed by the first (:func:`chained_matmuls`), with an
    exponential among its instructions."""
    if inst.opcode != "fusion":
        return False
    ops = [leaf.opcode for _, leaf in leaves(inst)]
    return ops.count("dot") == 2 and "convolution" not in ops and "exponential" in ops and chained_matmuls(inst) == 1


def class_work(op) -> list[Work]:
    """An op's flops (+ transcendentals) split into :class:`Work` items.

    ``op`` is a :class:`jaxcost.compiler.ops.Op`; convolutions, dots and reduce-windows
    (:data:`CLASSED`) are found in its instruction or the computations it calls, their flops taken from the op's
    priced inner instructions (by name); an attention kernel's two dots are one ``attention``
    item (:func:`is_attention`); the remainder is one ``other`` item.
    """
    total = max(op.flops, 0.0) + max(op.transcendentals, 0.0)
    inst = op.instruction
    if inst is None:
        return [Work("other", total)]
    inner = {i.name: i.flops for i in op.inner} if op.inner else {inst.name: op.flops}
    if is_attention(inst):  # the two dots as one item, sized by the first (softmax: the rest)
        dots = [leaf for _, leaf in leaves(inst) if leaf.opcode == "dot"]
        work = [Work("attention", sum(inner.get(d.name, 0.0) for d in dots), kernel_features(dots[0]),
                     kernel_impl(inst))]
    else:
        work = [Work({"dot": "dot", "reduce-window": "window"}.get(leaf.opcode) or conv_class(leaf),
                     inner[leaf.name], kernel_features(leaf), kernel_impl(kernel, leaf))
                for kernel, leaf in leaves(inst)
                if leaf.opcode in CLASSED and leaf.name in inner
                and (inner[leaf.name] > 0 or leaf.opcode != "reduce-window")]
    rest = total - sum(w.flops for w in work)
    if rest > 0 or not work:
        work.append(Work("other", max(rest, 0.0)))
    return work


def main_class(op) -> str:
    """The class of ``op``'s largest :class:`Work` item (:func:`class_work`): the calibrated
    class most of its flops go to (a conv with its bias and ReLU: ``conv``), ``other`` for an
    op with none (elementwise, copies, reductions: priced by their bytes)."""
    work = class_work(op)
    return max(work, key=lambda w: w.flops).cls if work else "other"


def class_flops(op) -> dict[str, float]:
    """:func:`class_work` summed per class."""
    split: dict[str, float] = {}
    for w in class_work(op):
        split[w.cls] = split.get(w.cls, 0.0) + w.flops
    return split
