"""Training steps: directions (forward / backward / recompute / optimizer), input- and
weight-gradient split, model vs hardware FLOPs, the one-call step builder, the closed forms
6·N·T + attention, steady-state timing with MFU and HFU."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import linen, nnx

import jaxcost
import models
from jaxcost.names import split_name_stack
from jaxcost.train.cost import closed_form_check
from jaxcost.train.step import repeated_blocks


def test_name_stacks_of_a_training_step():
    assert split_name_stack("jvp(Net)/conv") == ("Net/conv", "forward")
    assert split_name_stack("transpose(jvp(Net))/conv") == ("Net/conv", "backward")
    # nnx.remat inside nnx.value_and_grad: the checkpoint scope is dropped from the path
    assert split_name_stack("transpose(jvp(jvp()))/checkpoint/b1/conv") == ("b1/conv", "backward")
    assert split_name_stack("transpose(jvp(jvp()))/checkpoint/rematted_computation/b1/conv") == \
        ("b1/conv", "recompute")
    # jax.checkpoint under a named scope repeats the scope inside the transpose
    assert split_name_stack("transpose(jvp(blk))/jvp(blk)/checkpoint/rematted_computation") == \
        ("blk", "recompute")
    assert split_name_stack("net/dense") == ("net/dense", "")  # forward or optimizer: see resolve()


X = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)


@pytest.fixture(scope="module")
def resnet18():
    return nnx.eval_shape(lambda: models.build("resnet18", num_classes=10))


@pytest.fixture(scope="module")
def plain_and_remat(resnet18):
    return [jaxcost.train_step(resnet18, X, remat=remat).analyze() for remat in (False, True)]


def test_every_flop_has_a_direction_and_the_rows_add_up(plain_and_remat):
    a, r = plain_and_remat
    assert {row.direction for row in a.layers} == {"forward", "backward", "optimizer"}
    assert {row.direction for row in r.layers} == {"forward", "backward", "recompute", "optimizer"}
    for an in (a, r):
        c = an.training()
        assert sum(d.xla_flops for d in c.directions.values()) == an.module.total.flops
        assert sum(d.theory_flops for d in c.directions.values()) == an.theory.totals.flops_xla
        an.explain().check()


def test_conv_backward_is_input_plus_weight_gradient(plain_and_remat):
    a = plain_and_remat[0]
    convs = [row for row in a.layers if row.direction == "backward" and row.weight_grad is not None]
    assert len(convs) == 21  # 20 convs + fc
    for row in convs:
        xla = sum(op.flops for op in a.ops_unoptimized if op.layer == row.path and op.direction == "backward"
                  and op.opcode in ("convolution", "dot"))
        ig = row.input_grad.flops_xla if row.input_grad is not None else 0
        assert xla == ig + row.weight_grad.flops_xla, row.path
    # the stem's input needs no gradient; every other layer has both halves
    assert a.layer("conv1", "backward").input_grad is None
    assert all(row.input_grad is not None for row in convs if row.path != "conv1")
    stem = a.layer("conv1", "backward").weight_grad
    assert stem.macs == 2 * 16 * 16 * 64 * 7 * 7 * 3  # dW has the forward's MACs: 2·16·16 outputs × 147 taps × 64
    c = a.training()
    assert c.input_grad_flops + c.weight_grad_flops == c["backward"].theory_contraction_flops
    assert c.weight_grad_flops == c["forward"].theory_contraction_flops
    assert c.weight_grad_flops - c.input_grad_flops == a.layer("conv1").theory.flops_xla


def test_remat_recomputes_the_blocks_and_leaves_model_flops_unchanged(resnet18, plain_and_remat):
    a, r = plain_and_remat
    blocks = repeated_blocks(resnet18)
    assert list(blocks) == [f"layer{i}/{j}" for i in range(1, 5) for j in range(2)]
    ca, cr = a.training(), r.training()
    assert ca.model_flops == cr.model_flops
    # the recompute row re-runs the blocks' forward contractions exactly (theory)
    fwd_blocks = sum(e.total.flops_xla for e in r.theory.eqns if e.direction == "forward"
                     and e.primitive == "conv_general_dilated" and e.path.split("/")[0].startswith("layer"))
    assert cr["recompute"].theory_contraction_flops == fwd_blocks
    # lowered, the recompute is all there; XLA then removes what the backward does not read
    assert cr["recompute"].xla_flops_unoptimized > 0.99 * cr["recompute"].theory_flops
    assert 0 < cr["recompute"].xla_flops < cr["recompute"].xla_flops_unoptimized
    assert cr.hardware_flops - ca.hardware_flops == pytest.approx(
        cr["recompute"].xla_flops + cr["forward"].xla_flops - ca["forward"].xla_flops, abs=64)
    lines = {d.cause: d.flops for d in r.explain().lines}
    removed = lines["rematerialised work XLA removed (CSE with the forward pass, dead code)"]
    assert removed == cr["recompute"].xla_flops - cr["recompute"].xla_flops_unoptimized


def test_optimizer_state_and_rows(resnet18):
    a = jaxcost.train_step(resnet18, X, optimizer="adam").analyze(compile=False)
    assert a.params == 11_181_642
    assert a.optimizer_state == 2 * 11_181_642 + 2  # mu, nu, adam's count and the optimizer's step
    opt = a.training()["optimizer"]
    assert opt.theory_flops > 10 * a.params  # adam: ~14 flops per parameter
    assert opt.theory_contraction_flops == 0


@pytest.mark.parametrize("name, shape", [("resnet50", (8, 224, 224, 3)), ("vit_b_16", (8, 224, 224, 3))])
def test_zoo_training_steps_batch_8(name, shape):
    """Every conv / dense layer has a backward row whose contractions are the theory's input +
    weight gradients; the ledger adds up with nothing unexplained (lowered module)."""
    model = nnx.eval_shape(lambda: models.build(name))
    a = jaxcost.train_step(model, jax.ShapeDtypeStruct(shape, jnp.float32)).analyze(compile=False)
    layers = [row for row in a.layers if row.direction == "backward" and (row.weight_grad or row.input_grad)]
    weighted = [row for row in layers if row.weight_grad is not None]
    # resnet50: 53 convs + fc; vit_b_16: patch embedding, 12 x (qkv, proj, fc1, fc2), head, and the
    # 12 x 2 attention einsums (QKᵀ, AV: activations only, input gradients only; jnp.einsum names
    # its scope after the spec, "attn/bqhd,bkhd->bhqk")
    assert (len(weighted), len(layers)) == {"resnet50": (54, 54), "vit_b_16": (50, 74)}[name]
    for row in layers:
        xla = sum(op.flops for op in a.ops_unoptimized if op.layer == row.path and op.direction == "backward"
                  and op.opcode in ("convolution", "dot"))
        assert xla > 0
        assert xla == sum(g.flops_xla for g in (row.input_grad, row.weight_grad) if g is not None)
    e = a.explain()
    e.check()
    assert e.unexplained_fraction < 0.005
    assert a.training().backward_ratio == pytest.approx(2.0, abs=0.04)


def test_transformer_against_6nt_plus_attention():
    model = nnx.eval_shape(lambda: models.build("transformer_base"))
    b, s, d, layers = 2, 128, 512, 6
    a = jaxcost.train_step(model, jax.ShapeDtypeStruct((b, 2, s), jnp.int32)).analyze(compile=False)
    dense, attention = closed_form_check(a, tokens=b * s, attention=[(layers, s, d, False), (layers, s, d, True),
                                                                      (layers, s, d, False)])
    for term in (dense, attention):
        assert term.closed_form + sum(v for _, v in term.differences) == term.theory
    assert dense.closed_form == 6 * a.params * b * s
    # only the biases and LayerNorms (98,304 parameters) are in N without a matmul
    assert dict(dense.differences)[next(k for k, _ in dense.differences if "no matmul" in k)] \
        == -6 * 98_304 * b * s
    assert sum(v for _, v in dense.differences[1:]) == 0
    # the decoder masks its scores after computing all of them: the causal half is not skipped
    assert attention.differences[0][1] == 6 * layers * d * s * b * s
    assert attention.differences[1][1] == 0


def test_linen_train_step_is_what_jax_jit_compiles():
    class CNN(linen.Module):
        @linen.compact
        def __call__(self, x, train: bool = True):
            x = linen.Conv(8, (3, 3))(x)
            x = linen.BatchNorm(use_running_average=not train)(x)
            return linen.Dense(10)(jax.nn.relu(x).mean((1, 2)))

    x = jax.ShapeDtypeStruct((4, 16, 16, 3), jnp.float32)
    step = jaxcost.train_step(CNN(), x, optimizer="momentum", train=True)
    a = step.analyze()
    ref = jax.jit(step.fn).lower(*step.args).compile().cost_analysis()
    assert a.compiler.flops == ref["flops"] and a.compiler.bytes_accessed == ref["bytes accessed"]
    assert a.params == 3 * 3 * 3 * 8 + 8 + 2 * 8 + 8 * 10 + 10
    assert a.optimizer_state == a.params  # momentum: one trace per parameter
    assert a.layer("CNN/Conv_0", "backward").weight_grad is not None
    assert {r.direction for r in a.layers} >= {"forward", "backward", "optimizer"}


def test_plain_jax_step_with_optimizer_state_argument():
    def loss(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(jnp.tanh(x @ p["w1"]) @ p["w2"], y).mean()

    tx = optax.adam(1e-3)

    def step(params, opt_state, x, y):
        grads = jax.grad(loss)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    params = {"w1": jax.ShapeDtypeStruct((32, 64), jnp.float32), "w2": jax.ShapeDtypeStruct((64, 10), jnp.float32)}
    a = jaxcost.analyze(step, params, jax.eval_shape(tx.init, params), jax.ShapeDtypeStruct((16, 32), jnp.float32),
                        jax.ShapeDtypeStruct((16,), jnp.int32), params_argnums=(0,), opt_state_argnums=(1,))
    assert a.optimizer_state == 2 * (32 * 64 + 64 * 10) + 1
    c = a.training()
    # x @ w1 needs no input gradient (x is data); tanh(.) @ w2 needs both
    assert c.weight_grad_flops == 2 * 16 * (32 * 64 + 64 * 10)
    assert c.input_grad_flops == 2 * 16 * 64 * 10
    assert c.model_flops == 2 * c.weight_grad_flops + c.input_grad_flops


def test_bad_train_step_arguments():
    with pytest.raises(jaxcost.AnalysisError, match="unknown optimizer 'adamm'"):
        jaxcost.train_step(nnx.eval_shape(lambda: nnx.Linear(4, 2, rngs=nnx.Rngs(0))),
                           jax.ShapeDtypeStruct((2, 4), jnp.float32), optimizer="adamm")
    with pytest.raises(jaxcost.AnalysisError, match="needs an nnx.Module or a linen Module"):
        jaxcost.train_step(jnp.tanh, jax.ShapeDtypeStruct((2, 4), jnp.float32))


def test_steady_state_benchmark_reports_mfu_and_hfu():
    from jaxcost.perf.peaks import DevicePeaks

    model = nnx.eval_shape(lambda: nnx.Linear(64, 10, rngs=nnx.Rngs(0)))
    step = jaxcost.train_step(model, jax.ShapeDtypeStruct((8, 64), jnp.float32), optimizer="adam")
    peaks = DevicePeaks("cpu", "cpu", {"float32": 1e11}, 1e10, "published")
    b = step.benchmark(peaks=peaks, time_budget_s=0.05, min_repeats=3, warmup=1)
    assert b.model_flops == 3 * 2 * 8 * 64 * 10 - 2 * 8 * 64 * 10  # no input gradient for the data
    assert b.mfu == pytest.approx(b.model_flops / (b.step_s * 1e11))
    assert b.hfu > b.mfu > 0
    assert b.timing.stats.n >= 3


def test_gradients_xla_rewrote_without_metadata_stay_backward(plain_and_remat):
    """XLA:CPU rewrites a strided conv's weight gradient with window dilation into a new
    instruction without metadata; its consumer is the optimizer's update. It is backward work
    of the layer whose parameter it updates, not optimizer work."""
    a = plain_and_remat[0]
    c = a.training()
    unnamed = [op for op in a.ops if op.instruction is not None and not op.instruction.op_name
               and any(i.opcode == "convolution" for i in op.inner)]
    assert {(op.layer, op.direction) for op in unnamed} >= {("layer2/0/downsample/0", "backward"),
                                                            ("layer3/0/downsample/0", "backward")}
    assert c["optimizer"].xla_flops == pytest.approx(c["optimizer"].theory_flops, rel=1e-3)
