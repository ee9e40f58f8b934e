"""A plain conv + dense MAC count over a jaxpr (textbook dense convention).

A deliberately simple, independent cross-check for the model-zoo tests: it does
not use jaxcost's theory engine, so the two can be compared against each other.
"""

from __future__ import annotations

import functools
import math

import jax
from flax import nnx


def _subjaxprs(eqn):
    for v in eqn.params.values():
        for x in v if isinstance(v, (tuple, list)) else (v,):
            if isinstance(x, jax.extend.core.ClosedJaxpr):
                yield x.jaxpr
            elif isinstance(x, jax.extend.core.Jaxpr):
                yield x


def jaxpr_macs(jaxpr) -> int:
    """conv_general_dilated: out elements x (Cin/groups) x kernel taps; dot_general:
    out elements x contracted size. Scans are multiplied by their length."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            out = eqn.outvars[0].aval.shape
            rhs = eqn.invars[1].aval.shape
            o_dim = eqn.params["dimension_numbers"].rhs_spec[0]
            total += math.prod(out) * math.prod(rhs) // rhs[o_dim]
        elif name == "dot_general":
            (lc, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lc)
        else:
            mult = eqn.params.get("length", 1) if name == "scan" else 1
            for sub in _subjaxprs(eqn):
                total += mult * jaxpr_macs(sub)
    return total


def model_macs(model: nnx.Module, input_shape, batch: int = 1) -> int:
    """MACs of ``model`` (abstract or concrete) on one batch of ``input_shape``."""
    graphdef, state = nnx.split(model)
    x = jax.ShapeDtypeStruct((batch, *input_shape), jax.numpy.float32)
    jaxpr = jax.make_jaxpr(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
    return jaxpr_macs(jaxpr.jaxpr)


def param_count(model: nnx.Module) -> int:
    """Exact number of scalars in the model's ``nnx.Param`` leaves."""
    return sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


@functools.cache
def measure(name: str) -> tuple[int, int, tuple[int, ...]]:
    """(params, MACs, output shape) of zoo model ``name`` built abstractly at its example input."""
    import models

    with models.fast_abstract_tracing():
        model = nnx.eval_shape(lambda: models.build(name))
        shape = models.input_shape(name)
        graphdef, state = nnx.split(model)
        out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state,
                             jax.ShapeDtypeStruct((1, *shape), jax.numpy.float32))
        return param_count(model), model_macs(model, shape), out.shape


def check_reference(name: str) -> None:
    """Assert that zoo model ``name`` reproduces its registered reference: the parameter count
    exactly (within ``tolerance`` for a rounded figure), conv + linear MACs within 0.5 % of an
    exact source (2 % of a rounded one, whose MACs may also count BN / ReLU / pooling), and
    (1, 1000) logits."""
    import models

    ref = models.reference(name)
    assert ref is not None and ref.source
    params, macs, out_shape = measure(name)
    if ref.params_exact:
        assert params == ref.params, (name, params, ref.params, ref.source)
        mac_tol = 0.005
    else:
        assert abs(params / ref.params - 1) <= ref.tolerance, (name, params, ref.params, ref.source)
        mac_tol = 0.02
    assert abs(macs / ref.macs - 1) <= mac_tol, (name, macs, ref.macs, ref.source)
    assert out_shape == (1, 1000)


def random_model(name: str, **options) -> nnx.Module:
    """Zoo model ``name`` with random weights (0.05-scaled normals) and BN statistics of one,
    filled into an abstract build: much cheaper on CPU than running the initialisers."""
    import numpy as np

    import models

    with models.fast_abstract_tracing():
        model = nnx.eval_shape(lambda: models.build(name, **options))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda a: jax.numpy.asarray(0.05 * rng.standard_normal(a.shape), a.dtype), params)
    rest = jax.tree.map(lambda a: jax.numpy.ones(a.shape, a.dtype), rest)  # BN mean / var
    return nnx.merge(graphdef, params, rest)
