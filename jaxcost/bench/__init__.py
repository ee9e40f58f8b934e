"""Backend benchmarks, device peaks and the roofline model."""

from jaxcost.bench.peaks import (
    PUBLISHED_PEAKS,
    DevicePeaks,
    cache_path,
    get_peaks,
    measure_bandwidth,
    measure_matmul_flops,
    measure_peaks,
    published_peaks,
)
from jaxcost.bench.roofline import (
    Roofline,
    RooflinePoint,
    achieved,
    hfu,
    mfu,
    plot_roofline,
    roofline,
)
from jaxcost.bench.stats import TimingStats
from jaxcost.bench.timing import (
    CSV_COLUMNS,
    DEFAULT_OPTION_SETS,
    BenchmarkResult,
    available_backends,
    benchmark,
    results_from_csv,
    results_from_json,
    results_table,
    results_to_csv,
    results_to_json,
    sweep,
)

__all__ = [
    "CSV_COLUMNS", "DEFAULT_OPTION_SETS", "PUBLISHED_PEAKS", "BenchmarkResult", "DevicePeaks",
    "Roofline", "RooflinePoint", "TimingStats", "achieved", "available_backends", "benchmark",
    "cache_path", "get_peaks", "hfu", "measure_bandwidth", "measure_matmul_flops",
    "measure_peaks", "mfu", "plot_roofline", "published_peaks", "results_from_csv",
    "results_from_json", "results_table", "results_to_csv", "results_to_json", "roofline",
    "sweep",
]
