"""Closed-form cost formulas, one small function each: the single source the theory rules call.

Conventions: MAC = one multiply-accumulate; FLOP = one add/multiply/compare.
A dot of length n without bias costs 2n − 1 FLOPs, with bias 2n (the blog post
"我的机器学习支线「模型复杂度」" and M. Hollemans, "How fast is my model?", 2018).
Spatial sizes are ``h, w`` (output unless said otherwise), channels ``cin, cout``;
a kernel ``k`` is an int (square) or a tuple of any rank. Where a formula takes
``h, w`` of the output, ``h·w`` is the number of output positions: the rules pass
``batch × spatial`` as ``h`` and ``w = 1`` for any rank.

Sources: Hollemans (above); Zhihu "卷积神经网络的复杂度分析"; "轻型网络(MobileNet
GhostNet ShuffleNet)的计算量"; Wang, Liu, Foroosh, arXiv 1608.04337 (SIC, topological
subdivisioning, spatial bottleneck); Vaswani et al., arXiv 1706.03762 (Table 1).
"""

from __future__ import annotations

import dataclasses
import functools
import math


def taps(k: int | tuple[int, ...]) -> int:
    """Kernel taps: K² for a square ``k``, the product of the dims for a tuple."""
    return k * k if isinstance(k, int) else math.prod(k)


@functools.lru_cache(maxsize=1 << 14)
def valid_taps(n_in: int, k: int, n_out: int, stride: int, pad_lo: int, lhs_dilation: int = 1,
               rhs_dilation: int = 1) -> int:
    """(output, kernel) index pairs along one dim that land on a real input element.

    Output ``o`` and kernel tap ``j`` read index ``i = o·stride − pad_lo + j·rhs_dilation`` of
    the lhs-dilated, padded input; the pair is valid when ``0 ≤ i ≤ (n_in − 1)·lhs_dilation``
    and ``i`` is a multiple of ``lhs_dilation`` (not a hole). XLA's HloCostAnalysis counts
    2 flops per valid (output, tap, cin) triple; the textbook counts ``n_out·k`` pairs.

    3 taps, SAME, stride 1 on 56: 166 valid pairs of 168 (the two border taps hit padding).
    """
    if n_in <= 0 or n_out <= 0 or k <= 0:
        return 0
    span = (n_in - 1) * lhs_dilation
    period = lhs_dilation // math.gcd(stride, lhs_dilation)   # o ↦ (o·stride + c) mod lhs_dilation
    total = 0
    for j in range(k):
        c = j * rhs_dilation - pad_lo
        lo, hi = max(0, -(c // stride)), min(n_out - 1, (span - c) // stride)
        if hi < lo:
            continue
        if lhs_dilation == 1:
            total += hi - lo + 1
            continue
        full, rest = divmod(hi - lo + 1, period)
        hits = [((lo + t) * stride + c) % lhs_dilation == 0 for t in range(period)]
        total += full * sum(hits) + sum(hits[:rest])
    return total


def conv_output_size(x: int, k: int, stride: int = 1, padding: str | tuple[int, int] = "VALID",
                     dilation: int = 1) -> int:
    """Output length of a convolution along one dimension.

    SAME (TensorFlow): ceil(X / S). VALID: ceil((X - K_eff + 1) / S) with
    K_eff = (K - 1)·D + 1. Explicit (lo, hi): floor((X + lo + hi - K_eff) / S) + 1.
    """
    k_eff = (k - 1) * dilation + 1
    if isinstance(padding, str):
        if padding.upper() == "SAME":
            return -(-x // stride)
        if padding.upper() == "VALID":
            return max(0, -(-(x - k_eff + 1) // stride))
        raise ValueError(f"unknown padding {padding!r}")
    lo, hi = padding
    return max(0, (x + lo + hi - k_eff) // stride + 1)


def dot_flops(n: int, bias: bool = False) -> int:
    """Textbook FLOPs of one length-``n`` dot product: n multiplies + (n − 1) adds = 2n − 1;
    a bias add makes it 2n. An empty dot (n = 0) costs nothing."""
    return 0 if n <= 0 else 2 * n - (0 if bias else 1)


def conv_macs(k: int | tuple[int, ...], cin: int, cout: int, hout: int, wout: int = 1, groups: int = 1) -> int:
    """MACs of a conv: K²·Cin/g·Hout·Wout·Cout, padded taps counted (Hollemans §1.3).

    3×3 conv, 64→128 channels, 112×112 output: 924,844,032.
    """
    return taps(k) * (cin // groups) * hout * wout * cout


def conv_flops(k: int | tuple[int, ...], cin: int, cout: int, h: int, w: int = 1, bias: bool = False,
               groups: int = 1) -> int:
    """Textbook FLOPs of a conv: (2·Cin/g·K² − 1)·Cout·H·W, without the −1 with bias
    (one length-Cin/g·K² dot per output, :func:`dot_flops`).

    Cin 3, Cout 4, K 3, 6×6: (2·3·9 − 1)·4·36 = 7,632.
    """
    return dot_flops(taps(k) * (cin // groups), bias) * cout * h * w


def conv_params(k: int | tuple[int, ...], cin: int, cout: int, bias: bool = True, groups: int = 1) -> int:
    """Parameters of a conv: K²·Cin/g·Cout (+ Cout bias). 3·3·32·48 + 48 = 13,872 (Hollemans §2.1)."""
    return taps(k) * (cin // groups) * cout + (cout if bias else 0)


def dense_macs(i: int, j: int, n: int = 1) -> int:
    """MACs of a dense layer I → J on N rows: I·J·N (Hollemans §1.1: 100 → 300 = 30,000)."""
    return i * j * n


def dense_flops(i: int, j: int, n: int = 1, bias: bool = False) -> int:
    """Textbook FLOPs of a dense layer: (2I − 1)·J·N, 2I·J·N with bias (:func:`dot_flops`)."""
    return dot_flops(i, bias) * j * n


def dense_params(i: int, j: int, bias: bool = True) -> int:
    """Parameters of a dense layer: (I + 1)·J with bias ((4096 + 1)·4096 = 16,781,312)."""
    return (i + (1 if bias else 0)) * j


def depthwise_separable_macs(k: int, cin: int, cout: int, h: int, w: int) -> int:
    """Depthwise (K²·Cin·H·W) + pointwise (Cin·Cout·H·W) MACs (MobileNet, arXiv 1704.04861)."""
    return k * k * cin * h * w + cin * cout * h * w


def ghost_module_macs(cin: int, cout: int, h: int, w: int, k: int = 1, d: int = 3, s: int = 2) -> int:
    """A Ghost module (GhostNet, Han et al., arXiv 1911.11907, §3.1): a primary k×k conv makes
    cout/s intrinsic maps, a cheap d×d depthwise conv makes the other (s − 1)·cout/s from them:
    h·w·(cout/s)·cin·k² + (s − 1)·(cout/s)·h·w·d² MACs, about 1/s of the standard conv's
    h·w·cout·cin·k² when d = k (their eq. 4: speed-up s·cin/(s + cin − 1))."""
    m = cout // s
    return h * w * m * cin * k * k + (s - 1) * m * h * w * d * d


def depthwise_separable_ratio(k: int, n: int) -> float:
    """Depthwise-separable / standard conv cost: 1/N + 1/K², N output channels (arXiv 1704.04861)."""
    return 1 / n + 1 / (k * k)


def group_conv_macs(k: int, cin: int, cout: int, h: int, w: int, groups: int) -> int:
    """Grouped conv MACs: K²·(Cin/g)·Cout·H·W, 1/g of the dense conv (ShuffleNet, ResNeXt)."""
    return conv_macs(k, cin, cout, h, w, groups)


def inception_5x5_vs_two_3x3(c: int = 1) -> tuple[int, int]:
    """Per output position and channel pair: 5×5 = 25 vs two 3×3 = 18 MACs·c (28 % less;
    Inception v3, arXiv 1512.00567)."""
    return 25 * c, 18 * c


def inception_nxn_vs_asymmetric(n: int, c: int = 1) -> tuple[int, int]:
    """n×n = n² vs 1×n + n×1 = 2n MACs·c (Inception v3 asymmetric factorization; 3×3: 9 vs 6)."""
    return n * n * c, 2 * n * c


def attention_flops(n: int, dk: int, dx: int | None = None) -> int:
    """Self-attention FLOPs as "我的机器学习支线「模型复杂度」" writes them: 2·Dk·N·Dx + 2·Dk·N² + 1.

    The post's special case Dx = Dk = Dv = D writes 3D²N + 2DN² + 1; note the
    general line gives 2D²N there — both are kept as the post writes them:
    pass ``dx=None`` for the all-D form.
    """
    if dx is None:
        return 3 * dk * dk * n + 2 * dk * n * n + 1
    return 2 * dk * n * dx + 2 * dk * n * n + 1


def dense_training_flops(n_params: int, tokens: int) -> int:
    """6·N·T: forward (2 per weight per token) + backward (input and weight gradient, 4) FLOPs
    of the weight matmuls of a training step (Kaplan et al. arXiv 2001.08361 §2.1; PaLM,
    Chowdhery et al. arXiv 2204.02311, appendix B)."""
    return 6 * n_params * tokens


def attention_training_flops(layers: int, context: int, d_attn: int, tokens: int, causal: bool = False) -> int:
    """12·L·H·Q·S per token: QKᵀ and AV, 2·2·S·(H·Q) forward flops per token and layer, times 3
    with the backward (PaLM, arXiv 2204.02311, appendix B; ``d_attn`` = H·Q, ``context`` = S).
    ``causal`` halves it: only the lower triangle of the scores is needed (when the kernel
    skips the masked half; a masked dense softmax still computes all of it)."""
    flops = 12 * layers * d_attn * context * tokens
    return flops // 2 if causal else flops


def mlp_flops(d: int, n: int) -> int:
    """FLOPs of a D → 4D dense layer on N tokens, no bias: (2D − 1)·4D·N = 8D²N − 4DN."""
    return 8 * d * d * n - 4 * d * n


def lstm_macs(input_size: int, hidden: int, steps: int = 1) -> int:
    """LSTM MACs: 4 gates × (I + H)·H per step (gate matmuls only)."""
    return 4 * (input_size + hidden) * hidden * steps


def sic_macs(b: int, n: int, k: int, h: int, w: int) -> int:
    """Single intra-channel conv (arXiv 1608.04337): b·(n·k² + n²)·h·w vs standard n²·k²·h·w."""
    return b * (n * k * k + n * n) * h * w


def topological_subdivisioning_macs(k: int, n: int, h: int, w: int, c: int) -> float:
    """Topological subdivisioning (arXiv 1608.04337): c/n of the standard conv n²·k²·h·w → c·n·k²·h·w."""
    return c * n * k * k * h * w


def spatial_bottleneck_macs(k: int, n: int, h: int, w: int) -> int:
    """Spatial bottleneck (arXiv 1608.04337): k×k conv with stride k (n²·k²·(h/k)(w/k)) plus the
    k×k stride-k deconv back to h×w (same count): 2·n²·h·w."""
    return 2 * n * n * k * k * (h // k) * (w // k)


def shufflenet_g1_mac(h: int, w: int, c1: int, c2: int) -> int:
    """Memory access cost of a 1×1 conv (ShuffleNet v2 guideline G1, arXiv 1807.11164): h·w·(c1 + c2) + c1·c2."""
    return h * w * (c1 + c2) + c1 * c2


@dataclasses.dataclass(frozen=True)
class MemoryAccess:
    """Memory accesses of one layer, in elements: input reads, output writes, weight reads."""

    input: int
    output: int
    weights: int

    @property
    def total(self) -> int:
        return self.input + self.output + self.weights


def memory_access_naive(inputs: int, reads_per_input: int, outputs: int, weights: int) -> MemoryAccess:
    """Hollemans' per-layer naive model ("How fast is my model?" §2.2): no reuse, so every
    input element is read once per output that uses it, every output element is written
    once, every weight (bias included) is read once."""
    return MemoryAccess(inputs * reads_per_input, outputs, weights)


def memory_access_ideal(inputs: int, outputs: int, weights: int) -> MemoryAccess:
    """The read-once model: input and weights read once, output written once (perfect reuse)."""
    return MemoryAccess(inputs, outputs, weights)


def conv_memory_access_naive(h_in: int, w_in: int, cin: int, k: int | tuple[int, ...], cout: int, hout: int,
                             wout: int, bias: bool = True, groups: int = 1) -> MemoryAccess:
    """Naive accesses of a conv layer: input = Hin·Win·Cin·K²·Cout/g, output = Hout·Wout·Cout,
    weights = K²·Cin/g·Cout (+ Cout).

    An input element of group g meets the K² taps of the Cout/g filters of its group, so it
    is read K²·Cout/g times; with one group this is Hollemans' Hin·Win·Cin·K·K·Cout.
    224×224×3, 3×3, 32 filters, stride 2: 43,352,064 + 401,408 + 896 = 43,754,368;
    28×28×256, 3×3, 512 filters: 924,844,032 + 401,408 + 1,180,160 = 926,425,600.
    """
    return memory_access_naive(h_in * w_in * cin, taps(k) * (cout // groups), hout * wout * cout,
                               conv_params(k, cin, cout, bias, groups))


def dense_memory_access_naive(i: int, j: int, n: int = 1, bias: bool = True) -> MemoryAccess:
    """Naive accesses of a dense layer, the 1×1 conv on a 1×1 map: every input element read
    J times, output written once, weights once. 4096 → 4096 with bias:
    16,777,216 + 4,096 + 16,781,312 = 33,562,624."""
    return memory_access_naive(n * i, j, n * j, dense_params(i, j, bias))


def pooling_flops(k: int | tuple[int, ...], c: int, hout: int, wout: int = 1) -> int:
    """Max/avg pooling: (K² − 1) compares/adds per output (the reduce-window count)."""
    return (taps(k) - 1) * c * hout * wout


def reduce_flops(n_in: int, n_out: int) -> int:
    """Reducing ``n_in`` elements to ``n_out`` results: n_in − n_out binary ops (XLA counts the
    same); 0 when nothing is reduced or the input is empty (never negative)."""
    return max(n_in - n_out, 0)


def sort_compares(n: int, rows: int = 1) -> int:
    """Comparisons of a comparison sort of ``rows`` rows of length n: n·⌈log2 n⌉ per row.
    XLA's HloCostAnalysis::HandleSort charges ``sort_compares(all elements)`` (one row of the
    whole operand), a little more than the per-row count."""
    return rows * n * (n - 1).bit_length() if n > 1 else 0


def relu_flops(n: int) -> int:
    """ReLU = max(x, 0): 1 FLOP per element (Hollemans §1.2)."""
    return n


def sigmoid_flops(n: int) -> int:
    """Sigmoid 1/(1+exp(−x)): 4 FLOPs per element (neg, exp, add, div; Hollemans §1.2)."""
    return 4 * n


@dataclasses.dataclass(frozen=True)
class LayerComplexity:
    layer: str
    per_layer: str
    sequential_ops: str
    max_path_length: str


def attention_complexity_table() -> tuple[LayerComplexity, ...]:
    """Table 1 of "Attention Is All You Need" (arXiv 1706.03762): n length, d dim, k kernel, r neighbourhood."""
    return (
        LayerComplexity("self-attention", "O(n^2*d)", "O(1)", "O(1)"),
        LayerComplexity("recurrent", "O(n*d^2)", "O(n)", "O(n)"),
        LayerComplexity("convolutional", "O(k*n*d^2)", "O(1)", "O(log_k(n))"),
        LayerComplexity("self-attention (restricted)", "O(r*n*d)", "O(1)", "O(n/r)"),
    )
