"""Loops on CPU: recurrent networks' while loops, predicted against measured.

    python benchmarks/rnn_loops.py [--budget 2.0] [--out rnn_loops]

Recurrent networks from four libraries (JAX backends: each recurrent layer is a ``lax.scan``, a
while loop in the optimized HLO; random weights): Keras 3 LSTM, GRU and SimpleRNN networks (two
stacked layers and a dense head) and a bidirectional LSTM, Flax linen's ``nn.RNN`` over its LSTM
and GRU cells, Haiku's LSTM and GRU under ``hk.dynamic_unroll``, Equinox's GRU and LSTM cells
scanned, and the zoo's word-level LSTM, at batch 1 and 8; and a Flax ``nn.scan`` over MLP layers
as a guard (its dots lie outside the loop calibration's range). The median of timed runs
(``jaxcost.benchmark``) against ``jaxcost.program_roofline`` with the cached calibration
(``jaxcost peaks``), and against the same calibration without its loop rows. Sets (``jobs``): the
networks the loop calibration was designed on, those that tuned it, and those held out, first
priced once it was frozen. Writes benchmarks/results/<out>.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
from _results import errors, machine, save
from predict_heldout import keras_stateless, program
from rich.progress import track

import jaxcost
from jaxcost.perf import get_peaks
from jaxcost.perf.kernels import LOOP
from jaxcost.perf.predict import program_roofline

# (layer, units, time steps, input features): the networks the loop calibration was designed on
# (its recurrent-cell trips: jaxcost.perf.calibrate.LOOP_CELLS) ...
KERAS_RNNS = [("LSTM", 650, 35, 650), ("GRU", 512, 50, 256), ("LSTM", 256, 100, 128), ("GRU", 1024, 20, 512)]
# ... two that, with four more below, tuned it (jobs) ...
TUNING_KERAS = [("SimpleRNN", 512, 40, 256), ("GRU", 768, 30, 128)]
# ... and three held out, with three more below: first priced with the design frozen (its Equinox
# cells' results then chose the transposed lookup of a loop's dots with the weights on the left) ...
HELD_OUT_KERAS = [("LSTM", 512, 80, 64), ("GRU", 320, 120, 320), ("SimpleRNN", 1024, 25, 512)]
# ... and one more, with four more below: first priced after that.
HELD_OUT_2_KERAS = [("GRU", 896, 24, 256)]


def keras_rnn(layer: str, units: int, steps: int, features: int, batch: int):
    """``(forward, abstract args)`` of a two-layer Keras ``layer`` network and a dense head."""
    import keras

    cell = getattr(keras.layers, layer)
    return keras_stateless(lambda: keras.Sequential([keras.Input((steps, features)), cell(units, return_sequences=True),
                                                     cell(units), keras.layers.Dense(10)]),
                           (batch, steps, features), f"{layer}{units}")


def keras_bidirectional(units: int, steps: int, features: int, batch: int):
    """A Keras bidirectional LSTM and a dense head."""
    import keras

    return keras_stateless(lambda: keras.Sequential([keras.Input((steps, features)),
                                                     keras.layers.Bidirectional(keras.layers.LSTM(units)),
                                                     keras.layers.Dense(10)]), (batch, steps, features), "BiLSTM")


def flax_rnn(cell: str, units: int, steps: int, features: int, batch: int):
    """Flax linen's ``nn.RNN`` over an ``nn.<cell>`` (``OptimizedLSTMCell``, ``GRUCell``)."""
    import flax.linen as nn

    model = nn.RNN(getattr(nn, cell)(units))
    x = jax.ShapeDtypeStruct((batch, steps, features), jnp.float32)
    return model.apply, (jax.eval_shape(model.init, jax.random.key(0), x), x)


def haiku_rnn(core: str, units: int, steps: int, features: int, batch: int):
    """Haiku's ``hk.<core>`` (``LSTM``, ``GRU``) unrolled by ``hk.dynamic_unroll`` (time-major)."""
    import haiku as hk

    def unroll(x):
        rnn = getattr(hk, core)(units)
        return hk.dynamic_unroll(rnn, x, rnn.initial_state(x.shape[1]))[0]

    net = hk.without_apply_rng(hk.transform(unroll))
    x = jax.ShapeDtypeStruct((steps, batch, features), jnp.float32)
    return net.apply, (jax.eval_shape(net.init, jax.random.key(0), x), x)


def equinox_rnn(cell: str, units: int, steps: int, features: int, batch: int):
    """Equinox's ``eqx.nn.<cell>`` (``GRUCell``, ``LSTMCell``: state ``(h, c)``), vmapped over
    the batch, scanned over the steps."""
    import equinox as eqx

    params, static = eqx.partition(eqx.filter_eval_shape(getattr(eqx.nn, cell), features, units, key=jax.random.key(0)),
                                   lambda leaf: isinstance(leaf, jax.ShapeDtypeStruct))

    def run(params, xs):
        step = jax.vmap(eqx.combine(params, static))
        h = jnp.zeros((xs.shape[1], units), xs.dtype)
        return jax.lax.scan(lambda s, x: (step(x, s), None), (h, h) if cell == "LSTMCell" else h, xs)[0]

    return run, (params, jax.ShapeDtypeStruct((steps, batch, features), jnp.float32))


def flax_scan_mlp(layers: int, tokens: int, width: int, batch: int):
    """Not a recurrent network: Flax linen's ``nn.scan`` over ``layers`` residual MLP blocks (a
    scan over layers), whose dots lie outside the loop calibration's range: priced as alone."""
    import flax.linen as nn

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x, _):
            return x + nn.Dense(width)(nn.gelu(nn.Dense(4 * width)(x))), None

    model = nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=layers)()
    x = jax.ShapeDtypeStruct((batch, tokens, width), jnp.float32)
    params = jax.eval_shape(lambda k, x: model.init(k, x, None), jax.random.key(0), x)
    return (lambda p, x: model.apply(p, x, None)[0]), (params, x)


def jobs() -> list[tuple[str, str, object]]:
    """``(set, name, make(batch))`` of every network. Sets: "design" (the loop calibration's
    cells were chosen looking at them), "tuning" (their results chose the pooled loop rates,
    ``rates.POOLED``, and loop kernels' launches), "held-out" (first priced with the design
    frozen; its Equinox rows then chose the transposed lookup, ``pricing._in_loop``), "held-out 2"
    (first priced after that) and "guard" (a scan over layers, not a recurrent network)."""
    keras = lambda cfgs: [(f"keras {layer} {units} x {steps} steps", lambda b, c=(layer, units, steps, feat): keras_rnn(*c, b))
                          for layer, units, steps, feat in cfgs]
    return ([("design", n, m) for n, m in keras(KERAS_RNNS) + [("zoo lstm", lambda b: program("zoo", "lstm", b))]]
            + [("tuning", n, m) for n, m in keras(TUNING_KERAS)]
            + [("tuning", "keras bidirectional LSTM 384 x 60 steps", lambda b: keras_bidirectional(384, 60, 300, b)),
               ("tuning", "flax OptimizedLSTMCell 512 x 50 steps", lambda b: flax_rnn("OptimizedLSTMCell", 512, 50, 256, b)),
               ("tuning", "haiku LSTM 320 x 64 steps", lambda b: haiku_rnn("LSTM", 320, 64, 128, b)),
               ("tuning", "equinox GRUCell 448 x 48 steps", lambda b: equinox_rnn("GRUCell", 448, 48, 192, b))]
            + [("held-out", n, m) for n, m in keras(HELD_OUT_KERAS)]
            + [("held-out", "flax GRUCell 384 x 70 steps", lambda b: flax_rnn("GRUCell", 384, 70, 96, b)),
               ("held-out", "haiku GRU 600 x 40 steps", lambda b: haiku_rnn("GRU", 600, 40, 200, b)),
               ("held-out", "equinox LSTMCell 384 x 90 steps", lambda b: equinox_rnn("LSTMCell", 384, 90, 256, b))]
            + [("held-out 2", n, m) for n, m in keras(HELD_OUT_2_KERAS)]
            + [("held-out 2", "equinox GRUCell 640 x 36 steps", lambda b: equinox_rnn("GRUCell", 640, 36, 160, b)),
               ("held-out 2", "equinox LSTMCell 512 x 60 steps", lambda b: equinox_rnn("LSTMCell", 512, 60, 128, b)),
               ("held-out 2", "haiku VanillaRNN 768 x 50 steps", lambda b: haiku_rnn("VanillaRNN", 768, 50, 256, b)),
               ("held-out 2", "flax SimpleCell 512 x 64 steps", lambda b: flax_rnn("SimpleCell", 512, 64, 128, b))]
            + [("guard", "flax nn.scan MLP 6 layers x 128 tokens", lambda b: flax_scan_mlp(6, 128, 512, b))])


def summary_line(rows: list[dict], key: str) -> str:
    """``0.9-1.2x, median 1.0x, 50 % within ±10 %, 90 % within ±25 %, median error 9 %`` of ``rows[key]``."""
    ratios = [r[key] for r in rows]
    e = errors([abs(x - 1) for x in ratios])
    return (f"{min(ratios):.2f}-{max(ratios):.2f}x, median {statistics.median(ratios):.2f}x, {e['within_10']:.0%} within "
            f"±10 %, {e['within_25']:.0%} within ±25 %, median error {e['median_abs_error']:.0%}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timed runs per model")
    p.add_argument("--out", default="rnn_loops", help="results name in benchmarks/results")
    args = p.parse_args()
    peaks = get_peaks(jax.default_backend(), measure=True)
    # the same calibration without its loop kernels: every loop priced as its body's kernels timed alone
    alone = dataclasses.replace(peaks, kernel_table=[r for r in peaks.kernel_table if not (len(r) > 9 and r[9].endswith(LOOP))],
                                kernel_fits=[f for f in peaks.kernel_fits if not f["impl"].endswith(LOOP)])
    rows = []
    for (group, name, make), batch in track([(j, b) for j in jobs() for b in (1, 8)], description="loops"):
        fn, fargs = make(batch)
        a = jaxcost.analyze(fn, *fargs, theory=False)
        roof = program_roofline(a, peaks)
        loops = [pt for pt in roof.points if pt.name in {op.name for op in a.ops if op.opcode == "while"}]
        measured = jaxcost.benchmark(fn, *fargs, time_budget_s=args.budget).stats.median
        before = program_roofline(a, alone).predicted_s
        rows.append({"set": group, "model": name, "batch": batch, "measured_s": measured,
                     "predicted_s": roof.predicted_s, "loops": len(loops),
                     "loops_predicted_s": sum(pt.time_s for pt in loops), "ratio": roof.predicted_s / measured,
                     "alone_predicted_s": before, "alone_ratio": before / measured})
    sets = {g: [r for r in rows if r["set"] == g] for g in ("design", "tuning", "held-out", "held-out 2", "guard")}
    lines = [f"# Loops: while loops predicted vs measured ({machine()})", "",
             (f"Calibration: {peaks.source}, version {peaks.calibration}. A loop's body is priced from the calibration's "
              "loop kernels (recurrent-cell trips of two dots, `jaxcost.perf.calibrate.LOOP_CELLS`, and elementwise "
              "kernels as loop trips: kinds ending in `kernels.LOOP`), each kernel of its body at its own roof, "
              "where its dots lie in their range, else as timed alone (`jaxcost.perf.pricing.price_loop`); 'alone' "
              "prices the same way from the same calibration without its loop rows. Predicted / measured median run:"), ""]
    lines += [f"- **{g}** ({len(rs)} model-batches): {summary_line(rs, 'ratio')}; alone: {summary_line(rs, 'alone_ratio')}"
              for g, rs in sets.items() if rs]
    lines += ["", "| set | model | batch | measured | predicted | of it in loops | pred/meas | alone: pred/meas |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['set']} | {r['model']} | {r['batch']} | {1e3 * r['measured_s']:.2f} ms | "
              f"{1e3 * r['predicted_s']:.2f} ms | {r['loops_predicted_s'] / r['predicted_s']:.0%} | {r['ratio']:.2f} | "
              f"{r['alone_ratio']:.2f} |" for r in rows]
    summaries = {g: {"loop": errors([abs(r["ratio"] - 1) for r in rs]),
                     "alone": errors([abs(r["alone_ratio"] - 1) for r in rs])} for g, rs in sets.items()}
    save(args.out, {"machine": machine(), "calibration": peaks.calibration, "summary": summaries, "rows": rows},
         "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
