"""A held-out run priced again by the code checked out now: the same calibration, the same
measurements, so the two columns differ by the predictor alone -- not by the minute the machine
was timed in (on this 2-core VM two runs of one code moved 10-20 points in the ±10 % fraction).

    python benchmarks/reprice_heldout.py [--run predict_heldout] [--peaks PEAKS_JSON] [--refit [--serial-classes conv,conv1x1]]
                                         [--out predict_heldout_repriced]

Reads ``benchmarks/results/<run>.json`` (written by ``predict_heldout.py`` with its calibration,
``peaks``), compiles the synthetic programs again to price them with this code and fits the
in-program factor anew from their stored times (:mod:`jaxcost.perf.programs`), then prices every
model of the run (``jaxcost.program_roofline``, nothing is run) and writes ``<out>.json`` and
``.md``: per model the run's ratio (predicted / measured median run) and this code's, and the
summary of both. With ``--peaks`` (a ``peaks.json`` that ``jaxcost peaks`` wrote, e.g. with
``JAXCOST_CACHE_DIR``) the models are priced with that calibration instead of the run's: two
calibrations measured minutes apart, each priced against the same measured times, compare two
calibration protocols with the machine's drift the same for both. With ``--refit`` the rate model
is fitted again to the calibration's kernels by this code (:func:`jaxcost.perf.rates.fit_rates`,
with ``--serial-classes`` the classes that may have a serial factor: ``''`` for none), not taken as
the run fitted it: a changed law priced against the same kernels and times. A change picked by comparing
these columns has seen these models: quote a fresh ``predict_heldout.py`` run for it as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
from _results import RESULTS, machine, save
from predict_heldout import program, stats
from rich.progress import track

import jaxcost
from jaxcost.perf import DevicePeaks
from jaxcost.perf.predict import program_roofline
from jaxcost.perf.programs import ProgramFactor, prepare_programs, program_rows
from jaxcost.perf.rates import SERIAL_CLASSES, fit_rates


def refitted(peaks: DevicePeaks, programs) -> tuple[DevicePeaks, ProgramFactor]:
    """``peaks`` with its in-program factor fitted again from its programs' stored times, priced by
    this code (``programs``: :func:`jaxcost.perf.programs.prepare_programs`), and that factor."""
    seconds = [r[1] for r in peaks.program_rows]
    factor = ProgramFactor.fit(program_rows(programs, seconds, peaks.rates(), peaks.kernel_overhead_s or 0.0))
    return dataclasses.replace(peaks, program_factor=factor.factor, program_rows=[list(r) for r in factor.rows]), factor


def reprice(run: dict, calibration: dict | None = None,
            serial_classes: tuple[str, ...] | None = None) -> tuple[ProgramFactor, list[dict]]:
    """The run's in-program factor fitted again and every model's row priced again, with the
    run's calibration (or ``calibration``, a :class:`DevicePeaks` dict) and this code; with
    ``serial_classes`` (not None) its rate model fitted again too, those classes allowed a
    serial factor."""
    peaks = DevicePeaks.from_dict(calibration or run["peaks"])
    if serial_classes is not None:
        fits = fit_rates(peaks.kernel_table, serial_classes=serial_classes)
        peaks = dataclasses.replace(peaks, kernel_fits=[dataclasses.asdict(f) for f in fits])
    peaks, factor = refitted(peaks, prepare_programs(jax.devices(peaks.platform)[0]))
    rows = []
    for r in track([r for r in run["rows"] if "ratio" in r], description="pricing the run's models again"):
        fn, args = program(r["source"], r["model"], r["batch"])
        predicted = program_roofline(jaxcost.analyze(fn, *args, theory=False), peaks).predicted_s
        rows.append({**{k: r[k] for k in ("source", "model", "batch", "measured_s")}, "run_ratio": r["ratio"],
                     "ratio": predicted / r["measured_s"], "predicted_s": predicted})
    return factor, rows


def markdown(name: str, run: dict, factor: ProgramFactor, rows: list[dict]) -> str:
    before, after = stats(rows, "run_ratio"), stats(rows)
    lines = [f"# `{name}` priced again ({machine()})", "",
             (f"The calibration and the measured times of `benchmarks/results/{name}.json`; the predictions of "
              f"the code that made that run and of the code checked out now (in-program factor fitted again: "
              f"{factor!r}; the run's: {run['program_factor']:.3f})."), "",
             "| code | models x batches | within ±10 % | within ±25 % | median abs error |", "|---|---:|---:|---:|---:|"]
    for label, s in (("the run's", before), ("now", after)):
        lines.append(f"| {label} | {s['n']} | {s['within_10']:.0%} | {s['within_25']:.0%} | {s['median_abs_error']:.1%} |")
    lines += ["", "| source | model | batch | measured | pred/meas (run) | pred/meas (now) |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['source']} | {r['model']} | {r['batch']} | {1e3 * r['measured_s']:.2f} ms | {r['run_ratio']:.2f} | "
              f"{r['ratio']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="predict_heldout", help="a predict_heldout.py results name in benchmarks/results")
    p.add_argument("--peaks", default=None, help="a peaks.json whose calibration prices the models instead of the run's")
    p.add_argument("--refit", action="store_true", help="fit the rate model again to the calibration's kernels")
    p.add_argument("--serial-classes", default=",".join(SERIAL_CLASSES),
                   help="with --refit: the classes that may run on one thread ('' for none)")
    p.add_argument("--out", default=None, help="results name (default: <run>_repriced)")
    args = p.parse_args()
    with open(os.path.join(RESULTS, args.run + ".json")) as f:
        run = json.load(f)
    if "peaks" not in run:
        raise SystemExit(f"{args.run}.json holds no calibration ('peaks'): only runs of predict_heldout.py "
                         "since it saves one can be priced again")
    calibration = None
    if args.peaks:
        with open(args.peaks) as f:
            (calibration,) = json.load(f).values()
    serial = tuple(c for c in args.serial_classes.split(",") if c) if args.refit else None
    factor, rows = reprice(run, calibration, serial)
    save(args.out or args.run + "_repriced", {"machine": machine(), "run": args.run, "program_factor": factor.factor,
                                              "summary": {"run": stats(rows, "run_ratio"), "now": stats(rows)},
                                              "rows": rows}, markdown(args.run, run, factor, rows))


if __name__ == "__main__":
    main()
