"""How much calibration `jaxcost peaks` needs: version-12 calibrations (a third more kernels, 5-20 ms
kernels timed three times a pass) cut down after the fact, without timing anything again, and each
cut table priced against held-out runs' measured times -- the same timings in every column, so the
columns differ by what was cut alone, not by the minute the machine was timed in.

    python benchmarks/calibration_ablation.py [--job RUN[:PEAKS_JSON,...]] ... [--record 2] [--out calibration_ablation]

Two cuts:

- **fewer kernels.** ``calibrate.spread_subset`` picks nested sets (its first n Halton picks are the
  same whatever n), so a version-12 table holds the table of every smaller ``KERNELS_PER_CLASS``:
  its rows of the kernels the smaller count picks (attention, memory and paging rows all kept),
  the rate model fitted again (:data:`SCALES` of version 12's counts, rounded down).
- **fewer runs.** ``--record N`` measures N calibrations of version 12's kernels and protocol with
  every timed run kept, and derives from the same runs the tables of other protocols
  (:data:`PROTOCOLS`): a kernel over 5 ms run once a pass (its first run of the pass), one pass.
  Their timing cost is summed from the runs each protocol keeps. Recording times the machine: run it
  alone (two calibrations recorded while another job priced models put 6-8 % of run 11 within ±10 %).

A job is a ``predict_heldout.py`` run (``benchmarks/results/<RUN>.json``) and the calibrations to
cut (``PEAKS_JSON``, ``jaxcost peaks`` cache files; default the run's own); the recorded
calibrations are priced against every job's run. Each model is analysed once and priced by every
table (``jaxcost.program_roofline``: nothing is run); the in-program factor is fitted again from
each table's program times (:mod:`jaxcost.perf.programs`). Writes ``results/<out>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import statistics

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
from _results import RESULTS, machine, save
from predict_heldout import program, stats
from reprice_heldout import refitted
from rich.progress import track

import jaxcost
import jaxcost.perf.stats
from jaxcost.perf import DevicePeaks, calibrate
from jaxcost.perf.peaks import measure_peaks
from jaxcost.perf.predict import program_roofline
from jaxcost.perf.programs import prepare_programs
from jaxcost.perf.rates import class_rates, fit_rates

# Version 12's kernel set and protocol: the tables cut here, and what --record measures.
V12 = {"KERNELS_PER_CLASS": {"conv": 32, "conv1x1": 28, "grouped": 38, "depthwise": 32, "dot": 32, "window": 18,
                             "attention": 14},
       "UNPADDED_KERNELS": 20, "LONG_S": 0.02}
SCALES = (1.0, 0.85, 0.75, 0.6)
# name: (long_s, passes, long_budget_s) of a protocol derived from version 12's runs: a kernel over
# long_s is timed once a pass, or on till long_budget_s (version 12: BUDGET_S); the first passes passes
PROTOCOLS = {"v12": (0.02, 2, calibrate.BUDGET_S), "long 5 ms": (0.005, 2, calibrate.BUDGET_S),
             "long 5 ms, one run": (0.005, 2, 0.0), "one pass": (0.02, 1, calibrate.BUDGET_S)}


@contextlib.contextmanager
def kernel_set(**constants):
    """``jaxcost.perf.calibrate``'s constants set to ``constants`` for the duration."""
    old = {name: getattr(calibrate, name) for name in constants}
    vars(calibrate).update(constants)
    try:
        yield
    finally:
        vars(calibrate).update(old)


def scaled(scale: float) -> dict:
    """Version 12's kernel counts times ``scale``, rounded down (attention's kept: its rows are
    those XLA compiled into one kernel, not a prefix of its picks)."""
    counts = {cls: n if cls == "attention" else int(n * scale) for cls, n in V12["KERNELS_PER_CLASS"].items()}
    return {"KERNELS_PER_CLASS": counts, "UNPADDED_KERNELS": int(V12["UNPADDED_KERNELS"] * scale)}


def _key(kernel) -> tuple:
    cls, fn, xs, ws = kernel
    return cls, tuple(xs), tuple(ws), tuple(sorted(getattr(fn, "keywords", {}).items()))


def kept(table: list, scale: float) -> list[bool]:
    """Which rows of a version-12 ``table`` the kernel set :func:`scaled` ``scale`` has. The rows are
    in ``calibration_kernels()`` order (the attention kernels XLA did not compile into one dropped,
    after every conv, dot and pool row); attention, memory and paging rows are all kept."""
    with kernel_set(**V12):
        every = calibrate.calibration_kernels()
    with kernel_set(**scaled(scale)):
        picked = {_key(k) for k in calibrate.calibration_kernels()}
    before = next(i for i, k in enumerate(every) if k[0] == "attention")
    if sum(r[0] not in ("attention", "memory", "fault") for r in table) != before:
        raise SystemExit("not a version-12 calibration table: its rows do not match version 12's kernels")
    return [i >= before or _key(every[i]) in picked for i in range(len(table))]


def cut(peaks: dict, scale: float) -> dict:
    """The version-12 calibration ``peaks`` with only the rows :func:`kept` at ``scale``, its rate
    model fitted again."""
    if peaks["calibration"] != 12:
        raise SystemExit(f"a version-{peaks['calibration']} calibration: only version-12 tables are cut here")
    rows = [r for r, k in zip(peaks["kernel_table"], kept(peaks["kernel_table"], scale)) if k]
    fits = fit_rates(rows)
    return {**peaks, "kernel_table": rows, "kernel_fits": [dataclasses.asdict(f) for f in fits],
            "kernel_flops_per_s": class_rates(rows)}


def record() -> tuple[dict, list, float]:
    """A version-12 calibration (``jaxcost.perf.peaks.measure_peaks``) with every run that
    ``median_over_passes`` timed kept: ``(peaks, runs, overhead)``, ``runs[i]`` the warm-up and
    each pass's runs of the i-th kernel or program in timing order."""
    timed, order, overhead = {}, {}, {}
    time_runs, median_over_passes, call_overhead = (jaxcost.perf.stats.time_runs, calibrate.median_over_passes,
                                                    calibrate.call_overhead)

    def keep_runs(fn, *args, **kwargs):
        runs = time_runs(fn, *args, **kwargs)
        timed.setdefault(id(fn), []).append(list(runs))
        return runs

    def keep_order(fns, *args, **kwargs):
        timed.clear()  # runs timed before (the matmul peak, ...): their objects' ids may be reused by now
        order["fns"] = list(fns)  # alive until the calibration returns: no id is reused meanwhile
        return median_over_passes(fns, *args, **kwargs)

    def keep_overhead(device):
        overhead["s"] = call_overhead(device)
        return overhead["s"]

    with kernel_set(**V12, median_over_passes=keep_order, call_overhead=keep_overhead), \
            contextlib.ExitStack() as stack:
        stack.callback(setattr, jaxcost.perf.stats, "time_runs", time_runs)
        jaxcost.perf.stats.time_runs = keep_runs
        peaks = {**measure_peaks(rounds=1).to_dict(), "calibration": 12}  # version 12's kernels and protocol
    runs = [timed[id(fn)] for fn in order["fns"]]
    again = protocol(peaks, runs, overhead["s"], *PROTOCOLS["v12"])[0]["kernel_table"]
    if any(abs(a[6] / b[6] - 1) > 1e-9 for a, b in zip(again, peaks["kernel_table"]) if b[6]):  # runs kept = runs timed
        raise RuntimeError("the recorded runs do not give the calibration's own table")
    order.clear()
    return peaks, runs, overhead["s"]


def _stopped(runs: list[float], repeats: int, budget_s: float) -> list[float]:
    """The first of ``runs`` that ``time_runs(fn, repeats, budget_s)`` would have timed: at least
    ``repeats``, then on while they took under ``budget_s`` (a prefix: ``runs`` were timed with as
    many repeats and as long a budget or more)."""
    taken = []
    for t in runs:
        if len(taken) >= repeats and sum(taken) >= budget_s:
            break
        taken.append(t)
    return taken


def protocol(peaks: dict, runs: list, overhead: float, long_s: float, passes: int,
             long_budget_s: float) -> tuple[dict, list[float]]:
    """The recorded calibration's table as the protocol ``(long_s, passes, long_budget_s)`` would have
    timed it, from the same runs (a kernel over ``long_s``: one run a pass, or as many as fill
    ``long_budget_s``; the first ``passes`` passes), and the seconds of runs it keeps of each table row (0 for paging rows) and program."""
    seconds, costs = [], []
    for warm_up, *each_pass in runs:
        typical, best, cost = warm_up[0], math.inf, warm_up[0]
        for p in each_pass[:passes]:
            timed = (_stopped(p, 1, long_budget_s) if typical > long_s else
                     _stopped(p, calibrate.REPEATS, calibrate.BUDGET_S))
            best = typical = min(best, statistics.median(timed))
            cost += sum(timed)
        seconds.append(best)
        costs.append(cost)
    programs = len(peaks["program_rows"])
    slots = [round((i + 0.5) * (len(seconds) - programs) / programs) + i for i in range(programs)]  # as measure_kernel_table
    kernel_s = iter([(s, c) for i, (s, c) in enumerate(zip(seconds, costs)) if i not in slots])
    table, row_costs = [], []
    for row in peaks["kernel_table"]:
        row = list(row)
        if row[0] != "fault":
            s, c = next(kernel_s)
            row[6] = max(s - overhead, 0.5 * s)
            row[4] = row[5] / row[6]
        table.append(row)
        row_costs.append(c if row[0] != "fault" else 0.0)
    program_rows_ = [[r[0], seconds[i], *r[2:]] for r, i in zip(peaks["program_rows"], slots)]
    fits = fit_rates(table)
    return ({**peaks, "kernel_table": table, "kernel_fits": [dataclasses.asdict(f) for f in fits],
             "kernel_flops_per_s": class_rates(table), "program_rows": program_rows_},
            row_costs + [costs[i] for i in slots])


def priced(tables: dict[str, dict]) -> dict[str, DevicePeaks]:
    """Each table as a :class:`DevicePeaks` with its in-program factor fitted again."""
    programs = prepare_programs(jax.devices("cpu")[0])
    return {name: refitted(DevicePeaks.from_dict(table), programs)[0] for name, table in tables.items()}


def price_run(run: dict, tables: dict[str, DevicePeaks], label: str) -> list[dict]:
    """predicted / measured of every model of ``run`` under every table (each model analysed once)."""
    rows = []
    for r in track([r for r in run["rows"] if "ratio" in r], description=f"pricing {label}"):
        fn, args = program(r["source"], r["model"], r["batch"])
        a = jaxcost.analyze(fn, *args, theory=False)
        rows.append({"model": r["model"], "batch": r["batch"], "measured_s": r["measured_s"],
                     **{name: program_roofline(a, p).predicted_s / r["measured_s"] for name, p in tables.items()}})
    return rows


def markdown(results: list[dict], recorded: list[dict], host: str) -> str:
    lines = [f"# How much calibration `jaxcost peaks` needs ({host})", "",
             ("Version-12 calibrations cut down after the fact and priced against held-out runs' measured times "
              "(`benchmarks/calibration_ablation.py`: nothing timed again, so within a run's rows the columns "
              "differ by the cut alone). Kernels: version 12's spread-out kernels per class times the scale "
              "(conv 32, conv1x1 28, grouped 38, depthwise 32, dot 32, window 18, unpadded 20; rounded down). "
              "Protocol: from calibrations recorded with every timed run kept -- version 12's (a kernel over "
              "20 ms run once a pass, or more to fill 10 ms; others 3+ runs and on to fill 10 ms; the lowest "
              "median of 2 passes), the same with a kernel over 5 ms run once a pass (or on to fill 10 ms; "
              "'one run': once), or one pass only."), "",
             "| run | calibration | protocol | kernels | table rows | within ±10 % | within ±25 % | median abs error |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        s = r["summary"]
        lines.append(f"| {r['run']} | {r['calibration']} | {r['protocol']} | x{r['scale']:.2f} | {r['rows']} | "
                     f"{s['within_10']:.0%} | {s['within_25']:.0%} | {s['median_abs_error']:.1%} |")
    if recorded:
        lines += ["", "Timing cost of each protocol (seconds of runs it keeps, kernels and programs; compiling apart):", "",
                  "| calibration | protocol | kernels | timing |", "|---|---|---:|---:|"]
        lines += [f"| {c['calibration']} | {c['protocol']} | x{c['scale']:.2f} | {c['timing_s']:.2f} s |" for c in recorded]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job", action="append", default=None,
                   help="RUN[:PEAKS_JSON,...]: a predict_heldout.py results name and the calibrations to cut (default its own)")
    p.add_argument("--record", type=int, default=0, help="calibrations to measure with every run kept")
    p.add_argument("--out", default="calibration_ablation")
    args = p.parse_args()
    jobs = []
    for job in args.job or ["predict_heldout_run9"]:
        name, _, paths = job.partition(":")
        with open(os.path.join(RESULTS, name + ".json")) as f:
            run = json.load(f)
        if not paths and "peaks" not in run:
            raise SystemExit(f"{name}.json holds no calibration: name one (RUN:PEAKS_JSON)")
        calibrations = {"the run's": run["peaks"]} if not paths else {}
        for path in filter(None, paths.split(",")):
            with open(path) as f:
                (calibrations[os.path.basename(path)],) = json.load(f).values()
        jobs.append((name, run, calibrations))
    tables, meta, recorded = {}, {}, []
    for i in range(args.record):
        peaks, runs, overhead = record()
        for label, (long_s, passes, long_budget_s) in PROTOCOLS.items():
            table, costs = protocol(peaks, runs, overhead, long_s, passes, long_budget_s)
            for scale in SCALES:
                name = f"recorded {i + 1}|{label}|{scale}"
                tables[name] = cut(table, scale)
                meta[name] = (f"recorded {i + 1}", label, scale)
                mask = kept(table["kernel_table"], scale) + [True] * len(table["program_rows"])
                recorded.append({"calibration": f"recorded {i + 1}", "protocol": label, "scale": scale,
                                 "timing_s": sum(c for c, k in zip(costs, mask) if k)})
    results = []
    for name, run, calibrations in jobs:
        own, own_meta = {}, {}
        for label, calibration in calibrations.items():
            for scale in SCALES:
                own[f"{label}|v12|{scale}"] = cut(calibration, scale)
                own_meta[f"{label}|v12|{scale}"] = (label, "v12", scale)
        every = priced({**own, **tables})
        rows = price_run(run, every, name)
        for key, (cal, proto, scale) in {**own_meta, **meta}.items():
            results.append({"run": name, "calibration": cal, "protocol": proto, "scale": scale,
                            "rows": len(every[key].kernel_table), "summary": stats(rows, key)})
    save(args.out, {"machine": machine(), "results": results, "recorded": recorded},
         markdown(results, recorded, machine()))


if __name__ == "__main__":
    main()
