"""Tests for jaxcost.transforms.fold_bn.fold_batchnorm (BatchNorm folding into Conv/Linear)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen, nnx

import jaxcost
from jaxcost.transforms.fold_bn import (
    REASON_AFTER_OP,
    REASON_BEFORE_CONV,
    REASON_CONSUMERS,
    REASON_TRAINING,
    FoldResult,
    Identity,
    fold_batchnorm,
)


def n_params(m) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(m, nnx.Param)))


def fast_init(ctor, seed=0):
    """``ctor()`` with host-random weights: ``nnx.eval_shape`` then numpy fills
    (He-scaled kernels).  Much faster on a shared CPU than the real initialisers,
    which compile one small XLA kernel per parameter shape."""
    rng = np.random.default_rng(seed)
    graphdef, state = nnx.split(nnx.eval_shape(ctor))

    def fill(s):
        if jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key):
            return jax.random.key(seed)
        if not jnp.issubdtype(s.dtype, jnp.floating):
            return jnp.zeros(s.shape, s.dtype)
        fan_in = int(np.prod(s.shape[:-1])) if len(s.shape) > 1 else 1
        std = np.sqrt(2.0 / fan_in) if len(s.shape) > 1 else 0.1
        return jnp.asarray(np.float32(std) * rng.standard_normal(s.shape, np.float32), s.dtype)

    return nnx.merge(graphdef, jax.tree.map(fill, state))


def randomize_bn(model, seed=0):
    """Give every BatchNorm non-trivial statistics, scale and bias (in place; host RNG,
    so no per-shape XLA compiles)."""
    rng = np.random.default_rng(seed)
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.BatchNorm):
            shape = node.mean.get_value().shape
            node.mean.set_value(jnp.asarray(0.5 * rng.standard_normal(shape), jnp.float32))
            node.var.set_value(jnp.asarray(rng.uniform(0.5, 2.0, shape), jnp.float32))
            if node.scale is not None:
                node.scale.set_value(jnp.asarray(rng.uniform(0.5, 1.5, shape), jnp.float32))
            if node.bias is not None:
                node.bias.set_value(jnp.asarray(0.3 * rng.standard_normal(shape), jnp.float32))
    return model


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def check_equivalent(model, x, res: FoldResult, tol=1e-5):
    ref = model(x)
    out = res.model(x)
    assert rel_err(out, ref) < tol
    assert n_params(res.model) == n_params(model) - res.params_removed + res.params_added


def bn(c, rngs, ura=True):
    return nnx.BatchNorm(c, use_running_average=ura, rngs=rngs)


class ConvBNReLU(nnx.Module):
    def __init__(self, rngs, use_bias=False):
        self.conv = nnx.Conv(3, 8, (3, 3), use_bias=use_bias, rngs=rngs)
        self.bn = bn(8, rngs)
        self.conv2 = nnx.Conv(8, 4, (3, 3), strides=2, use_bias=True, rngs=rngs)
        self.bn2 = bn(4, rngs)

    def __call__(self, x):
        x = jax.nn.relu(self.bn(self.conv(x)))
        return jax.nn.relu(self.bn2(self.conv2(x)))


class ConvReLUBN(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), use_bias=False, rngs=rngs)
        self.bn = bn(8, rngs)

    def __call__(self, x):
        return self.bn(jax.nn.relu(self.conv(x)))


class BNConv(nnx.Module):
    def __init__(self, rngs):
        self.bn = bn(3, rngs)
        self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)

    def __call__(self, x):
        return self.conv(self.bn(x))


class LinearBN(nnx.Module):
    def __init__(self, rngs):
        self.fc = nnx.Linear(6, 16, rngs=rngs)
        self.bn = bn(16, rngs)
        self.fc2 = nnx.Linear(16, 5, use_bias=False, rngs=rngs)
        self.bn2 = bn(5, rngs)

    def __call__(self, x):
        return self.bn2(self.fc2(jax.nn.relu(self.bn(self.fc(x)))))


class TrainBN(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
        self.bn = bn(8, rngs, ura=False)
        self.conv2 = nnx.Conv(8, 8, (1, 1), rngs=rngs)
        self.bn2 = bn(8, rngs)

    def __call__(self, x):
        return self.bn2(self.conv2(self.bn(self.conv(x))))


class Depthwise(nnx.Module):
    def __init__(self, rngs):
        self.pw = nnx.Conv(4, 12, (1, 1), use_bias=False, rngs=rngs)
        self.bn1 = bn(12, rngs)
        self.dw = nnx.Conv(12, 12, (3, 3), feature_group_count=12, use_bias=False, rngs=rngs)
        self.bn2 = bn(12, rngs)
        self.gc = nnx.Conv(12, 6, (3, 3), feature_group_count=3, use_bias=True, rngs=rngs)
        self.bn3 = bn(6, rngs)

    def __call__(self, x):
        x = jax.nn.relu6(self.bn1(self.pw(x)))
        x = jax.nn.relu6(self.bn2(self.dw(x)))
        return self.bn3(self.gc(x))


class SharedOutput(nnx.Module):
    """The conv output feeds the BN *and* a residual add: not foldable."""

    def __init__(self, rngs):
        self.conv = nnx.Conv(3, 3, (3, 3), rngs=rngs)
        self.bn = bn(3, rngs)

    def __call__(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def _x(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def test_conv_bn_relu_folds():
    m = randomize_bn(fast_init(lambda: ConvBNReLU(nnx.Rngs(0))))
    before = jax.tree.map(lambda a: np.asarray(a).copy(), nnx.state(m))
    x = _x((2, 9, 9, 3))
    res = fold_batchnorm(m, x)
    assert res.folded == [("conv", "bn"), ("conv2", "bn2")]
    assert res.skipped == []
    assert isinstance(res.model.bn, Identity) and isinstance(res.model.bn2, Identity)
    assert res.model.conv.use_bias and res.model.conv.bias is not None
    assert res.params_removed == 2 * 8 + 2 * 4
    assert res.params_added == 8  # conv had no bias, conv2 had one
    check_equivalent(m, x, res)
    # the input model is untouched
    assert isinstance(m.bn, nnx.BatchNorm) and m.conv.bias is None
    after = nnx.state(m)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


def test_abstract_inputs_and_default_input():
    m = randomize_bn(fast_init(lambda: ConvBNReLU(nnx.Rngs(0))))
    res = fold_batchnorm(m, jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32))
    assert len(res.folded) == 2
    check_equivalent(m, _x((1, 8, 8, 3)), res)
    assert fold_batchnorm(m).folded == res.folded  # input guessed from the first conv


def test_conv_relu_bn_skipped():
    m = randomize_bn(fast_init(lambda: ConvReLUBN(nnx.Rngs(0))))
    res = fold_batchnorm(m, _x((1, 8, 8, 3)))
    assert res.folded == []
    assert len(res.skipped) == 1
    path, reason = res.skipped[0]
    assert path == "bn" and reason.startswith(REASON_AFTER_OP)
    assert "relu" in reason
    assert res.params_removed == res.params_added == 0
    check_equivalent(m, _x((1, 8, 8, 3)), res)


def test_bn_before_conv_skipped():
    m = randomize_bn(fast_init(lambda: BNConv(nnx.Rngs(0))))
    res = fold_batchnorm(m, _x((1, 8, 8, 3)))
    assert res.folded == [] and res.skipped == [("bn", REASON_BEFORE_CONV)]


def test_linear_bn():
    m = randomize_bn(fast_init(lambda: LinearBN(nnx.Rngs(0))))
    x = _x((4, 6))
    res = fold_batchnorm(m, x)
    assert res.folded == [("fc", "bn"), ("fc2", "bn2")]
    assert res.params_added == 5 and res.params_removed == 2 * 16 + 2 * 5
    check_equivalent(m, x, res)


def test_training_mode_skipped():
    m = randomize_bn(fast_init(lambda: TrainBN(nnx.Rngs(0))))
    x = _x((2, 6, 6, 3))
    mean0 = np.asarray(m.bn.mean.get_value()).copy()
    res = fold_batchnorm(m, x)
    assert res.folded == [("conv2", "bn2")]
    assert res.skipped == [("bn", REASON_TRAINING)]
    # the training-mode BN was not updated by the trace (input not mutated)
    assert np.array_equal(np.asarray(m.bn.mean.get_value()), mean0)
    check_equivalent(m, x, res)


def test_depthwise_and_grouped_conv():
    m = randomize_bn(fast_init(lambda: Depthwise(nnx.Rngs(0))))
    x = _x((2, 7, 7, 4))
    res = fold_batchnorm(m, x)
    assert res.folded == [("pw", "bn1"), ("dw", "bn2"), ("gc", "bn3")]
    assert res.params_added == 24
    check_equivalent(m, x, res)


def test_conv_output_with_other_consumers_skipped():
    m = randomize_bn(fast_init(lambda: SharedOutput(nnx.Rngs(0))))
    res = fold_batchnorm(m, _x((1, 5, 5, 3)))
    assert res.folded == [] and res.skipped == [("bn", REASON_CONSUMERS)]


def test_abstract_model_raises():
    abstract = nnx.eval_shape(lambda: ConvBNReLU(nnx.Rngs(0)))
    with pytest.raises(ValueError, match="real weights"):
        fold_batchnorm(abstract, jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32))


# --- the zoo -----------------------------------------------------------------

models = pytest.importorskip("models")


def fast_build(name, seed=0):
    return fast_init(lambda: models.build(name, rngs=nnx.Rngs(0)), seed)


def _zoo(name, hw=64):
    if name not in models.names():
        pytest.skip(f"{name} not registered in the zoo yet")
    m = randomize_bn(fast_build(name))
    x = _x((1, hw, hw, models.input_shape(name)[-1]))
    return m, x


def test_resnet50():
    m, x = _zoo("resnet50")
    res = fold_batchnorm(m, x)
    assert len(res.folded) == 53
    assert res.skipped == []
    check_equivalent(m, x, res)
    assert n_params(res.model) == n_params(m) - res.params_removed + res.params_added


@pytest.mark.parametrize("name", ["mobilenet_v2", "vgg16_bn", "densenet121"])
def test_zoo_param_identity(name):
    m, _ = _zoo(name)
    res = fold_batchnorm(m, jax.ShapeDtypeStruct((1, *models.input_shape(name)), jnp.float32))
    assert res.folded
    assert n_params(res.model) == n_params(m) - res.params_removed + res.params_added


# --- linen -------------------------------------------------------------------


class LinenBlock(linen.Module):
    """Conv-BN-ReLU (conv without bias), Conv(bias)-BN, Conv-ReLU-BN, Dense-BN, and a
    training-mode BN: every case the pair finder distinguishes."""

    @linen.compact
    def __call__(self, x, train: bool = False):
        x = linen.relu(linen.BatchNorm(use_running_average=True, name="bn1")(
            linen.Conv(8, (3, 3), use_bias=False, name="conv1")(x)))
        x = linen.BatchNorm(use_running_average=True, name="bn2")(
            linen.Conv(8, (3, 3), strides=2, name="conv2")(x))
        x = linen.relu(linen.BatchNorm(use_running_average=True, name="bn3")(
            linen.relu(linen.Conv(4, (1, 1), use_bias=False, name="conv3")(x))))
        x = linen.BatchNorm(use_running_average=not train, name="bn4")(
            linen.Conv(4, (3, 3), feature_group_count=4, use_bias=False, name="dw")(x))
        x = x.mean(axis=(1, 2))
        return linen.BatchNorm(use_running_average=True, name="bn5")(linen.Dense(5, name="fc")(x))


def linen_variables(module, x, seed=0):
    """Real variables from the abstract shapes, filled on the host (no per-shape XLA init)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x))

    def fill(path, s):
        name = path[-1].key
        if name == "var":
            return jnp.asarray(rng.uniform(0.5, 2.0, s.shape), s.dtype)
        if name == "scale":
            return jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype)
        return jnp.asarray(0.5 * rng.standard_normal(s.shape), s.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def n_linen_params(variables) -> int:
    return sum(int(np.size(v)) for v in jax.tree.leaves(variables.get("params", {})))


def test_linen_folds_with_apply_and_variables():
    module = LinenBlock()
    x = _x((2, 9, 9, 3))
    v = linen_variables(module, x)
    res = fold_batchnorm(module.apply, v, x)
    assert res.model is None
    assert res.folded == [("conv1", "bn1"), ("conv2", "bn2"), ("dw", "bn4"), ("fc", "bn5")]
    assert res.skipped == [("bn3", f"{REASON_AFTER_OP}: input comes from custom_jvp_call[relu]")]
    # BN scale+bias removed (8+8+4+5 channels), biases created on conv1 and dw (8+4)
    assert res.params_removed == 2 * (8 + 8 + 4 + 5) and res.params_added == 8 + 4
    assert n_linen_params(res.variables) == n_linen_params(v) - res.params_removed + res.params_added
    assert "bn1" not in res.variables["params"] and "bn1" not in res.variables["batch_stats"]
    assert "bn3" in res.variables["batch_stats"]
    assert rel_err(res.apply_fn(res.variables, x), module.apply(v, x)) < 1e-5
    # the original variables are untouched
    assert "bn1" in v["params"] and "bias" not in v["params"]["conv1"]


def test_linen_module_argument_and_training_mode():
    module = LinenBlock()
    x = _x((2, 9, 9, 3))
    v = linen_variables(module, x)
    res = fold_batchnorm(module, v, x, train=True)  # the Module itself; kwargs reach apply
    assert ("bn4", REASON_TRAINING) in res.skipped and ("dw", "bn4") not in res.folded
    ref, _ = module.apply(v, x, train=True, mutable=["batch_stats"])
    out, _ = res.apply_fn(res.variables, x, train=True, mutable=["batch_stats"])
    assert rel_err(out, ref) < 1e-5


def test_linen_folded_model_costs_less():
    module = LinenBlock()
    x = _x((2, 9, 9, 3))
    v = linen_variables(module, x)
    res = fold_batchnorm(module, v, x)
    before = jaxcost.analyze(module.apply, v, x, params_argnums=(0,), theory=False)
    after = jaxcost.analyze(res.apply_fn, res.variables, x, params_argnums=(0,), theory=False)
    assert after.compiler.flops < before.compiler.flops
    assert after.compiler.bytes_accessed < before.compiler.bytes_accessed
    assert after.params == before.params - res.params_removed + res.params_added - sum(
        int(np.size(s)) for k, s in jax.tree_util.tree_leaves_with_path(v["batch_stats"])
        if any(getattr(p, "key", None) in {"bn1", "bn2", "bn4", "bn5"} for p in k))


def test_linen_errors():
    module = LinenBlock()
    x = _x((2, 9, 9, 3))
    abstract = jax.eval_shape(lambda: module.init(jax.random.key(0), x))
    with pytest.raises(ValueError, match="real weights"):
        fold_batchnorm(module, abstract, x)
    with pytest.raises(ValueError, match="example inputs"):
        fold_batchnorm(module, linen_variables(module, x))
    with pytest.raises(TypeError, match="variables dict"):
        fold_batchnorm(module.apply, x)
