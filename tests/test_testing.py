"""``jaxcost.testing``: cost budgets and snapshots in a user's test suite (the ``jaxcost_snapshot``
fixture of the pytest plugin, ``--jaxcost-update``)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import pytest

from jaxcost.testing import assert_cost

pytest_plugins = ["pytester"]


def _f(x, w):
    return jnp.tanh(x @ w)


ARGS = (jax.ShapeDtypeStruct((8, 32), jnp.float32), jax.ShapeDtypeStruct((32, 16), jnp.float32))


def test_assert_cost_passes_within_budget_and_fails_in_one_line():
    a = assert_cost(_f, *ARGS, flops=2 * 8 * 32 * 16, params=32 * 16, params_argnums=(1,))
    assert a.compiler.flops == 8192 and a.theory is None  # budgets skip the theory engine
    nbytes = a.compiler.bytes_accessed
    assert nbytes == 4 * (8 * 32 + 32 * 16 + 8 * 16) + 4 * 2 * 8 * 16  # the dot, then tanh on its output
    assert_cost(_f, *ARGS, bytes_accessed=nbytes * 1.01, rel=0.01)
    with pytest.raises(AssertionError) as e:
        assert_cost(_f, *ARGS, flops=4096, rel=0.01)
    assert str(e.value) == "_f: flops is 8,192, budget 4,096: +100.00% (allowed ±1.00%)"
    with pytest.raises(AssertionError, match=r"^_f: params is 0, budget 512: -100.00% \(allowed ±0.00%\)$"):
        assert_cost(_f, *ARGS, params=512)  # w not marked as parameters
    with pytest.raises(ValueError, match="needs a budget"):
        assert_cost(_f, *ARGS)


SUITE = """
import jax, jax.numpy as jnp
from flax import nnx

WIDTH = {width}


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.fc1 = nnx.Linear(32, WIDTH, rngs=rngs)
        self.fc2 = nnx.Linear(WIDTH, 10, rngs=rngs)

    def __call__(self, x):
        return self.fc2(jax.nn.relu(self.fc1(x)))


def test_cost(jaxcost_snapshot):
    model = nnx.eval_shape(lambda: MLP(nnx.Rngs(0)))
    jaxcost_snapshot(model, jax.ShapeDtypeStruct((8, 32), jnp.float32), name="mlp", rel=0.01)
"""


def test_snapshot_catches_a_wider_layer_and_accepts_it_after_update(pytester):
    def run(*args):  # in process; hypothesis' plugin would re-import hypothesis on every run (1.5 s)
        return pytester.runpytest("-p", "no:hypothesispytest", *args)

    pytester.makepyfile(test_model=SUITE.format(width=16))
    result = run()  # no snapshot yet: written, and the test fails once
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MLP: no cost snapshot at *__jaxcost__/mlp.json; written now: commit it*"])
    snapshot = json.loads((pytester.path / "__jaxcost__" / "mlp.json").read_text())
    assert snapshot["totals"]["params"] == 32 * 16 + 16 + 16 * 10 + 10
    assert set(snapshot["layers"]) == {"|forward", "fc1|forward", "fc2|forward"}
    run().assert_outcomes(passed=1)  # unchanged: passes

    pytester.makepyfile(test_model=SUITE.format(width=24))  # the deliberate regression
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MLP moved beyond ±1.00% of its cost snapshot*--jaxcost-update to accept:",
                                 "*params: 698 -> 1,042 (+49.28%)",  # 32*W + W + W*10 + 10
                                 "*flops: 11,088 -> 16,592 (+49.64%)",  # dots 2*8*42*W, bias adds, ReLU, bias adds
                                 "*bytes_accessed: 6,824 -> 9,224 (+35.17%)",
                                 "*layer fc1|forward: flops 8,320 -> 12,480 (+50.00%), *params 528 -> 792 (+50.00%)"])
    run("--jaxcost-update").assert_outcomes(passed=1)
    run().assert_outcomes(passed=1)  # the new snapshot holds
