"""How long ``jaxcost peaks`` takes: the command run afresh (a new process, an empty cache) ``--runs``
times in a row, each run's wall time from the shell's side -- imports, calibration and writing the
cache -- and, from the cache it wrote, what the calibration measured.

    python benchmarks/peaks_time.py [--runs 6] [--rounds 1] [--against CHECKOUT] [--out peaks_time]

With ``--against`` (another checkout of jaxcost, e.g. a ``git worktree`` of an older commit) its
``jaxcost peaks`` runs too, alternating with this one's, so that both meet the machine alike (its
speed moves the wall time by 20 % within minutes); both are reported.

Writes benchmarks/results/<out>.json and .md. The target (issue 17) is under 30 s for the default
one-round calibration; on a 2-core VM the machine's speed moves the figure by 20 % within minutes,
so several runs are reported, not one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import machine, save

TARGET_S = 30.0


def one_run(rounds: int, checkout: str | None = None) -> dict:
    """``jaxcost peaks --refresh --rounds <rounds>`` in a fresh process with an empty cache (of the
    jaxcost in ``checkout`` when given)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "JAXCOST_CACHE_DIR": cache}
        if checkout:
            env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(checkout), env.get("PYTHONPATH", "")])
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "jaxcost", "peaks", "--refresh", "--rounds", str(rounds)],
                       env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t
        (peaks,) = json.loads((Path(cache) / "peaks.json").read_text()).values()
    return {"wall_s": wall, "kernels": len(peaks["kernel_table"]), "program_factor": peaks["program_factor"],
            "matmul_gflops": peaks["flops_per_s"]["float32"] / 1e9}


def summary(rows: list[dict]) -> str:
    walls = [r["wall_s"] for r in rows]
    return (f"median {statistics.median(walls):.1f} s, {min(walls):.1f}-{max(walls):.1f} s; "
            f"{sum(w < TARGET_S for w in walls)}/{len(walls)} under {TARGET_S:.0f} s")


def markdown(rows: list[dict], rounds: int, host: str, against: list[dict] | None = None,
             checkout: str | None = None) -> str:
    order = "in a row" if not against else f"alternating with `{checkout}`'s"
    lines = [f"# `jaxcost peaks` wall time ({host})", "",
             (f"`jaxcost peaks --refresh --rounds {rounds}` run {len(rows)} times {order}, each in a fresh process "
              "with an empty cache (imports, calibration, writing the cache), timed from outside. "
              f"This code: {summary(rows)}." + (f" `{checkout}`: {summary(against)}." if against else "")), "",
             "| run | code | wall | calibration kernels | matmul GFLOP/s | in-program factor |",
             "|---:|---|---:|---:|---:|---:|"]
    runs = [(i, "this", r) for i, r in enumerate(rows)] + [(i, "against", r) for i, r in enumerate(against or [])]
    lines += [f"| {i + 1} | {code} | {r['wall_s']:.1f} s | {r['kernels']} | {r['matmul_gflops']:.0f} | "
              f"{r['program_factor']:.3f} |" for i, code, r in sorted(runs, key=lambda x: (x[0], x[1] != "this"))]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--against", default=None, help="another jaxcost checkout, run alternately with this one")
    p.add_argument("--out", default="peaks_time")
    args = p.parse_args()
    rows, against = [], []
    for i in range(args.runs):
        rows.append(one_run(args.rounds))
        print(f"run {i + 1}/{args.runs}: {rows[-1]['wall_s']:.1f} s", file=sys.stderr)
        if args.against:
            against.append(one_run(args.rounds, args.against))
            print(f"run {i + 1}/{args.runs} of {args.against}: {against[-1]['wall_s']:.1f} s", file=sys.stderr)
    walls = [r["wall_s"] for r in rows]
    data = {"machine": machine(), "rounds": args.rounds, "target_s": TARGET_S, "rows": rows,
            "median_s": statistics.median(walls), "max_s": max(walls)}
    if args.against:
        data |= {"against": args.against, "against_rows": against,
                 "against_median_s": statistics.median(r["wall_s"] for r in against)}
    save(args.out, data, markdown(rows, args.rounds, machine(), against, args.against))


if __name__ == "__main__":
    main()
