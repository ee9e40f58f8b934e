"""Performance: timing, device peaks, kernel calibration, the roofline and its prediction."""

from jaxcost.perf.peaks import (
    PUBLISHED_PEAKS,
    DevicePeaks,
    cache_path,
    get_peaks,
    measure_bandwidth,
    measure_matmul_flops,
    measure_peaks,
    published_peaks,
)
from jaxcost.perf.results import (
    CSV_COLUMNS,
    BenchmarkResult,
    results_from_csv,
    results_from_json,
    results_table,
    results_to_csv,
    results_to_json,
)
from jaxcost.perf.roofline import (
    Roofline,
    RooflinePoint,
    achieved,
    hfu,
    mfu,
    plot_roofline,
    roofline,
)
from jaxcost.perf.stats import TimingStats
from jaxcost.perf.timing import DEFAULT_OPTION_SETS, available_backends, benchmark, sweep

__all__ = [
    "CSV_COLUMNS", "DEFAULT_OPTION_SETS", "PUBLISHED_PEAKS", "BenchmarkResult", "DevicePeaks",
    "Roofline", "RooflinePoint", "TimingStats", "achieved", "available_backends", "benchmark",
    "cache_path", "get_peaks", "hfu", "measure_bandwidth", "measure_matmul_flops",
    "measure_peaks", "mfu", "plot_roofline", "published_peaks", "results_from_csv",
    "results_from_json", "results_table", "results_to_csv", "results_to_json", "roofline",
    "sweep",
]
