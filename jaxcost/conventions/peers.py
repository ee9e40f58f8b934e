"""The counting conventions of the tools people read model costs from, as data.

Each :class:`~jaxcost.conventions.convention.Convention` lists, per torch-level op kind
(:mod:`jaxcost.conventions.ops`), what the tool counts and the source file where it does
so; a kind without a rule is ignored by the tool. Read from the tools' sources:

- ptflops, ``pytorch`` backend (the default of ``get_model_complexity_info``): forward hooks
  on module types (``ptflops/pytorch_ops.py: MODULES_MAPPING``) and, since 0.7.1 with
  ``count_functional=True`` (the default), wrappers around ``torch.nn.functional`` calls and
  ``torch.matmul``-like tensor ops (``FUNCTIONAL_MAPPING``, ``TENSOR_OPS_MAPPING``, patched in
  ``ptflops/pytorch_engine.py``). ``nn.ReLU``, ``nn.GELU`` and the pooling modules call the
  patched ``F.relu`` / ``F.gelu`` / ``F.*pool*d`` from their ``forward``: both the module hook
  and the wrapper fire, so they count twice; ``nn.ReLU6`` calls ``F.hardtanh`` (not patched)
  and counts once. This is why the README's torchvision table moved from ResNet-50 4.12
  GMac (0.7) to 4.13 GMac (0.7.2); ``ptflops-modules`` is ``count_functional=False``, the
  module hooks alone, which is also every ptflops before 0.7.1. A jaxpr cannot tell a module
  from a bare functional call: the rules assume modules (``nn.ReLU``, ``nn.MaxPool2d``,
  ``nn.AdaptiveAvgPool2d``, as in torchvision's ResNets and VGGs); a model that calls
  ``F.adaptive_avg_pool2d`` itself (torchvision's MobileNetV2, DenseNet) gets its pool input
  counted once by ptflops, once less than here (MobileNetV2: 62,720 MACs, 0.02 %).
- ptflops, ``aten`` backend (``ptflops/aten_ops.py``): ``aten.convolution`` and
  ``aten.mm/matmul/addmm/bmm`` only, MACs, with their biases.
- fvcore ``FlopCountAnalysis`` (``fvcore/nn/flop_count.py: _DEFAULT_SUPPORTED_OPS``, handles in
  ``fvcore/nn/jit_handles.py``): one flop per fused multiply-add, so its "flops" are MACs; conv,
  addmm/linear/matmul/bmm/einsum, batch_norm (inference: 1 per element, 2 with affine),
  layer/group/instance norm (4 per element, 5 with affine), adaptive_avg_pool2d (1 per input
  element), upsampling; everything else is skipped with a warning or on purpose
  (``fvcore/nn/jit_analysis.py: _IGNORED_OPS``: relu, max, ...). Before fvcore 0.1.5 (2021)
  only conv and matmuls were handled.
- torch ``FlopCounterMode`` (``torch/utils/flop_counter.py: flop_registry``): 2 FLOPs per MAC of
  mm/addmm/bmm/baddbmm, convolution and scaled-dot-product attention, nothing else (biases
  ignored); under autograd ``convolution_backward`` and the backward matmuls are counted too,
  each gradient at its forward size (torch's weight-gradient formula ignores groups, so it
  counts a depthwise conv's weight gradient Cin times its forward: not reproduced here).
- DeepSpeed's flops profiler (``deepspeed/profiling/flops_profiler/profiler.py``): wrappers around
  ``torch.nn.functional`` calls and tensor methods, FLOPs = 2 per MAC plus one per element of
  activations, norms, pooling inputs and conv biases (not linear biases); ``nn.ReLU6`` calls the
  unpatched ``F.hardtanh``. It measures the forward pass only (its backward line is 2× forward).
- Flax ``tabulate(compute_flops=True)`` (``flax/nnx/summary.py: _get_flops``; linen's in
  ``flax/linen/summary.py``): XLA's ``cost_analysis()["flops"]`` of each module call lowered
  alone, i.e. jaxcost's XLA-convention flops; a module's row includes its children.
- Keras ``Model.summary()`` (``keras/src/utils/summary_utils.py: print_summary``): parameters
  only, total = trainable + non-trainable (BatchNorm's moving mean and variance); Keras has no
  FLOP counter.
"""

from __future__ import annotations

from jaxcost.conventions.convention import Convention, Rule
from jaxcost.conventions.ops import KINDS, TorchOp
from jaxcost.names import BACKWARD, FORWARD, RECOMPUTE

PTFLOPS_OPS = "sovrasov/flops-counter.pytorch ptflops/pytorch_ops.py"
PTFLOPS_ENGINE = "sovrasov/flops-counter.pytorch ptflops/pytorch_engine.py"
PTFLOPS_ATEN = "sovrasov/flops-counter.pytorch ptflops/aten_ops.py"
FVCORE = "facebookresearch/fvcore fvcore/nn/jit_handles.py"
FVCORE_OPS = "facebookresearch/fvcore fvcore/nn/flop_count.py"
TORCH = "pytorch/pytorch torch/utils/flop_counter.py"
DEEPSPEED = "microsoft/DeepSpeed deepspeed/profiling/flops_profiler/profiler.py"
FLAX = "google/flax flax/nnx/summary.py"
KERAS = "keras-team/keras keras/src/utils/summary_utils.py"


def macs(op: TorchOp) -> int:
    return op.macs


def two_per_mac(op: TorchOp) -> int:
    return 2 * op.macs


def elements(op: TorchOp) -> int:
    return op.elements


def twice(op: TorchOp) -> int:
    return 2 * op.elements


def inference_norm(op: TorchOp) -> int:
    """BatchNorm at inference: normalise, then scale and shift: 2 per element (1 without affine)."""
    return op.elements * (2 if op.affine else 1)


def statistics_norm(op: TorchOp) -> int:
    """A norm that computes its statistics: 5 per element (4 without affine), "a rough estimate"."""
    return op.elements * (5 if op.affine else 4)


def xla_flops(op: TorchOp) -> int:
    return op.flops_xla


def parameters(op: TorchOp) -> int:
    return op.params + op.stats


def _ptflops(functional: bool) -> Convention:
    """ptflops' pytorch backend, with (``count_functional=True``, the default) or without the
    functional and tensor-op wrappers."""
    hook, wrap = PTFLOPS_OPS, f"{PTFLOPS_OPS} + {PTFLOPS_ENGINE}: patch_functional"
    k = 2 if functional else 1
    both = "module hook + F.* wrapper" if functional else "module hook"
    rules = [
        Rule("conv", "K·K·Cin/g·Cout per output position, padded taps counted", macs, f"{hook}: conv_flops_counter_hook"),
        Rule("conv_bias", "1 per output element of a Conv with bias", elements, f"{hook}: conv_flops_counter_hook"),
        Rule("linear", "in_features·out_features per row", macs, f"{hook}: linear_flops_counter_hook"),
        Rule("linear_bias", "1 per output element of a Linear with bias", elements,
             f"{hook}: linear_flops_counter_hook"),
        Rule("batch_norm", "1 per input element, 2 with affine", inference_norm, f"{hook}: bn_flops_counter_hook"),
        Rule("norm", "LayerNorm/GroupNorm/InstanceNorm: 1 per input element (LayerNorm has no `affine` "
             "attribute, so the hook's x2 never applies to it)", elements, f"{hook}: bn_flops_counter_hook"),
        Rule("relu", f"{k} per output element ({both})", twice if functional else elements,
             f"{hook}: relu_flops_counter_hook"),
        Rule("relu6", "1 per output element (nn.ReLU6 calls F.hardtanh, never wrapped)", elements,
             f"{hook}: relu_flops_counter_hook"),
        Rule("gelu", f"{k} per output element ({both})", twice if functional else elements,
             f"{hook}: relu_flops_counter_hook"),
        Rule("max_pool", f"{k} per input element ({both})", twice if functional else elements,
             f"{hook}: pool_flops_counter_hook"),
        Rule("avg_pool", f"{k} per input element ({both})", twice if functional else elements,
             f"{hook}: pool_flops_counter_hook"),
        Rule("global_pool", f"{k} per input element (nn.AdaptiveAvgPool2d: {both}; "
             f"a bare F.adaptive_avg_pool2d call counts 1)", twice if functional else elements,
             f"{hook}: pool_flops_counter_hook"),
    ]
    if functional:
        rules += [
            Rule("matmul", "torch.matmul/mm/bmm wrappers: MACs", macs, f"{wrap}: _matmul_tensor_flops_hook"),
            Rule("silu", "1 per element (F.silu wrapper; nn.SiLU has no hook)", elements,
                 f"{wrap}: _numel_functional_flops_hook"),
            Rule("softmax", "1 per input element (F.softmax wrapper)", elements,
                 f"{wrap}: _numel_functional_flops_hook"),
        ]
    name = "ptflops" if functional else "ptflops-modules"
    title = "ptflops (pytorch backend)" if functional else "ptflops (modules only, < 0.7.1)"
    reason = ("dense conv/linear MACs + biases, plus 1 per element of BN (x2 affine), activations and pooling "
              "inputs" + (", ReLU and pools counted twice (module hook and F.* wrapper)" if functional else "")
              + "; residual adds ignored")
    return Convention(name, title, "MACs", tuple(rules), reason)


PTFLOPS = _ptflops(functional=True)
PTFLOPS_MODULES = _ptflops(functional=False)

PTFLOPS_ATEN_BACKEND = Convention(
    "ptflops-aten", "ptflops (aten backend)", "MACs", (
        Rule("conv", "batch·prod(w)·prod(out spatial)", macs, f"{PTFLOPS_ATEN}: conv_flop_count"),
        Rule("conv_bias", "1 per output element of a biased aten.convolution", elements,
             f"{PTFLOPS_ATEN}: conv_flop_count"),
        Rule("linear", "aten.addmm: batch·in·out", macs, f"{PTFLOPS_ATEN}: addmm_flop"),
        Rule("linear_bias", "aten.addmm bias: batch·out", elements, f"{PTFLOPS_ATEN}: addmm_flop"),
        Rule("matmul", "aten.mm/matmul/bmm: MACs", macs, f"{PTFLOPS_ATEN}: matmul_flop, bmm_flop"),
    ),
    "dense conv/linear/matmul MACs plus biases; everything else ignored")

FVCORE_COUNT = Convention(
    "fvcore", "fvcore FlopCountAnalysis", "MACs", (
        Rule("conv", "one flop per MAC: batch·prod(w)·prod(out spatial)", macs, f"{FVCORE}: conv_flop_count"),
        Rule("linear", "one flop per MAC, bias ignored", macs, f"{FVCORE}: addmm_flop_jit, linear_flop_jit"),
        Rule("matmul", "one flop per MAC", macs, f"{FVCORE}: matmul_flop_jit, bmm_flop_jit, einsum_flop_jit"),
        Rule("batch_norm", "inference batch_norm: 1 per input element, 2 with affine", inference_norm,
             f"{FVCORE}: batchnorm_flop_jit"),
        Rule("norm", "layer/group/instance norm, training batch_norm: 4 per element, 5 with affine",
             statistics_norm, f"{FVCORE}: norm_flop_counter"),
        Rule("global_pool", "aten::adaptive_avg_pool2d: 1 per input element", elements,
             f"{FVCORE_OPS}: _DEFAULT_SUPPORTED_OPS (elementwise_flop_counter(1, 0))"),
    ),
    "one 'flop' per MAC of conv/linear/matmul (dense, biases ignored) + BN x2 and the global pool; "
    "ReLU, max-pool, adds ignored")

FLOP_COUNTER_MODE = Convention(
    "flopcountermode", "torch FlopCounterMode", "FLOPs", (
        Rule("conv", "2 per MAC (padded taps counted); backward: each gradient as the forward conv",
             two_per_mac, f"{TORCH}: conv_flop_count, conv_backward_flop"),
        Rule("linear", "2 per MAC, bias ignored", two_per_mac, f"{TORCH}: mm_flop, addmm_flop"),
        Rule("matmul", "2 per MAC (bmm, baddbmm, scaled-dot-product attention)", two_per_mac,
             f"{TORCH}: bmm_flop, sdpa_flop_count"),
    ),
    "2 per dense MAC of conv/matmul/attention only (XLA: valid taps, + every elementwise op); "
    "backward contractions counted under autograd",
    directions=(FORWARD, BACKWARD, RECOMPUTE), prints_params=False)

DEEPSPEED_PROFILER = Convention(
    "deepspeed", "DeepSpeed flops profiler", "FLOPs", (
        Rule("conv", "2 per MAC", two_per_mac, f"{DEEPSPEED}: _conv_flops_compute"),
        Rule("conv_bias", "1 per output element", elements, f"{DEEPSPEED}: _conv_flops_compute"),
        Rule("linear", "2 per MAC, bias ignored", two_per_mac, f"{DEEPSPEED}: _linear_flops_compute"),
        Rule("matmul", "2 per MAC", two_per_mac, f"{DEEPSPEED}: _matmul_flops_compute, _attn_flops_compute"),
        Rule("batch_norm", "inference: 1 per element, 2 with affine", inference_norm,
             f"{DEEPSPEED}: _batch_norm_flops_compute"),
        Rule("norm", "4 per element, 5 with affine", statistics_norm,
             f"{DEEPSPEED}: _layer_norm_flops_compute, _group_norm_flops_compute"),
        Rule("relu", "1 per element (F.relu)", elements, f"{DEEPSPEED}: _relu_flops_compute"),
        Rule("gelu", "1 per element (F.gelu)", elements, f"{DEEPSPEED}: _gelu_flops_compute"),
        Rule("silu", "1 per element (F.silu)", elements, f"{DEEPSPEED}: _silu_flops_compute"),
        Rule("softmax", "1 per input element", elements, f"{DEEPSPEED}: _softmax_flops_compute"),
        Rule("max_pool", "1 per input element", elements, f"{DEEPSPEED}: _pool_flops_compute"),
        Rule("avg_pool", "1 per input element", elements, f"{DEEPSPEED}: _pool_flops_compute"),
        Rule("global_pool", "1 per input element", elements, f"{DEEPSPEED}: _pool_flops_compute"),
    ),
    "2 per dense MAC + conv biases + 1 per element of BN (x2 affine), ReLU, pooling inputs; "
    "ReLU6 (F.hardtanh), linear biases and adds ignored; forward only")

FLAX_TABULATE = Convention(
    "flax", "Flax tabulate(compute_flops=True)", "FLOPs",
    tuple(Rule(k, "XLA cost_analysis flops of the lowered module call", xla_flops, f"{FLAX}: _get_flops")
          for k in KINDS),
    "XLA's lowered flops, jaxcost's flops_xla: 2 per valid conv tap, 1 per elementwise op, "
    "transcendentals apart")

KERAS_SUMMARY = Convention(
    "keras", "Keras Model.summary()", "params",
    tuple(Rule(k, "trainable + non-trainable parameters", parameters, f"{KERAS}: print_summary") for k in KINDS),
    "parameters only (trainable + BatchNorm moving mean/variance); Keras prints no FLOPs",
    prints_params=False)

CONVENTIONS: dict[str, Convention] = {c.tool: c for c in (
    PTFLOPS, PTFLOPS_MODULES, PTFLOPS_ATEN_BACKEND, FVCORE_COUNT, FLOP_COUNTER_MODE, DEEPSPEED_PROFILER,
    FLAX_TABULATE, KERAS_SUMMARY)}
