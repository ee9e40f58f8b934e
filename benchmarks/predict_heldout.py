"""Held-out validation of the latency predictor: calibrated on synthetic kernels and programs only
(``jaxcost peaks``: a grid of conv / 1x1 / grouped / depthwise / dot / pool shapes and random
synthetic networks, no model's layers),
validated on models the calibration never saw: zoo models and Keras applications (random
weights), at batch 1 and 8, measured on this machine.

    python benchmarks/predict_heldout.py [--zoo resnet50,...] [--keras ConvNeXtTiny,...] [--first-seen dpn92,...]
                                         [--batches 1,8] [--budget 1.0] [--passes 2] [--rounds 3]
                                         [--measure-rounds 3] [--keep-peaks] [--out predict_heldout]

Measured: each model is timed in ``--measure-rounds`` rounds of ``--passes`` passes over the
whole list (so a slow minute of the machine does not hit one model's every run), each pass at
least 3 runs within ``--budget`` seconds; the figure compared is each round's lowest median run,
geometrically averaged over the rounds -- exactly as the calibration's kernels and programs are
timed (``jaxcost peaks --rounds``) -- and the fastest run is reported beside it. (Runs before
2026-12-06's third took one round: two runs of the same code then differed by 12 % per model,
sd of the log ratio of their measured times.) Writes
benchmarks/results/predict_heldout.json and .md: per model predicted / measured, the fraction
within +-10 % and +-25 %, the median |error|, and per kernel class the predicted vs measured
time summed over the profiled kernels of every model (``jaxcost.profile``), and the whole
calibration (``peaks``), from which ``benchmarks/reprice_heldout.py`` prices the same models
again with other code. The calibration's synthetic programs are timed again in every pass: their
times against the calibration's say how much the machine drifted between the two (a 2-core VM's
speed moves ~5-10 % within half an hour); the ratios scaled by that drift are reported beside, as a
diagnostic of the predictor with the machine held still. ``--first-seen`` names the models this
run prices for the first time (no earlier run, and no change made since, has seen them): they are
summed apart as well, the strictest held-out set of the run. A Keras application named
``Name@size`` (``--keras ResNet50V2@160``) is built for images of that size instead of its KERAS one:
another program of the same design, its kernels of other shapes.

Each pass starts with a drift re-check (:func:`jaxcost.perf.drift.measure_drift`, what ``jaxcost peaks
--recheck`` does: the synthetic programs timed as the calibration timed them, ~3 s, no model run;
run 9 on, the runs before re-timed the programs in one pass each). The ``rechecked`` figures scale
each round's prediction by the re-check made before the round: what a predictor that corrected
for the drift would get from a re-check made just before the models ran (run 9: worse than none,
so jaxcost reports the drift and does not scale by it). The drift diagnostic scales by the mean
of every pass's re-check, those made after the models ran included: not a prediction. The noise ceiling is how
close a model's measured time comes to itself: each round's figure against the geometric mean of
its other rounds -- the fraction within ±10 % a predictor that had run the model minutes earlier
would reach.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
from collections import defaultdict

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
from _results import errors, machine, save
from rich.progress import track

import jaxcost
import models
from jaxcost.perf import get_peaks
from jaxcost.perf.drift import measure_drift
from jaxcost.perf.predict import program_roofline
from jaxcost.perf.pricing import RANGE_NOTE
from jaxcost.perf.programs import ProgramFactor, prepare_programs

OUTSIDE = RANGE_NOTE.split("(")[0]  # how the note on a kernel priced outside the calibrated range begins
ZOO = ["alexnet", "vgg16", "resnet18", "resnet50", "resnet152", "densenet121", "googlenet", "inception_v3",
       "mobilenet_v1", "mobilenet_v2", "mobilenet_v2_1_4", "shufflenet_v2_x1_0", "shufflenet_v1_g3", "ghostnet",
       "xception", "se_resnet50", "dpn68", "vit_b_16", "swin_t", "transformer_base", "lstm",
       # first seen in run 7 (2026-12-06)
       "resnet34", "densenet169", "shufflenet_v2_x0_5", "dpn92",
       # first seen in run 8 (2026-12-06)
       "vgg11", "inception_v4", "se_resnet101", "shufflenet_v2_x1_5",
       # first seen in run 9 (2026-12-06)
       "resnet101", "densenet201", "shufflenet_v2_x2_0",
       # first seen in run 10 (2026-12-06)
       "se_resnet152", "densenet161",
       # first seen in run 11 (2026-12-06)
       "dpn98", "vgg13", "vgg16_bn",
       # first seen in run 12 (2026-12-06)
       "dpn68b", "vgg19", "vgg13_bn", "dpn107",
       # first seen in run 13 (2026-12-06)
       "dpn131", "vgg11_bn", "vgg19_bn",
       # first seen in run 17 (2026-12-07): the seeds' 32-pixel efficient-conv networks
       "sic_net", "spatial_bottleneck_net", "topological_subdivision_net"]
KERAS = {"ConvNeXtTiny": 96, "NASNetMobile": 96, "EfficientNetB0": 96, "MobileNetV3Small": 96, "DenseNet121": 96,
         "ResNet50V2": 96, "Xception": 96, "MobileNetV3Large": 96,
         # first seen in run 7 (2026-12-06)
         "EfficientNetV2B0": 96, "MobileNet": 96, "InceptionV3": 96, "VGG19": 96,
         # first seen in run 8 (2026-12-06)
         "ResNet101": 96, "EfficientNetB1": 96, "DenseNet169": 96, "MobileNetV2": 96,
         # first seen in run 9 (2026-12-06)
         "ResNet50": 96, "DenseNet201": 96, "EfficientNetB2": 96, "InceptionResNetV2": 96, "ResNet101V2": 96,
         # first seen in run 10 (2026-12-06)
         "EfficientNetB3": 96, "EfficientNetV2B1": 96, "EfficientNetV2B2": 96, "ResNet152V2": 96,
         # first seen in run 11 (2026-12-06)
         "EfficientNetB4": 96, "EfficientNetV2B3": 96, "ConvNeXtSmall": 96, "ResNet152": 96,
         # first seen in run 12 (2026-12-06)
         "VGG16": 96, "EfficientNetV2S": 96, "EfficientNetB5": 96, "ConvNeXtBase": 96,
         # first seen in run 13 (2026-12-06)
         "EfficientNetB6": 96, "EfficientNetV2M": 96, "ConvNeXtLarge": 96, "NASNetLarge": 96,
         # first seen in run 14 (2026-12-07)
         "EfficientNetB7": 96, "EfficientNetV2L": 96, "ConvNeXtXLarge": 96}


def zoo_program(name: str, batch: int):
    dtype = jnp.int32 if models.family(name) == "transformer" else jnp.float32
    return models.build_abstract(name), (jax.ShapeDtypeStruct((batch, *models.input_shape(name)), dtype),)


def keras_stateless(build, x_shape: tuple, name: str):
    """``(forward, abstract args)`` of the Keras model ``build()`` makes, built without
    allocating its variables and called statelessly on a float32 input of ``x_shape``."""
    import keras

    with keras.StatelessScope(initialize_variables=False):
        model = build()
    spec = lambda vs: [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in vs]

    def forward(tv, ntv, x):
        with keras.StatelessScope(initialize_variables=False):
            return model.stateless_call(tv, ntv, x, training=False)[0]

    forward.__name__ = name
    return forward, (spec(model.trainable_variables), spec(model.non_trainable_variables),
                     jax.ShapeDtypeStruct(x_shape, jnp.float32))


def keras_program(name: str, image: int, batch: int):
    import keras

    return keras_stateless(lambda: getattr(keras.applications, name)(input_shape=(image, image, 3), weights=None),
                           (batch, image, image, 3), name)


# Haiku's image networks (``hk.nets``), 224-pixel images: first seen in run 14 (2026-12-07)
HAIKU = ("ResNet18", "ResNet50", "MobileNetV1",
         # first seen in run 15 (2026-12-07)
         "ResNet34", "ResNet101", "ResNet152",
         # first seen in run 16 (2026-12-07)
         "ResNet200")


def haiku_program(name: str, batch: int):
    """``hk.nets.<name>`` (1000 classes) in inference mode, its parameters and state abstract."""
    import haiku as hk

    net = {mode: hk.transform_with_state(lambda x, m=mode: getattr(hk.nets, name)(num_classes=1000)(x, is_training=m))
           for mode in (True, False)}  # initialised training (its batch norms' averages start there)
    x = jax.ShapeDtypeStruct((batch, 224, 224, 3), jnp.float32)
    params, state = jax.eval_shape(net[True].init, jax.random.key(0), x)
    net = net[False]

    def forward(params, state, x):
        return net.apply(params, state, None, x)[0]

    forward.__name__ = f"haiku_{name}"
    return forward, (params, state, x)


def program(source: str, name: str, batch: int):
    """``(fn, args)`` of a held-out model: a zoo model, a Keras application (at its KERAS image
    size; ``Name@size`` at that size) or a Haiku network."""
    if source == "haiku":
        return haiku_program(name, batch)
    if source == "zoo":
        return zoo_program(name, batch)
    base, _, size = name.partition("@")
    return keras_program(base, int(size) if size else KERAS[base], batch)


def range_split(p, out: dict[str, list]) -> None:
    """Adds the profiled kernels of ``p`` priced inside and outside the calibrated range (the ones
    whose price carries :data:`jaxcost.perf.pricing.RANGE_NOTE`) to ``out``: ``[predicted s,
    measured s, kernels, per-kernel |pred/meas - 1| of those measured at 100 us or more]`` each."""
    for k in p.kernels:
        if not k.predicted_s or k.name.startswith("("):
            continue
        part = out["outside" if OUTSIDE in k.note else "inside"]
        part[0] += k.predicted_s
        part[1] += k.measured_s
        part[2] += 1
        if k.measured_s >= 1e-4:
            part[3].append(abs(k.predicted_s / k.measured_s - 1))


def run(zoo, keras_models, batches, budget, refresh, passes, rounds, measure_rounds, first_seen=(), haiku=()):
    peaks = get_peaks(jax.default_backend(), measure=True, refresh=refresh, rounds=rounds)
    jobs = [(source, n, b) for source, names in (("zoo", zoo), ("keras", keras_models), ("haiku", haiku))
            for n in names for b in batches]
    rows: dict[tuple, dict] = {}
    programs: dict[tuple, tuple] = {}
    classes = defaultdict(lambda: [0.0, 0.0])
    ranges = {"inside": [0.0, 0.0, 0, []], "outside": [0.0, 0.0, 0, []]}
    # the calibration's synthetic programs, re-checked before every pass: how much faster or slower
    # the machine runs now than it ran the calibration (drift, not the predictor)
    synthetic = prepare_programs(jax.devices(peaks.platform)[0])
    for prog in synthetic:
        prog.run()  # warm-up
    checks: list[float] = []
    for p in range(passes * measure_rounds):
        checks.append(measure_drift(peaks, synthetic).factor)
        for job in track(jobs, description=f"held-out models, pass {p + 1}/{passes * measure_rounds}"):
            source, name, batch = job
            if job in rows and "error" in rows[job]:
                continue
            try:
                if job not in programs:
                    fn, args = program(source, name, batch)
                    a = jaxcost.analyze(fn, *args, theory=False)
                    predicted = program_roofline(a, peaks).predicted_s
                    if source == "keras" or name in ("resnet50", "mobilenet_v2", "dpn68", "vit_b_16"):
                        prof = jaxcost.profile(fn, *args, steps=3, analysis=a, peaks=peaks)
                        for c, v in prof.by_class().items():
                            classes[c][0] += v.predicted_s or 0.0
                            classes[c][1] += v.measured_s
                        range_split(prof, ranges)
                    programs[job] = (fn, args)
                    rows[job] = {"source": source, "model": name, "batch": batch, "predicted_s": predicted,
                                 "best_s": float("inf"), "median_s": float("inf"), "pass_medians_s": [],
                                 "first_seen": name in first_seen}
                fn, args = programs[job]
                stats = jaxcost.benchmark(fn, *args, time_budget_s=budget, min_repeats=3).stats
                row = rows[job]
                row["best_s"] = min(row["best_s"], stats.min)
                row["pass_medians_s"].append(stats.median)
                row["median_s"] = row["measured_s"] = measured(row["pass_medians_s"], passes)
                row["ratio"] = row["predicted_s"] / row["median_s"]
                row["ratio_best"] = row["predicted_s"] / row["best_s"]
            except Exception as e:  # noqa: BLE001 - a model that fails is a row with its error
                rows[job] = {"source": source, "model": name, "batch": batch, "error": f"{type(e).__name__}: {e}"[:300]}
    drift = math.exp(statistics.mean(math.log(c) for c in checks))
    for row in rows.values():
        if "ratio" in row:
            row["ratio_drift_adjusted"] = row["ratio"] * drift
            # each round predicted with the re-check made before it: the geometric mean of those
            n = len(row["pass_medians_s"]) // passes
            row["ratio_rechecked"] = row["ratio"] * math.exp(statistics.mean(
                math.log(checks[r * passes]) for r in range(n)))
    return (checks, peaks, [rows[j] for j in jobs], {c: {"predicted_s": v[0], "measured_s": v[1]} for c, v in classes.items()},
            {part: {"predicted_s": pr, "measured_s": me, "kernels": n,
                    "median_error": statistics.median(errors) if errors else None, "timed_kernels": len(errors)}
             for part, (pr, me, n, errors) in ranges.items()})


def measured(pass_medians: list[float], passes: int) -> float:
    """A model's time as the calibration's kernels' (``jaxcost.perf.stats.median_over_passes``):
    each round's lowest median over its ``passes`` passes, the geometric mean over the rounds."""
    rounds = [min(pass_medians[i:i + passes]) for i in range(0, len(pass_medians), passes)]
    return math.exp(sum(math.log(t) for t in rounds) / len(rounds))


def noise_ceiling(rows, passes: int) -> dict:
    """How close each model's measured time comes to itself: every round's figure (its lowest
    median over ``passes`` passes) against the geometric mean of the model's other rounds, pooled
    over the models: the fractions within ±10 % and ±25 % and the median |error|."""
    err = []
    for r in rows:
        pm = r.get("pass_medians_s", [])
        rounds = [min(pm[i:i + passes]) for i in range(0, len(pm), passes)]
        for k in range(len(rounds) if len(rounds) > 1 else 0):
            others = math.exp(statistics.mean(math.log(t) for j, t in enumerate(rounds) if j != k))
            err.append(abs(others / rounds[k] - 1))
    return errors(err)


def stats(rows, key: str = "ratio") -> dict:
    return errors([abs(r[key] - 1) for r in rows if key in r])


def markdown(peaks, rows, classes, host: str, passes: int, ranges: dict | None = None,
             checks: list[float] | None = None) -> str:
    factor = ProgramFactor.fit(peaks.program_rows)
    rounds = max(len(r.get("pass_medians_s", [])) for r in rows) // max(passes, 1)
    lines = [f"# Held-out latency prediction ({host})", "",
             (f"Calibration: `jaxcost peaks --rounds {peaks.rounds}` on this machine, {len(peaks.kernel_table)} "
              "synthetic kernels "
              "(jaxcost.perf.calibrate.CONV_GRID, DOT_GRID, POOL_GRID, ATTENTION_GRID, MEMORY_SIZES, FAULT_SIZES, LOOP_CELLS, CHAINS) "
              f"and the rate model fitted to them; {len(peaks.program_rows)} synthetic programs (jaxcost.perf.programs) timed "
              f"in the same passes give the in-program factor: {factor!r}. No model below was used to "
              "calibrate. Measured: the median run, each round's lowest over its "
              f"{passes} passes, geometrically averaged over {rounds} round(s) (the calibration's kernels are timed the "
              "same way); the fastest run beside it. Predicted: `jaxcost.program_roofline`, "
              "which runs nothing."), "",
             "| set | models x batches | within ±10 % | within ±25 % | median abs error | vs fastest run: ±10 % | ±25 % |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, sub in (("all", rows), ("zoo", [r for r in rows if r["source"] == "zoo"]),
                       ("keras", [r for r in rows if r["source"] == "keras"]),
                       ("haiku", [r for r in rows if r["source"] == "haiku"]),
                       ("first seen in this run", [r for r in rows if r.get("first_seen")])):
        s, m = stats(sub), stats(sub, "ratio_best")
        if s["n"]:
            lines.append(f"| {label} | {s['n']} | {s['within_10']:.0%} | {s['within_25']:.0%} | "
                         f"{s['median_abs_error']:.0%} | {m['within_10']:.0%} | {m['within_25']:.0%} |")
    if checks:
        drift = math.exp(statistics.mean(math.log(c) for c in checks))
        adjusted, ceiling = stats(rows, "ratio_drift_adjusted"), noise_ceiling(rows, passes)
        lines += ["", "## The machine's drift and noise", "",
                  (f"Drift re-checks (`jaxcost peaks --recheck`: the calibration's {len(peaks.program_rows)} synthetic "
                   f"programs timed again, no model run) before each pass: {', '.join(f'{c:.2f}' for c in checks)}x "
                   "the calibration's times."), "",
                  "| predicted with | models x batches | within ±10 % | within ±25 % | median abs error |",
                  "|---|---:|---:|---:|---:|"]
        for label, key in (("the calibration alone", "ratio"),
                           ("the re-check made before each round", "ratio_rechecked")):
            for part, sub in (("", rows), (", first seen", [r for r in rows if r.get("first_seen")])):
                s = stats(sub, key)
                if s["n"]:
                    lines.append(f"| {label}{part} | {s['n']} | {s['within_10']:.0%} | {s['within_25']:.0%} | "
                                 f"{s['median_abs_error']:.1%} |")
        lines += ["", (f"Diagnostic, not a prediction: scaled by the mean of every re-check ({drift:.3f}x, those made "
                       f"after the models ran included): {adjusted['within_10']:.0%} within ±10 %, "
                       f"{adjusted['within_25']:.0%} within ±25 %, median error {adjusted['median_abs_error']:.1%}. "
                       "The noise ceiling, each model's round against its other rounds (what a predictor that ran "
                       f"the model minutes earlier reaches): {ceiling['within_10']:.0%} within ±10 %, "
                       f"{ceiling['within_25']:.0%} within ±25 %, median error {ceiling['median_abs_error']:.1%} "
                       f"({ceiling['n']} model-rounds).")]
    lines += ["", "## Rate model (leave-one-out on the calibration kernels)", "",
              "| class | kernel | kernels | median error | within ±10 % | within ±25 % |", "|---|---|---:|---:|---:|---:|"]
    for f in peaks.kernel_fits:
        lines.append(f"| {f['cls']} | {f['impl']} | {f['rows']} | {f['loo_median']:.0%} | {f['loo_within_10']:.0%} | "
                     f"{f['loo_within_25']:.0%} |")
    lines += ["", "## Models", "", "| source | model | batch | measured (median) | fastest run | predicted | pred/meas |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "ratio" in r:
            lines.append(f"| {r['source']} | {r['model']} | {r['batch']} | {1e3 * r['measured_s']:.2f} ms | "
                         f"{1e3 * r['best_s']:.2f} ms | {1e3 * r['predicted_s']:.2f} ms | {r['ratio']:.2f} |")
        else:
            lines.append(f"| {r['source']} | {r['model']} | {r['batch']} | error: {r['error'][:80]} | | | |")
    spread = [max(r["pass_medians_s"]) / min(r["pass_medians_s"]) - 1 for r in rows if len(r.get("pass_medians_s", [])) > 1]
    if spread:
        lines += ["", "## Caveats", "",
                  (f"The measurement's own spread: the median runs of one model in two passes minutes apart differ by "
                  f"{statistics.median(spread):.0%} (median over the models), {max(spread):.0%} at most, on this "
                  "2-core VM; a ±10 % figure is bounded by that as much as by the predictor.")]
    if classes:
        lines += ["", "## Per kernel class (profiled kernels, summed)", "",
                  "| class | predicted | measured | pred/meas |", "|---|---:|---:|---:|"]
        for c, v in sorted(classes.items()):
            ratio = v["predicted_s"] / v["measured_s"] if v["measured_s"] else float("nan")
            lines.append(f"| {c} | {1e3 * v['predicted_s']:.1f} ms | {1e3 * v['measured_s']:.1f} ms | {ratio:.2f} |")
    if ranges and any(v["kernels"] for v in ranges.values()):
        lines += ["", "## Inside and outside the calibrated range (profiled kernels)", "",
                  ("A kernel whose convs or dots lie outside the calibration kernels' range in any dimension is "
                   "priced by extrapolating the rate law, and says so (`jaxcost.perf.pricing.RANGE_NOTE`)."), "",
                  "| kernels | count | predicted | measured | pred/meas | median error (kernels of 100 us+) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for part, v in ranges.items():
            ratio = v["predicted_s"] / v["measured_s"] if v["measured_s"] else float("nan")
            err = f"{v['median_error']:.0%} of {v['timed_kernels']}" if v["median_error"] is not None else ""
            lines.append(f"| {part} | {v['kernels']} | {1e3 * v['predicted_s']:.1f} ms | {1e3 * v['measured_s']:.1f} ms | "
                         f"{ratio:.2f} | {err} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default=",".join(ZOO))
    p.add_argument("--keras", default=",".join(KERAS))
    p.add_argument("--haiku", default="", help=f"Haiku networks, of {', '.join(HAIKU)}")
    p.add_argument("--batches", default="1,8")
    p.add_argument("--budget", type=float, default=1.0)
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="timing rounds of the calibration (jaxcost peaks --rounds)")
    p.add_argument("--measure-rounds", type=int, default=3, help="timing rounds of the models (of --passes passes each)")
    p.add_argument("--out", default="predict_heldout", help="results file name in benchmarks/results (.json, .md)")
    p.add_argument("--keep-peaks", action="store_true", help="use the cached peaks instead of measuring them again")
    p.add_argument("--first-seen", default="", help="models this run prices for the first time (summed apart)")
    args = p.parse_args()
    unknown = [m for m in args.keras.split(",") if m and m.partition("@")[0] not in KERAS]
    if unknown:
        raise SystemExit(f"--keras: {', '.join(unknown)} not in KERAS (add each with its input image size)")
    checks, peaks, rows, classes, ranges = run([m for m in args.zoo.split(",") if m], [m for m in args.keras.split(",") if m],
                               [int(b) for b in args.batches.split(",")], args.budget, not args.keep_peaks, args.passes,
                               args.rounds, args.measure_rounds, {m for m in args.first_seen.split(",") if m},
                               [m for m in args.haiku.split(",") if m])
    save(args.out, {"machine": machine(), "summary": {"all": stats(rows), "all_vs_fastest_run": stats(rows, "ratio_best"),
                                                      "all_drift_adjusted": stats(rows, "ratio_drift_adjusted"),
                                                      "all_rechecked": stats(rows, "ratio_rechecked"),
                                                      "first_seen": stats([r for r in rows if r.get("first_seen")]),
                                                      "first_seen_rechecked": stats(
                                                          [r for r in rows if r.get("first_seen")], "ratio_rechecked"),
                                                      "noise_ceiling": noise_ceiling(rows, args.passes)},
                    "drift": math.exp(statistics.mean(math.log(c) for c in checks)), "drift_checks": checks,
                    "rows": rows, "classes": classes, "calibrated_range": ranges,
                    "calibration_kernels": len(peaks.kernel_table),
                    "rate_model": peaks.kernel_fits, "program_factor": peaks.program_factor, "rounds": peaks.rounds,
                    "measure_rounds": args.measure_rounds, "passes": args.passes,
                    "program_rows": peaks.program_rows, "peaks": peaks.to_dict()},
         markdown(peaks, rows, classes, machine(), args.passes, ranges, checks))


if __name__ == "__main__":
    main()
