"""What a custom call costs.

XLA's ``HloCostAnalysis::HandleCustomCall`` prices every custom call at −1 flops
and −1 bytes ("unknown"), whatever its target, and XLA's totals include those −1s.
jaxcost knows these kinds of target:

* annotations: sharding (``Sharding``, ``SPMDFullToShardShape``,
  ``SPMDShardToFullShape``, Shardy's ``xla.sdy.*``), memory placement
  (``annotate_device_placement``) and ``AllocateBuffer`` (``lax.empty``): markers
  for the compiler that do no device work, priced at zero;
* memory-space moves (``MoveToHost``, ``MoveToDevice``): no arithmetic, their
  operands and outputs in bytes;
* host callbacks (``jax.debug.print``, ``jax.debug.callback``, ``jax.pure_callback``,
  ``io_callback``: targets ``xla_*python_cpu_callback``/``..._gpu_callback``): Python
  runs on the host; the device only hands over its operands and receives the
  results (counted in bytes), the host's work is not counted;
* cuBLAS GEMMs and cuDNN convolutions: counted from their shapes as the dot or
  the convolution they compute (their outputs are ``(result, workspace)``;
  the workspace is not data);
* anything else: zero flops, its operands and outputs in bytes, named unknown.
"""

from __future__ import annotations

from jaxcost.compiler.cost import HloCost
from jaxcost.compiler.hlo import Instruction, Shape
from jaxcost.compiler.rules import FMA_FLOPS, conv_macs_valid, default_bytes, dot_flops, operand_size

ANNOTATIONS = frozenset({"Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape",
                         "annotate_device_placement", "AllocateBuffer",
                         "ConcatBitcast"})  # XLA:TPU: a concatenate of pieces already side by side
ANNOTATION_PREFIXES = ("xla.sdy.",)
MEMORY_MOVES = frozenset({"MoveToHost", "MoveToDevice"})
GEMM_TARGETS = ("__cublas$gemm", "__cublas$lt$matmul", "__cublas$lt$matmul$f8")
CONV_TARGETS = ("__cudnn$conv",)


def kind(target: str) -> str:
    """``annotation``, ``memory move``, ``host callback``, ``gemm``, ``convolution`` or ``unknown``."""
    if target in ANNOTATIONS or target.startswith(ANNOTATION_PREFIXES):
        return "annotation"
    if target in MEMORY_MOVES:
        return "memory move"
    if target.startswith("xla_") and "python" in target and target.endswith("_callback"):
        return "host callback"
    if target.startswith(GEMM_TARGETS):
        return "gemm"
    if target.startswith(CONV_TARGETS):
        return "convolution"
    return "unknown"


def _result(inst: Instruction) -> Shape:
    """The result of a library call whose output is ``(result, workspace)``."""
    return inst.shape.tuple_shapes[0] if inst.shape.is_tuple and inst.shape.tuple_shapes else inst.shape


def custom_call_cost(inst: Instruction, model) -> tuple[HloCost, str | None]:
    """jaxcost's cost of a custom call, and a line saying what was counted or left out
    (None for annotations and memory moves, which need no comment)."""
    target = inst.custom_call_target
    what = kind(target)
    if what == "annotation":
        return model.cost(0, 0, 0), None
    if what == "memory move":
        return model.cost(0, 0, default_bytes(inst, model)), None
    if what == "host callback":
        return (model.cost(0, 0, default_bytes(inst, model)),
                f"host callback {target!r}: its work runs in Python on the host and is not counted")
    if what in ("gemm", "convolution"):
        out = _result(inst)
        moved = model.total([out.bytes] + [operand_size(o.shape, model) for o in inst.operands])
        if what == "gemm":
            cfg = inst.backend_config.get("gemm_backend_config", inst.backend_config)
            dims = cfg.get("dot_dimension_numbers", {})
            lhs = inst.operands[0].shape
            contract = [int(d) for d in dims.get("lhs_contracting_dimensions", [len(lhs.dims) - 1])]
            flops = dot_flops(lhs, out, contract)
            return model.cost(flops, 0, moved), f"{inst.name}: {target} counted as a GEMM: {flops:,.0f} flops"
        if inst.window:
            flops = FMA_FLOPS * conv_macs_valid(inst, inst.operands[0].shape, inst.operands[1].shape, out)
            return (model.cost(flops, 0, moved),
                    f"{inst.name}: {target} counted as a convolution: {flops:,.0f} flops")
    return (model.cost(0, 0, default_bytes(inst, model)),
            f"{inst.name}: custom call {target!r} reported -1 by XLA; its flops are unknown and counted as 0")
