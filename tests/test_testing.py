"""``jaxcost.testing``: cost budgets and snapshots in a user's test suite (the ``jaxcost_snapshot``
fixture of the pytest plugin, ``--jaxcost-update``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from jaxcost.testing import assert_cost

pytest_plugins = ["pytester"]


def _f(x, w):
    return jnp.tanh(x @ w)


ARGS = (jax.ShapeDtypeStruct((8, 32), jnp.float32), jax.ShapeDtypeStruct((32, 16), jnp.float32))


def test_assert_cost_passes_within_budget_and_fails_in_one_line():
    a = assert_cost(_f, *ARGS, flops=2 * 8 * 32 * 16, rel=0.0)
    assert a.compiler.flops == 2 * 8 * 32 * 16
    with pytest.raises(AssertionError, match=r"flops 8,192 is \+100.00% off the budget 4,096 \(allowed ±1.00%\)"):
        assert_cost(_f, *ARGS, flops=4096, rel=0.01)
    assert_cost(_f, *ARGS, params=32 * 16, params_argnums=(1,))


SUITE = """
import jax, jax.numpy as jnp

WIDTH = {width}

def test_cost(jaxcost_snapshot):
    f = lambda x, w: jnp.tanh(x @ w)
    jaxcost_snapshot(f, jax.ShapeDtypeStruct((8, 32), jnp.float32), jax.ShapeDtypeStruct((32, WIDTH), jnp.float32),
                     name="mlp", rel=0.01)
"""


def test_snapshot_catches_a_wider_layer_and_accepts_it_after_update(pytester):
    pytester.makepyfile(test_model=SUITE.format(width=16))
    pytester.runpytest().assert_outcomes(passed=1)  # writes the snapshot
    assert (pytester.path / "__jaxcost__" / "mlp.json").exists()
    pytester.runpytest().assert_outcomes(passed=1)  # unchanged: passes
    pytester.makepyfile(test_model=SUITE.format(width=24))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*moved beyond*snapshot*", "*flops: 8192.0 -> 12288.0*"])
    pytester.runpytest("--jaxcost-update").assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)
