"""The in-program factor: synthetic programs and the robust factor fitted to them."""

import math

import jax
import pytest

from jaxcost.perf.programs import PROGRAMS, TRANSFORMER_EVERY, ProgramFactor, central, synthetic_program


def test_central_is_the_geometric_mean_of_the_middle_half():
    assert central([1.0, 2.0, 4.0, 8.0]) == pytest.approx(math.sqrt(8.0), rel=1e-12)  # 2 and 4
    assert central([1.2]) == pytest.approx(1.2)
    # outliers on either side do not move it
    assert central([0.1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 40.0]) == pytest.approx(
        math.exp(sum(map(math.log, (1.2, 1.3, 1.4, 1.5))) / 4), rel=1e-12)


def rows(factor, kernels, fixed=1e-4):
    return [[i, factor * k + fixed, k, fixed, 10] for i, k in enumerate(kernels)]


def test_the_factor_of_programs_that_follow_one_law_is_that_law():
    r = rows(1.25, [1e-3, 4e-3, 2e-2, 5e-2, 1e-1, 3e-1])
    pf = ProgramFactor.fit(r)
    assert pf.factor == pytest.approx(1.25, rel=1e-12)
    assert max(abs(e) for e in pf.loo_errors) < 1e-12 and len(pf.rows) == 6
    assert "1.250 from 6 programs" in repr(pf)
    # one program far off (a corner of the rate model) moves neither the factor nor the others' errors
    off = r + [[6, 5.0 * 0.02 + 1e-4, 0.02, 1e-4, 10]]
    pf = ProgramFactor.fit(off)
    assert pf.factor == pytest.approx(1.25, rel=1e-12)
    assert pf.loo_errors[-1] == pytest.approx((1.25 * 0.02 + 1e-4) / (5.0 * 0.02 + 1e-4) - 1)
    assert ProgramFactor.fit([]).factor == 1.0


def test_synthetic_programs_are_reproducible_and_of_both_kinds():
    kinds = []
    for seed in range(PROGRAMS):
        fn, params, x = synthetic_program(seed)
        again = synthetic_program(seed)
        leaves, leaves_again = jax.tree.leaves(params), jax.tree.leaves(again[1])
        assert [p.shape for p in leaves] == [p.shape for p in leaves_again]
        assert all(bool((p == q).all()) for p, q in zip(leaves, leaves_again))
        kinds.append("transformer" if x.ndim == 3 else "cnn")
        assert jax.eval_shape(fn, params, x).shape[0] == x.shape[0]  # it runs: one output row per example
        if x.ndim == 4:  # dense convs keep to the calibration grid's channels: >= 32, multiples of 8
            channels = x.shape[-1]
            for w, _ in params[:-1]:
                _, _, per_group, co = w.shape
                if per_group == channels:  # one group
                    assert co >= 32 and co % 8 == 0, (seed, w.shape)
                channels = co
    assert kinds.count("transformer") == PROGRAMS // TRANSFORMER_EVERY
    assert [i for i, k in enumerate(kinds) if k == "transformer"] == list(range(TRANSFORMER_EVERY - 1, PROGRAMS,
                                                                                TRANSFORMER_EVERY))
