"""Every worked number of the sources, exactly: Hollemans, "How fast is my model?" (2018);
"我的机器学习支线「模型复杂度」"; Zhihu "卷积神经网络的复杂度分析"; "轻型网络(MobileNet GhostNet
ShuffleNet)的计算量"; Wang, Liu, Foroosh (arXiv 1608.04337)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxcost.theory import formulas as F


def brute_valid_taps(n_in, k, n_out, stride, pad_lo, lhs_dilation, rhs_dilation):
    span = (n_in - 1) * lhs_dilation
    return sum(1 for o in range(n_out) for j in range(k)
               if 0 <= o * stride - pad_lo + j * rhs_dilation <= span
               and (o * stride - pad_lo + j * rhs_dilation) % lhs_dilation == 0)


def test_valid_taps_worked_cases():
    assert F.valid_taps(56, 3, 56, 1, 1) == 166                 # SAME 3×3: the 2 border taps are padding
    assert F.valid_taps(224, 3, 112, 2, 0) == 335               # SAME stride 2 pads (0, 1): 1 tap lost
    assert F.valid_taps(5, 3, 3, 1, 0) == 9                     # VALID: every tap real
    assert F.valid_taps(4, 3, 9, 1, 2, lhs_dilation=2) == 12    # transposed conv: holes are not taps
    assert F.valid_taps(0, 3, 4, 1, 1) == F.valid_taps(4, 3, 0, 1, 1) == 0


@settings(max_examples=300, deadline=None)
@given(n_in=st.integers(1, 20), k=st.integers(1, 6), n_out=st.integers(1, 25), stride=st.integers(1, 4),
       pad_lo=st.integers(-3, 6), ld=st.integers(1, 4), rd=st.integers(1, 3))
def test_valid_taps_matches_brute_force(n_in, k, n_out, stride, pad_lo, ld, rd):
    assert F.valid_taps(n_in, k, n_out, stride, pad_lo, ld, rd) == brute_valid_taps(n_in, k, n_out, stride,
                                                                                   pad_lo, ld, rd)


def test_dot_reduce_sort_closed_forms():
    assert (F.dot_flops(5), F.dot_flops(5, bias=True), F.dot_flops(0)) == (9, 10, 0)
    assert (F.reduce_flops(64, 4), F.reduce_flops(0, 4)) == (60, 0)
    assert F.sort_compares(64) == 384 and F.sort_compares(16, rows=4) == 256 and F.sort_compares(1) == 0
    assert F.taps(3) == 9 and F.taps((3, 5, 2)) == 30


def test_conv_output_size():
    assert F.conv_output_size(224, 3, 2, "SAME") == 112
    assert F.conv_output_size(225, 3, 2, "SAME") == 113
    assert F.conv_output_size(224, 3, 2, "VALID") == 111
    assert F.conv_output_size(224, 7, 2, (3, 3)) == 112
    assert F.conv_output_size(10, 3, 1, "VALID", dilation=2) == 6
    with pytest.raises(ValueError):
        F.conv_output_size(10, 3, 1, "FULL")


def test_conv_flops_2n_minus_1():
    assert F.conv_flops(3, 3, 4, 6, 6) == 7632
    assert F.conv_flops(3, 3, 4, 6, 6, bias=True) == 2 * 27 * 4 * 36


def test_params():
    assert F.conv_params(3, 32, 48) == 13_872
    assert F.dense_params(4096, 4096) == 16_781_312
    assert F.conv_params(3, 3, 32) == 896
    assert F.conv_params(3, 256, 512) == 1_180_160


def test_hollemans_dense_and_conv_macs():
    assert F.dense_macs(100, 300) == 30_000
    assert F.dense_flops(100, 300) == 199 * 300
    assert F.dense_flops(100, 300, bias=True) == 200 * 300
    assert F.conv_macs(3, 64, 128, 112, 112) == 924_844_032


def test_hollemans_memory_access():
    m = F.conv_memory_access_naive(224, 224, 3, 3, 32, 112, 112)
    assert (m.input, m.output, m.weights, m.total) == (43_352_064, 401_408, 896, 43_754_368)
    m = F.conv_memory_access_naive(28, 28, 256, 3, 512, 28, 28)
    assert (m.input, m.output, m.weights, m.total) == (924_844_032, 401_408, 1_180_160, 926_425_600)
    m = F.dense_memory_access_naive(4096, 4096)
    assert (m.input, m.output, m.weights, m.total) == (16_777_216, 4_096, 16_781_312, 33_562_624)
    # grouped: each input element meets the K² taps of the Cout/g filters of its group
    m = F.conv_memory_access_naive(8, 8, 8, 3, 12, 8, 8, bias=False, groups=4)
    assert (m.input, m.weights) == (512 * 9 * 3, 9 * 2 * 12)
    assert F.memory_access_ideal(150_528, 401_408, 896).total == 552_832


def test_activations_and_pooling():
    assert F.relu_flops(300) == 300
    assert F.sigmoid_flops(300) == 1200
    assert F.pooling_flops(2, 64, 56, 56) == 3 * 64 * 56 * 56


def test_depthwise_separable_and_group():
    k, m, n, df = 3, 32, 64, 56
    assert F.depthwise_separable_macs(k, m, n, df, df) == (k * k + n) * m * df * df
    ratio = F.depthwise_separable_macs(k, m, n, df, df) / F.conv_macs(k, m, n, df, df)
    assert ratio == pytest.approx(F.depthwise_separable_ratio(k, n))
    assert F.group_conv_macs(3, 64, 64, 8, 8, 4) * 4 == F.conv_macs(3, 64, 64, 8, 8)


def test_inception_factorizations():
    assert F.inception_5x5_vs_two_3x3() == (25, 18)
    assert F.inception_nxn_vs_asymmetric(3) == (9, 6)
    assert F.inception_nxn_vs_asymmetric(7, 2) == (98, 28)


def test_attention_and_mlp():
    assert F.attention_flops(10, 4, 4) == 2 * 4 * 10 * 4 + 2 * 4 * 100 + 1
    assert F.attention_flops(10, 4) == 3 * 16 * 10 + 2 * 4 * 100 + 1
    assert F.mlp_flops(4, 10) == F.dense_flops(4, 16, 10)
    table = F.attention_complexity_table()
    assert [r.per_layer for r in table] == ["O(n^2*d)", "O(n*d^2)", "O(k*n*d^2)", "O(r*n*d)"]
    assert table[1].sequential_ops == "O(n)"


def test_sic_topology_bottleneck():
    n, k, h, w = 64, 3, 32, 32
    standard = F.conv_macs(k, n, n, h, w)
    assert F.sic_macs(1, n, k, h, w) == (n * k * k + n * n) * h * w
    assert F.topological_subdivisioning_macs(k, n, h, w, c=8) == standard * 8 / n
    assert F.spatial_bottleneck_macs(k, n, 33, 33) == 2 * n * n * 33 * 33


def test_shufflenet_g1_and_lstm():
    assert F.shufflenet_g1_mac(56, 56, 64, 128) == 56 * 56 * 192 + 64 * 128
    assert F.lstm_macs(10, 20, 5) == 4 * 30 * 20 * 5


def test_ghost_module_macs():
    # GhostNet (arXiv 1911.11907): half the outputs from a 1x1 conv, half from a 3x3 depthwise of them
    from jaxcost.theory import formulas as F

    assert F.ghost_module_macs(160, 160, 28, 28) == 28 * 28 * 80 * 160 + 80 * 28 * 28 * 9 == 10_035_200 + 564_480
    standard = F.conv_macs(1, 160, 160, 28, 28)
    assert abs(standard / F.ghost_module_macs(160, 160, 28, 28, d=1) - 2 * 160 / (2 + 160 - 1)) < 1e-12
