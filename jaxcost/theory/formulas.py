"""Closed-form cost formulas of the seeds (``/work/shared/seeds``), one small function each.

Conventions: MAC = one multiply-accumulate; FLOP = one add/multiply/compare.
A dot of length n without bias costs 2n - 1 FLOPs, with bias 2n (seeds 001, 002).
Spatial sizes are ``h, w`` (output unless said otherwise), channels ``cin, cout``.
"""

from __future__ import annotations

import dataclasses
import math


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


def conv_macs(k: int | tuple[int, int], cin: int, cout: int, hout: int, wout: int, groups: int = 1) -> int:
    """MACs of a 2-D conv: K·K·Cin/g·Hout·Wout·Cout (seed 002 §1.3).

    3×3 conv, 64→128 channels, 112×112 output: 924,844,032.
    """
    kh, kw = (k, k) if isinstance(k, int) else k
    return kh * kw * (cin // groups) * hout * wout * cout


def conv_flops(k: int | tuple[int, int], cin: int, cout: int, h: int, w: int, bias: bool = False,
               groups: int = 1) -> int:
    """Textbook FLOPs of a conv: (2·Cin·K² − 1)·Cout·H·W, without the −1 with bias (seed 001).

    Cin 3, Cout 4, K 3, 6×6: (2·3·9 − 1)·4·36 = 7,632.
    """
    kh, kw = (k, k) if isinstance(k, int) else k
    n = (cin // groups) * kh * kw
    return (2 * n - (0 if bias else 1)) * cout * h * w


def conv_params(k: int | tuple[int, int], cin: int, cout: int, bias: bool = True, groups: int = 1) -> int:
    """Parameters of a conv: K·K·Cin/g·Cout (+ Cout bias). 3·3·32·48 + 48 = 13,872 (seed 000)."""
    kh, kw = (k, k) if isinstance(k, int) else k
    return kh * kw * (cin // groups) * cout + (cout if bias else 0)


def dense_macs(i: int, j: int, n: int = 1) -> int:
    """MACs of a dense layer I → J on N rows: I·J·N (seed 002 §1.1: 100→300 = 30,000)."""
    return i * j * n


def dense_flops(i: int, j: int, n: int = 1, bias: bool = False) -> int:
    """Textbook FLOPs of a dense layer: (2I − 1)·J·N, 2I·J·N with bias (seeds 001, 002)."""
    return (2 * i - (0 if bias else 1)) * j * n


def dense_params(i: int, j: int, bias: bool = True) -> int:
    """Parameters of a dense layer: (I + 1)·J with bias ((4096 + 1)·4096 = 16,781,312)."""
    return (i + (1 if bias else 0)) * j


def depthwise_separable_macs(k: int, cin: int, cout: int, h: int, w: int) -> int:
    """Depthwise (K²·Cin·H·W) + pointwise (Cin·Cout·H·W) MACs (seeds 000, 003: MobileNet)."""
    return k * k * cin * h * w + cin * cout * h * w


def depthwise_separable_ratio(k: int, n: int) -> float:
    """Depthwise-separable / standard conv cost: 1/N + 1/K², N output channels (seed 003)."""
    return 1 / n + 1 / (k * k)


def group_conv_macs(k: int, cin: int, cout: int, h: int, w: int, groups: int) -> int:
    """Grouped conv MACs: K²·(Cin/g)·Cout·H·W, 1/g of the dense conv (seed 003: ShuffleNet/ResNeXt)."""
    return conv_macs(k, cin, cout, h, w, groups)


def inception_5x5_vs_two_3x3(c: int = 1) -> tuple[int, int]:
    """Per output position and channel pair: 5×5 = 25 vs two 3×3 = 18 MACs·c (28 % less; Inception v3)."""
    return 25 * c, 18 * c


def inception_nxn_vs_asymmetric(n: int, c: int = 1) -> tuple[int, int]:
    """n×n = n² vs 1×n + n×1 = 2n MACs·c (Inception v3 asymmetric factorization; 3×3: 9 vs 6)."""
    return n * n * c, 2 * n * c


def attention_flops(n: int, dk: int, dx: int | None = None) -> int:
    """Self-attention FLOPs of seed 001: 2·Dk·N·Dx + 2·Dk·N² + 1.

    The seed's special case Dx = Dk = Dv = D writes 3D²N + 2DN² + 1; note the
    general line gives 2D²N there — both are kept as the seed writes them:
    pass ``dx=None`` for the all-D form.
    """
    if dx is None:
        return 3 * dk * dk * n + 2 * dk * n * n + 1
    return 2 * dk * n * dx + 2 * dk * n * n + 1


def mlp_flops(d: int, n: int) -> int:
    """FLOPs of a D → 4D dense layer on N tokens, no bias: (2D − 1)·4D·N = 8D²N − 4DN (seed 001)."""
    return 8 * d * d * n - 4 * d * n


def lstm_macs(input_size: int, hidden: int, steps: int = 1) -> int:
    """LSTM MACs: 4 gates × (I + H)·H per step (gate matmuls only)."""
    return 4 * (input_size + hidden) * hidden * steps


def sic_macs(b: int, n: int, k: int, h: int, w: int) -> int:
    """Single intra-channel conv (seed 004): b·(n·k² + n²)·h·w vs standard n²·k²·h·w."""
    return b * (n * k * k + n * n) * h * w


def topological_subdivisioning_macs(k: int, n: int, h: int, w: int, c: int) -> float:
    """Topological subdivisioning (seed 004): c/n of the standard conv n²·k²·h·w → c·n·k²·h·w."""
    return c * n * k * k * h * w


def spatial_bottleneck_macs(k: int, n: int, h: int, w: int) -> int:
    """Spatial bottleneck (seed 004): k×k conv with stride k (n²·k²·(h/k)(w/k)) plus the
    k×k stride-k deconv back to h×w (same count): 2·n²·h·w."""
    return 2 * n * n * k * k * (h // k) * (w // k)


def shufflenet_g1_mac(h: int, w: int, c1: int, c2: int) -> int:
    """Memory access cost of a 1×1 conv (ShuffleNet v2 G1, seed 003): h·w·(c1 + c2) + c1·c2."""
    return h * w * (c1 + c2) + c1 * c2


@dataclasses.dataclass(frozen=True)
class MemoryAccess:
    input: int
    output: int
    weights: int

    @property
    def total(self) -> int:
        return self.input + self.output + self.weights


def conv_memory_access_naive(h_in: int, w_in: int, cin: int, k: int, cout: int, hout: int, wout: int,
                             bias: bool = True) -> MemoryAccess:
    """Seed 002 §3: input read K·K·Cout times (no reuse), output once, weights once.

    input = Hin·Win·Cin·K·K·Cout; output = Hout·Wout·Cout; weights = K·K·Cin·Cout (+ Cout).
    224×224×3, 3×3, 32 filters, stride 2: 43,352,064 + 401,408 + 896 = 43,754,368.
    """
    return MemoryAccess(h_in * w_in * cin * k * k * cout, hout * wout * cout,
                        k * k * cin * cout + (cout if bias else 0))


def pooling_flops(k: int, c: int, hout: int, wout: int) -> int:
    """Max/avg pooling: (K² − 1) compares/adds per output (the reduce-window count)."""
    return (k * k - 1) * c * hout * wout


def relu_flops(n: int) -> int:
    """ReLU = max(x, 0): 1 FLOP per element (seed 002 §1.2)."""
    return n


def sigmoid_flops(n: int) -> int:
    """Sigmoid 1/(1+exp(-x)): 4 FLOPs per element (neg, exp, add, div; seed 002 §1.2)."""
    return 4 * n


@dataclasses.dataclass(frozen=True)
class LayerComplexity:
    layer: str
    per_layer: str
    sequential_ops: str
    max_path_length: str


def attention_complexity_table() -> tuple[LayerComplexity, ...]:
    """Table 1 of "Attention Is All You Need" (seed 001): n length, d dim, k kernel, r neighbourhood."""
    return (
        LayerComplexity("self-attention", "O(n^2*d)", "O(1)", "O(1)"),
        LayerComplexity("recurrent", "O(n*d^2)", "O(n)", "O(n)"),
        LayerComplexity("convolutional", "O(k*n*d^2)", "O(1)", "O(log_k(n))"),
        LayerComplexity("self-attention (restricted)", "O(r*n*d)", "O(1)", "O(n/r)"),
    )


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)
