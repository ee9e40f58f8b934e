"""What analyze() is given: the pure program a Target builds must be the program the
user runs (training mode, sharding, NNX training steps), with abstract inputs only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import linen, nnx

import jaxcost
from jaxcost.errors import AnalysisError
from jaxcost.target import make_target

X = jax.ShapeDtypeStruct((4, 16, 16, 3), jnp.float32)
Y = jax.ShapeDtypeStruct((4, 10), jnp.float32)
CNN_PARAMS = {"conv": 3 * 3 * 3 * 8 + 8, "bn": 2 * 8, "fc": 8 * 16 * 16 * 10 + 10}  # 224, 16, 20490


def compiled(target):
    return jax.jit(target.fn, static_argnums=target.static_argnums).lower(*target.args).compile()


def flops(c) -> float:
    return c.cost_analysis()["flops"]


class LinenCNN(linen.Module):
    @linen.compact
    def __call__(self, x, train: bool):  # no default: `train` must reach init and apply
        x = linen.Conv(8, (3, 3))(x)
        x = linen.BatchNorm(use_running_average=not train)(x)
        x = linen.Dropout(0.5, deterministic=not train)(x)
        return linen.Dense(10)(x.reshape(x.shape[0], -1))


class CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.fc = nnx.Linear(8 * 16 * 16, 10, rngs=rngs)

    def __call__(self, x):
        x = self.drop(nnx.relu(self.bn(self.conv(x))))
        return self.fc(x.reshape(x.shape[0], -1))


def train_step(model, optimizer, x, y):
    def loss_fn(model):
        return ((model(x) - y) ** 2).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


@pytest.fixture(scope="module")
def abstract_cnn():
    model = nnx.eval_shape(lambda: CNN(nnx.Rngs(0)))
    optimizer = nnx.eval_shape(lambda m: nnx.Optimizer(m, optax.adam(1e-3), wrt=nnx.Param), model)
    return model, optimizer


# ---------------------------------------------------------------- linen keyword arguments


def test_linen_train_mode_is_the_program_apply_runs():
    key = jax.eval_shape(lambda: jax.random.key(0))
    variables = jax.eval_shape(lambda k: LinenCNN().init(k, jnp.zeros(X.shape), train=False), key)
    train = make_target(LinenCNN(), (X,), {"train": True})
    evals = make_target(LinenCNN(), (X,), {"train": False})
    ref_train = jax.jit(lambda v, k, x: LinenCNN().apply(v, x, train=True, rngs={"dropout": k},
                                                         mutable=["batch_stats"])).lower(variables, key, X)
    ref_eval = jax.jit(lambda v, x: LinenCNN().apply(v, x, train=False)).lower(variables, X)
    c_train, c_eval = compiled(train), compiled(evals)
    assert flops(c_train) == flops(ref_train.compile()) == 1119290.0  # dropout + batch statistics
    assert flops(c_eval) == flops(ref_eval.compile()) == 602936.0
    # the running mean and variance it updates are outputs (eval mode writes nothing)
    logits, stats = jax.eval_shape(train.fn, *train.args)
    assert (logits.shape, [s.shape for s in stats]) == ((4, 10), [(8,), (8,)])
    assert jax.eval_shape(evals.fn, *evals.args).shape == (4, 10)
    assert train.params_by_layer == {"LinenCNN/Conv_0": 224, "LinenCNN/BatchNorm_0": 16, "LinenCNN/Dense_0": 20490}
    assert train.describe_inputs() == "float32[4, 16, 16, 3]"


# ---------------------------------------------------------------- sharded concrete arrays

SHARDED = textwrap.dedent("""
    import json, jax, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from jaxcost.target import make_target
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
    x = jax.device_put(np.ones((16, 64), np.float32), NamedSharding(mesh, P("data", "model")))
    w = jax.device_put(np.ones((64, 32), np.float32), NamedSharding(mesh, P("model", None)))
    t = make_target(lambda x, w: x @ w, (x, w), {}, params_argnums=(1,))
    c = jax.jit(t.fn).lower(*t.args).compile()
    text = c.as_text()
    print("RESULT", json.dumps({"devices": len(jax.devices()), "flops": c.cost_analysis()["flops"],
          "spec": list(t.args[0].sharding.spec), "all_reduces": text.count("all-reduce("),
          "x_block": "f32[8,16]" in text, "w_block": "f32[16,32]" in text, "params": t.params}))
""")


def test_concrete_sharded_arrays_keep_their_sharding():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    line = [s for s in run.stdout.splitlines() if s.startswith("RESULT")]
    assert line, run.stderr[-2000:]
    # per device: an [8,16] x [16,32] block product (2*8*16*32 = 8192 flops), then the
    # all-reduce of the [8,32] partial sums over "model" (256 adds); unsharded it would be 65536.
    assert json.loads(line[0].removeprefix("RESULT ")) == {
        "devices": 8, "flops": 8448.0, "spec": ["data", "model"], "all_reduces": 1,
        "x_block": True, "w_block": True, "params": 2048}


# ---------------------------------------------------------------- inputs, dtypes, param_dtype


def test_inputs_are_the_non_parameter_arguments():
    params = {"w": jax.ShapeDtypeStruct((3, 5), jnp.float32)}
    x = jax.ShapeDtypeStruct((2, 3), jnp.bfloat16)
    t = make_target(lambda x, p: x @ p["w"].astype(x.dtype), (x, params), {}, params_argnums=(1,))
    assert t.describe_inputs() == "bfloat16[2, 3]"
    assert (t.input_dtypes, t.param_dtypes, t.params, t.param_bytes) == (("bfloat16",), ("float32",), 15, 60)
    cast = make_target(lambda x, p: x @ p["w"], (x, params), {}, params_argnums=(1,), param_dtype="bfloat16")
    assert (cast.param_dtypes, cast.param_bytes) == (("bfloat16",), 30)
    assert "f32" not in jax.jit(cast.fn).lower(*cast.args).as_text()


def test_nnx_inputs_exclude_state_and_param_dtype_gives_an_all_bf16_program():
    model = nnx.eval_shape(lambda: nnx.Linear(6, 4, rngs=nnx.Rngs(0)))
    x = jax.ShapeDtypeStruct((2, 6), jnp.bfloat16)
    t = make_target(model, (x,), {})
    assert (t.describe_inputs(), t.input_dtypes, t.param_dtypes) == ("bfloat16[2, 6]", ("bfloat16",), ("float32",))
    assert "f32" in jax.jit(t.fn).lower(*t.args).as_text()  # promoted to the float32 parameters
    bf = make_target(model, (x,), {}, param_dtype=jnp.bfloat16)
    assert (bf.param_dtypes, bf.params, bf.param_bytes) == (("bfloat16",), 28, 56)
    assert "f32" not in jax.jit(bf.fn).lower(*bf.args).as_text()


def test_linen_param_dtype():
    t = make_target(LinenCNN(), (X.update(dtype=jnp.bfloat16),), {"train": False}, param_dtype="bfloat16")
    assert t.param_dtypes == ("bfloat16",) and t.params == 20730


# ---------------------------------------------------------------- NNX training steps


def test_nnx_train_step_is_what_nnx_jit_compiles(abstract_cnn):
    model, optimizer = abstract_cnn
    reference = nnx.jit(train_step).lower(model, optimizer, X, Y).compile()
    t = make_target(train_step, (model, optimizer, X, Y), {})
    c = compiled(t)
    assert flops(c) == flops(reference) == 2360959.0  # forward only would be 1127516
    assert t.kind == "nnx-function"
    assert t.params_by_layer == CNN_PARAMS and t.params == 20730
    # Adam: two moments per parameter, its int32 count, and the optimizer's uint32 step
    assert (t.optimizer_state, t.optimizer_state_bytes) == (2 * 20730 + 2, 2 * 20730 * 4 + 4 + 4)
    assert t.describe_inputs() == "float32[4, 16, 16, 3], float32[4, 10]"
    # the state it writes is returned: parameters and both Adam moments (3 x 20730), Adam's
    # count, the step, the batch statistics (2 x 8) and the dropout RNG count. (nnx.jit also
    # copies out the one array the step leaves untouched, the RNG key.)
    loss, updates = jax.eval_shape(t.fn, *t.args)
    assert (loss.shape, len(updates)) == ((), 23)
    assert sum(u.size for u in updates) == 3 * 20730 + 1 + 1 + 16 + 1


def test_nnx_train_step_names_layers_forward_and_backward(abstract_cnn):
    model, optimizer = abstract_cnn
    t = make_target(train_step, (model, optimizer, X, Y), {})
    text = jax.jit(t.fn).lower(*t.args).as_text(dialect="hlo", debug_info=True)
    names = set(re.findall(r'op_name="jit\(train_step\)/([^"]*)/[a-z_]+"', text))
    assert {"jvp(conv)", "jvp(bn)", "jvp(fc)", "transpose(jvp(conv))", "transpose(jvp(fc))"} <= names


def test_user_objects_are_left_untouched(abstract_cnn):
    model, optimizer = abstract_cnn
    make_target(train_step, (model, optimizer, X, Y), {})
    assert not hasattr(model.conv, "_jaxcost_path")
    assert isinstance(model.conv.kernel.get_value(), jax.ShapeDtypeStruct)


def test_nnx_jit_wrapped_step_is_the_same_program_and_jax_jit_is_refused(abstract_cnn):
    model, optimizer = abstract_cnn
    t = make_target(nnx.jit(train_step), (model, optimizer, X, Y), {})
    assert flops(compiled(t)) == 2360959.0
    t = make_target(jax.jit(train_step), (model, optimizer, X, Y), {})
    with pytest.raises(AnalysisError, match="wrapped in jax.jit, which drops the 23 state arrays"):
        jax.jit(t.fn).trace(*t.args)


class Noisy(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.fc = nnx.Linear(32, 32, rngs=rngs)
        self.drop = nnx.Dropout(0.5)

    def __call__(self, x, *, rngs=None, train=False):
        return self.drop(self.fc(x), deterministic=not train, rngs=rngs)


def test_nnx_module_with_keyword_arguments_and_rngs():
    model = nnx.eval_shape(lambda: Noisy(nnx.Rngs(0)))
    x = jax.ShapeDtypeStruct((8, 32), jnp.float32)
    rngs = nnx.Rngs(dropout=1)
    train = make_target(model, (x,), {"rngs": rngs, "train": True})
    evals = make_target(model, (x,), {"train": False})
    ref = nnx.jit(lambda m, x, r: m(x, rngs=r, train=True)).lower(model, x, rngs).compile()
    assert flops(compiled(train)) == flops(ref)
    assert flops(compiled(evals)) == 2 * 8 * 32 * 32 + 8 * 32  # matmul + bias only
    assert flops(compiled(train)) > flops(compiled(evals))
    assert train.describe_inputs() == "float32[8, 32]" and train.params_by_layer == {"fc": 32 * 32 + 32}


def test_eval_mode_nnx_module_returns_only_its_output():
    model = nnx.eval_shape(lambda: CNN(nnx.Rngs(0)))
    model.eval()
    t = make_target(model, (X,), {})
    assert jax.eval_shape(t.fn, *t.args).shape == (4, 10)
    assert flops(compiled(t)) == flops(nnx.jit(lambda m, x: m(x)).lower(model, X).compile())


def test_nnx_object_as_static_argument_is_refused(abstract_cnn):
    model, _ = abstract_cnn
    with pytest.raises(AnalysisError, match="cannot be static"):
        make_target(lambda m, x: m(x), (model, X), {}, static_argnums=(0,))


def test_several_modules_are_named_after_their_argument():
    a = nnx.eval_shape(lambda: nnx.Linear(4, 4, rngs=nnx.Rngs(0)))
    b = nnx.eval_shape(lambda: nnx.Linear(4, 2, rngs=nnx.Rngs(1)))

    def chain(pair, x):
        return pair[1](pair[0](x))

    t = make_target(chain, ((a, b), jax.ShapeDtypeStruct((3, 4), jnp.float32)), {})
    assert t.params_by_layer == {"pair/0": 20, "pair/1": 10}
    text = jax.jit(t.fn).lower(*t.args).as_text(dialect="hlo", debug_info=True)
    assert {"pair/0", "pair/1"} <= set(re.findall(r'op_name="jit\(chain\)/(pair/\d)/dot_general"', text))


def test_array_keyword_arguments_are_inputs_not_constants():
    w = jnp.ones((4, 2), jnp.float32)  # concrete: closed over, XLA could fold it
    t = make_target(lambda x, *, w, scale: scale * x @ w, (jax.ShapeDtypeStruct((3, 4), jnp.float32),),
                    {"w": w, "scale": 2.0})
    assert t.describe_inputs() == "float32[3, 4], float32[4, 2]"
    hlo = jax.jit(t.fn).lower(*t.args).as_text(dialect="hlo")
    assert hlo.count("parameter(") == 2 and "constant(2)" in hlo


def test_shape_error_names_the_failing_layer_and_the_inputs():
    from jaxcost.target import describe_expectation

    model = nnx.eval_shape(lambda: CNN(nnx.Rngs(0)))
    t = make_target(model, (jax.ShapeDtypeStruct((4, 16, 16, 5), jnp.float32),), {})
    with pytest.raises(ValueError, match="5 // 1 != 3"):
        jax.jit(t.fn).trace(*t.args)
    assert describe_expectation(*t.failures[0]) == "conv (Conv) expects 3 input channels on the last axis"
    assert t.describe_inputs() == "float32[4, 16, 16, 5]"


def test_subclass_inheriting_call_gets_its_own_scope():
    """A module class that inherits ``__call__`` still opens its named scope (its own adds and
    ReLUs keep their layer path), and the classes are restored afterwards."""
    class Block(nnx.Module):
        def __init__(self, rngs):
            self.fc = nnx.Linear(8, 8, rngs=rngs)

        def __call__(self, x):
            return nnx.relu(self.fc(x)) + x

    class Child(Block):
        pass

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.a = Block(rngs)
            self.b = Child(rngs)

        def __call__(self, x):
            return self.b(self.a(x))

    model = nnx.eval_shape(lambda: Net(nnx.Rngs(0)))
    a = jaxcost.analyze(model, jax.ShapeDtypeStruct((2, 8), jnp.float32))
    assert a.layer("b").flops == 2 * 8 + 2 * 8  # Child's own relu (max) and residual add
    assert a.layer("b/fc").flops == 2 * 2 * 8 * 8 + 2 * 8
    assert "__call__" not in Child.__dict__
