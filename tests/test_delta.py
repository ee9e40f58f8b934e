"""``jaxcost.delta`` / ``jaxcost diff``: what changed between two analyses or JSON reports, and
``--fail-above`` for CI."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

import jaxcost
from jaxcost.cli.main import main

X = jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32)


class ConvBN(nnx.Module):
    def __init__(self, rngs):
        self.conv1 = nnx.Conv(3, 16, (3, 3), use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(16, use_running_average=True, rngs=rngs)
        self.conv2 = nnx.Conv(16, 16, (3, 3), use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(16, use_running_average=True, rngs=rngs)

    def __call__(self, x):
        return self.bn2(self.conv2(jax.nn.relu(self.bn1(self.conv1(x))))).mean((1, 2))


def mlp(hidden: int):
    def f(x, w1, w2):
        return jnp.tanh(x @ w1) @ w2

    args = (jax.ShapeDtypeStruct((8, 64), jnp.float32), jax.ShapeDtypeStruct((64, hidden), jnp.float32),
            jax.ShapeDtypeStruct((hidden, 10), jnp.float32))
    return jaxcost.analyze(f, *args, params_argnums=(1, 2), name=f"mlp{hidden}")


def test_bn_folding_shows_as_removed_layers_and_saved_bytes():
    model = ConvBN(nnx.Rngs(0))
    folded = jaxcost.fold_batchnorm(model, X).model
    a, b = jaxcost.analyze(model, X), jaxcost.analyze(folded, X)
    d = jaxcost.delta(a, b)
    assert {p for p, _ in d.removed} == {"bn1", "bn2"}
    params = d.total("params")
    assert (params.before, params.after) == (3 * 3 * 3 * 16 + 3 * 3 * 16 * 16 + 4 * 16, 3 * 3 * 3 * 16 + 3 * 3 * 16 * 16 + 32)
    saved = d.total("bytes accessed (lowered)")
    assert saved.after < saved.before
    assert "bn1" in d.summary(print_=False)


def test_json_reports_and_fail_above(tmp_path, capsys):
    a, wide = mlp(64), mlp(72)
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    a.to_json(pa)
    wide.to_json(pb)
    d = jaxcost.delta(pa, wide)  # a path and an Analysis mix
    flops = d.total("XLA flops (optimized)")
    assert flops.rel == (wide.compiler.flops - a.compiler.flops) / a.compiler.flops
    assert [c.what for c in d.regressions(0.05)] == ["params", "XLA flops (optimized)", "XLA flops (lowered)",
                                                     "bytes accessed (optimized)", "bytes accessed (lowered)",
                                                     "theory flops (XLA convention)"]
    assert main(["diff", str(pa), str(pb), "--fail-above", "5%"]) == 1
    assert main(["diff", str(pa), str(pa), "--fail-above", "5%"]) == 0
    assert main(["diff", str(pa), str(pb), "--fail-above", "50%"]) == 0
    assert main(["diff", str(pa), str(tmp_path / "missing.json")]) == 2
    assert main(["diff", str(pa), str(pb), "--fail-above", "lots"]) == 2
