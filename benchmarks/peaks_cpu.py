"""Measure this machine's CPU peaks (matmul FLOP/s, STREAM bandwidth, the effective FLOP/s
of each convolution class and the fixed cost per kernel).

Writes benchmarks/results/peaks_cpu.json. Run: python benchmarks/peaks_cpu.py
"""

import json
import os
import platform
import time

import jax

from jaxcost.perf import measure_peaks

OUT = os.path.join(os.path.dirname(__file__), "results", "peaks_cpu.json")


def main() -> None:
    t = time.perf_counter()
    peaks = measure_peaks("cpu", dtypes=("float32",), repeats=5)
    record = {
        **peaks.to_dict(),
        "jax": jax.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "measure_s": round(time.perf_counter() - t, 2),
        "ridge_flop_per_byte": peaks.flops_per_s["float32"] / peaks.bandwidth_bytes_per_s,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(record, f, indent=2)
    print(f"fp32 matmul: {peaks.flops_per_s['float32'] / 1e9:.1f} GFLOP/s")
    print(f"bandwidth:   {peaks.bandwidth_bytes_per_s / 1e9:.2f} GB/s")
    for cls, rate in peaks.kernel_flops_per_s.items():
        print(f"{cls:10s}   {rate / 1e9:.2f} GFLOP/s ({rate / peaks.flops_per_s['float32']:.1%} of the matmul peak)")
    print(f"per kernel:  {peaks.kernel_overhead_s * 1e6:.2f} us")
    print(f"({peaks.notes}) -> {OUT}")


if __name__ == "__main__":
    main()
