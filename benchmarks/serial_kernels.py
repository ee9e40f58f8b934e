"""Matrix products on one thread: which convolutions XLA:CPU's YNNPACK runs on one thread of
several, and how the rate law prices them with and without its serial factor.

    python benchmarks/serial_kernels.py [--passes 2]

Each kernel (a stride-1 "SAME" convolution of the grid below: 1x1 and 3x3, every pair of
channel counts, on a batch of 8 28x28 maps and on one 14x14 map) is timed as the calibration
times its kernels (in place, the median run, the lowest of ``--passes`` passes:
:func:`jaxcost.perf.calibrate.measure_kernel_table`'s protocol) twice: in this process, and in a
child process pinned to one core (``taskset -c 0``). Their ratio is the speed-up the kernel gets
from the machine's other cores: ~1 where YNNPACK runs it on one thread. Beside them, the price
of the rate law fitted to the cached calibration (``jaxcost peaks``; no kernel here is one of
its kernels), with its serial factor (:data:`jaxcost.perf.rates.SERIAL_CLASSES`) and refitted
without it. Writes benchmarks/results/serial_kernels.json and .md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys

import jax
import numpy as np
from _results import errors, machine, save

from jaxcost.perf import calibrate, get_peaks
from jaxcost.perf.rates import SERIAL_N, Rates, fit_rates
from jaxcost.perf.stats import median_over_passes

CHANNELS = (64, 128, 256, 512, 1024)
# (batch, map side, input channels, output channels, window side)
KERNELS = ([(b, side, ci, co, 1) for b, side in ((8, 28), (1, 14)) for ci in CHANNELS for co in CHANNELS]
           + [(b, side, ci, co, 3) for b, side in ((8, 28), (1, 14)) for ci in (64, 256) for co in (32, 64, 128, 256)])


def timed(passes: int) -> list[float]:
    """Seconds of every :data:`KERNELS` kernel, timed as the calibration's are."""
    device = jax.devices("cpu")[0]
    runs = []
    for b, side, ci, co, k in KERNELS:
        cls = "conv1x1" if k == 1 else "conv"
        runs.append(calibrate.prepare_kernel(*calibrate.conv_kernel(cls, (b, side, ci, co, k, 1)), device)[0])
    return median_over_passes(runs, passes, calibrate.REPEATS, calibrate.BUDGET_S, calibrate.LONG_S)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # the pinned run: print its times
    args = p.parse_args()
    if args.child:
        print(json.dumps(timed(args.passes)))
        return
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the one-core run")
    peaks = get_peaks("cpu", measure=True)
    with_serial = peaks.rates("float32")
    table = peaks.kernel_table
    without = Rates(table, fit_rates(table, serial_classes=()), with_serial.class_rates, with_serial.peak,
                    with_serial.default_bandwidth)
    both = timed(args.passes)
    pinned = json.loads(subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--child", "--passes",
                                        str(args.passes)], check=True, capture_output=True, text=True).stdout)
    device = jax.devices("cpu")[0]
    rows = []
    for (b, side, ci, co, k), t, t1 in zip(KERNELS, both, pinned):
        cls = "conv1x1" if k == 1 else "conv"
        row = calibrate.prepare_kernel(*calibrate.conv_kernel(cls, (b, side, ci, co, k, 1)), device)[1]
        features = (row[1], row[2], row[3], row[7], row[8], row[10])
        fit = with_serial.fits.get((cls, row[9]))
        mask = fit.serial_kernels(np.array([features], dtype=float)) if fit is not None else None
        serial = mask is not None and bool(mask[0])
        rows.append({"kernel": [b, side, ci, co, k], "class": cls, "weight_bytes": 4 * k * k * ci * co, "seconds": t,
                     "pinned_seconds": t1, "speedup": t1 / t, "gflops": row[5] / t / 1e9, "priced_serial": serial,
                     "predicted_s": with_serial.seconds(cls, features, row[5], row[9]),
                     "predicted_without_s": without.seconds(cls, features, row[5], row[9])})
    fits = {c: with_serial.fits.get((c, "fusion:__ynn_fusion")) for c in ("conv1x1", "conv")}
    summary = {label: errors([abs(r[key] / r["seconds"] - 1) for r in rows])
               for label, key in (("with", "predicted_s"), ("without", "predicted_without_s"))}
    lines = [f"# Matrix products on one thread ({machine()})", "", __doc__.split("\n\n")[2].replace("\n", " "), "",
             "Rate law of the calibration: " + "; ".join(f"{c}: {f.step or 'no serial factor'}" for c, f in fits.items()
                                                         if f is not None), "",
             "| rate law | kernels | within ±10 % | within ±25 % | median abs error |", "|---|---:|---:|---:|---:|"]
    for label, s in summary.items():
        lines.append(f"| {label} its serial factor | {s['n']} | {s['within_10']:.0%} | {s['within_25']:.0%} | "
                     f"{s['median_abs_error']:.1%} |")
    lines += ["", "Speed-up from the second core (pinned / both), median, by the kernel's weights:", "",
              "| kernels | weights | output channels | speed-up |", "|---|---|---|---:|"]
    for label, test in (("up to 256 KiB", lambda r: r["weight_bytes"] <= 256 << 10),
                        ("512 KiB and more", lambda r: r["weight_bytes"] >= 512 << 10)):
        for n_label, wide in ((f"more than {SERIAL_N}", True), (f"{SERIAL_N} or fewer", False)):
            sel = [r["speedup"] for r in rows if test(r) and (r["kernel"][3] > SERIAL_N) == wide]
            if sel:
                lines.append(f"| {len(sel)} | {label} | {n_label} | {statistics.median(sel):.2f} |")
    lines += ["", ("| batch | side | in | out | window | weights | measured | GFLOP/s | pinned to one core | speed-up | "
                   "priced on one thread | pred/meas | without the factor |"),
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        b, side, ci, co, k = r["kernel"]
        lines.append(f"| {b} | {side} | {ci} | {co} | {k}x{k} | {r['weight_bytes'] >> 10} KiB | {r['seconds'] * 1e3:.3f} ms | "
                     f"{r['gflops']:.0f} | {r['pinned_seconds'] * 1e3:.3f} ms | {r['speedup']:.2f} | "
                     f"{'yes' if r['priced_serial'] else ''} | {r['predicted_s'] / r['seconds']:.2f} | "
                     f"{r['predicted_without_s'] / r['seconds']:.2f} |")
    save("serial_kernels", {"machine": machine(), "summary": summary, "rows": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
