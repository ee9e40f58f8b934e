"""How much XLA:CPU runs independent kernels alongside each other: per model, the profiled
kernels' summed time, the critical path through the program's dependency graph at those
measured times, and the measured step.

    python benchmarks/concurrency.py [--zoo inception_v3,...] [--keras NASNetMobile,...] [--batches 1,8]

``jaxcost.program_roofline`` sums its kernels' prices (one after another) and reports the longest
chain of dependent kernels beside it (``critical_path_s``): the two ends of any schedule. Which
end a program lands near is the runtime's doing, so it is measured here with the kernels'
measured times rather than their prices (a price's error would blur it)::

    slack = summed - critical path          what running independent kernels alongside could save
    saved = summed - step                   what it saved (the profile's concurrency row, net of gaps)
    used  = saved / slack

Writes benchmarks/results/concurrency.json and .md: per model and batch the measured sum,
critical path and step, ``used``, and the prediction's own two ends (price sum and critical path)
against the wall-clock step of ``jaxcost.benchmark``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
from _results import machine, save
from predict_heldout import program
from rich.progress import track

import jaxcost
from jaxcost.perf import get_peaks
from jaxcost.perf.predict import critical_path
from jaxcost.perf.profile import CONCURRENT, GAPS

ZOO = ["inception_v3", "googlenet", "densenet121", "resnet50", "mobilenet_v2", "vit_b_16", "transformer_base", "lstm"]
KERAS_MODELS = ["NASNetMobile", "DenseNet121", "EfficientNetB0"]


def measure(source: str, name: str, batch: int, peaks) -> dict:
    fn, args = program(source, name, batch)
    a = jaxcost.analyze(fn, *args, theory=False)
    roof = jaxcost.program_roofline(a, peaks)
    prof = jaxcost.profile(fn, *args, steps=5, analysis=a, peaks=peaks)
    measured = {k.name: k.measured_s for k in prof.kernels if k.name not in (CONCURRENT, GAPS)}
    summed = sum(measured.values())
    path = critical_path(a.module.module.entry, measured)
    wall = jaxcost.benchmark(fn, *args, time_budget_s=1.0, min_repeats=3).stats.median
    row = {"source": source, "model": name, "batch": batch, "kernels_summed_s": summed, "critical_path_s": path,
           "step_s": prof.step_s, "concurrent_s": -prof.kernel(CONCURRENT).measured_s,
           "gaps_s": prof.kernel(GAPS).measured_s, "wall_s": wall,
           "predicted_s": roof.predicted_s, "predicted_critical_path_s": roof.critical_path_s}
    slack = summed - path
    row["used"] = (summed - prof.step_s) / slack if slack > 0.02 * summed else None
    return row


def markdown(rows, host: str) -> str:
    lines = [f"# Independent kernels run alongside (XLA:CPU, {host})", "",
             ("Per model: the profiled kernels' measured times summed, the longest chain of dependent kernels at those "
             "times (`jaxcost.perf.predict.critical_path` over the optimized module), and the profiled step "
             "(first kernel's start to last kernel's end, median of 5 runs). `used` = (summed - step) / (summed - "
             "critical path): the share of the slack the runtime's threads took (blank: under 2 % slack). "
             "Predicted: `jaxcost.program_roofline`'s price sum and its critical path, against the wall-clock "
             "step (`jaxcost.benchmark`, median)."), "",
             ("| source | model | batch | summed | critical path | step | used | predicted | predicted path | wall | "
             "pred/wall | path/wall |"), "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['source']} | {r['model']} | {r['batch']} | error: {r['error'][:80]} |||||||||")
            continue
        used = f"{r['used']:.2f}" if r["used"] is not None else ""
        lines.append(f"| {r['source']} | {r['model']} | {r['batch']} | {1e3 * r['kernels_summed_s']:.2f} ms | "
                     f"{1e3 * r['critical_path_s']:.2f} ms | {1e3 * r['step_s']:.2f} ms | {used} | "
                     f"{1e3 * r['predicted_s']:.2f} ms | {1e3 * r['predicted_critical_path_s']:.2f} ms | "
                     f"{1e3 * r['wall_s']:.2f} ms | {r['predicted_s'] / r['wall_s']:.2f} | "
                     f"{r['predicted_critical_path_s'] / r['wall_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--zoo", default=",".join(ZOO))
    p.add_argument("--keras", default=",".join(KERAS_MODELS))
    p.add_argument("--batches", default="1,8")
    args = p.parse_args()
    peaks = get_peaks(jax.default_backend(), measure=True)
    jobs = [("zoo", n, int(b)) for n in args.zoo.split(",") if n for b in args.batches.split(",")]
    jobs += [("keras", n, int(b)) for n in args.keras.split(",") if n for b in args.batches.split(",")]
    rows = []
    for source, name, batch in track(jobs, description="profiling"):
        try:
            rows.append(measure(source, name, batch, peaks))
        except Exception as e:  # noqa: BLE001 - a model that fails is a row with its error
            rows.append({"source": source, "model": name, "batch": batch, "error": f"{type(e).__name__}: {e}"[:300]})
    save("concurrency", {"machine": machine(), "rows": rows, "calibration_rounds": peaks.rounds}, markdown(rows, machine()))


if __name__ == "__main__":
    main()
