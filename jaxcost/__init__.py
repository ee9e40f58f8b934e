"""jaxcost: what a JAX program costs in theory, what XLA compiled, and why they differ.

>>> import jaxcost, jax, jax.numpy as jnp
>>> a = jaxcost.analyze(lambda x, w: jnp.tanh(x @ w), jnp.ones((8, 64)), jnp.ones((64, 64)))
>>> a.compiler.flops, a.compiler.transcendentals
(65536.0, 512.0)
"""

from jaxcost import conventions
from jaxcost.analysis import Analysis, LayerRow, Timings, analyze, analyze_theory
from jaxcost.compiler.corrections import Corrected
from jaxcost.compiler.ops import ModuleCost, Op
from jaxcost.compiler.totals import CostTotals, MemoryStats
from jaxcost.diff.compare import Comparison, compare
from jaxcost.diff.delta import Delta, delta
from jaxcost.diff.explain import Difference, Explanation
from jaxcost.diff.fusion import FusionReport, KernelFusion
from jaxcost.errors import AnalysisError
from jaxcost.perf.peaks import DevicePeaks
from jaxcost.perf.predict import program_roofline
from jaxcost.perf.profile import Profile, profile
from jaxcost.perf.results import BenchmarkResult
from jaxcost.perf.roofline import Roofline, RooflinePoint
from jaxcost.perf.timing import benchmark
from jaxcost.report.plots import plot_layers, plot_roofline
from jaxcost.theory import formulas
from jaxcost.theory.registry import TheoryCost, TheoryResult
from jaxcost.train.cost import StepCost
from jaxcost.train.step import TrainStep, train_step
from jaxcost.transforms.fold_bn import FoldResult, fold_batchnorm

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "AnalysisError",
    "BenchmarkResult",
    "Comparison",
    "Corrected",
    "CostTotals",
    "Delta",
    "DevicePeaks",
    "Difference",
    "Explanation",
    "FoldResult",
    "FusionReport",
    "KernelFusion",
    "LayerRow",
    "MemoryStats",
    "ModuleCost",
    "Op",
    "Profile",
    "Roofline",
    "RooflinePoint",
    "StepCost",
    "TheoryCost",
    "TheoryResult",
    "Timings",
    "TrainStep",
    "analyze",
    "analyze_theory",
    "benchmark",
    "compare",
    "conventions",
    "delta",
    "fold_batchnorm",
    "formulas",
    "plot_layers",
    "plot_roofline",
    "profile",
    "program_roofline",
    "train_step",
]
