"""The compiler and theory engines over the zoo: jaxcost's per-op pricing of the optimized and
the unoptimized module sums to XLA's totals, the theory engine explains XLA's flops, and the
parameter count is exact.

XLA keeps costs in float32 and sums them instruction by instruction, so its totals of
large modules are rounded. jaxcost's per-op flops are exact integers; their sum must equal
XLA's total up to that rounding (n instructions x 2**-24 relative, a few parts per million),
and bytes within 0.5 %. Below 2**24 nothing rounds and the equality is exact (see
test_compiler_rules.py and test_analyze.py)."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import pytest
from zoo_count import model_macs, param_count

import jaxcost
import models


def _selection() -> list[str]:
    """Every model with JAXCOST_FULL_ZOO=1 (benchmarks/results/zoo_compiler_check.md records that run);
    otherwise the smallest model of each family and every model under 8 M parameters,
    to keep CI within its budget."""
    if os.environ.get("JAXCOST_FULL_ZOO"):
        return models.names()
    first: dict[str, str] = {}
    for name in models.names():
        ref = models.reference(name)
        size = ref.params if ref is not None and ref.params else 0
        fam = models.family(name)
        if fam not in first or size < first[fam][1]:
            first[fam] = (name, size)
    small = [n for n in models.names() if 0 < (getattr(models.reference(n), "params", 0) or 0) < 8e6]
    return sorted({n for n, _ in first.values()} | set(small))


@pytest.mark.parametrize("name", _selection())
def test_ops_reproduce_xla_totals(name):
    model = models.build_abstract(name)
    x = jax.ShapeDtypeStruct((1, *models.input_shape(name)),
                             jnp.int32 if models.family(name) == "transformer" else jnp.float32)
    a = jaxcost.analyze(model, x)
    assert a.params == param_count(model)
    for module, xla in ((a.module, a.compiler), (a.module_unoptimized, a.compiler_unoptimized)):
        exact = sum(op.flops for op in module.ops)
        assert exact == module.total.flops
        assert abs(exact - xla.flops) <= module.rounding_bound(xla.flops)
        # summed XLA's way (float32, post order), the per-op figures give XLA's totals bit for bit
        assert module.xla_total.flops == xla.flops
        assert module.xla_total.transcendentals == xla.transcendentals
        trans = sum(op.transcendentals for op in module.ops)
        assert abs(trans - xla.transcendentals) <= module.rounding_bound(xla.transcendentals)
        assert sum(op.bytes_accessed for op in module.ops) == pytest.approx(xla.bytes_accessed, rel=5e-3)
    assert not [w for w in a.warnings if "no cost rule" in w]

    # the theory engine explains XLA's flops (< 0.5 % unexplained) ...
    assert a.explain().unexplained_fraction < 5e-3
    assert not a.theory.unknown
    # ... and its dense MACs equal an independent count over the same jaxpr
    assert a.theory.totals.macs == model_macs(model, models.input_shape(name))
