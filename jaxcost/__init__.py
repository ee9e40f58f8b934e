"""jaxcost: what a JAX program costs in theory, what XLA compiled, and why they differ.

>>> import jaxcost, jax, jax.numpy as jnp
>>> a = jaxcost.analyze(lambda x, w: jnp.tanh(x @ w), jnp.ones((8, 64)), jnp.ones((64, 64)))
>>> a.compiler.flops, a.compiler.transcendentals
(65536.0, 512.0)
"""

from jaxcost.analysis import Analysis, LayerRow, analyze, analyze_theory
from jaxcost.bench.predict import Comparison, Prediction, benchmark, compare, program_roofline
from jaxcost.compiler.corrections import Corrected
from jaxcost.compiler.ops import Op
from jaxcost.compiler.totals import CostTotals, MemoryStats
from jaxcost.errors import AnalysisError
from jaxcost.fold import FoldResult, fold_batchnorm

__version__ = "0.1.0"

__all__ = [
           "Analysis",
           "AnalysisError",
           "Comparison",
           "Corrected",
           "CostTotals",
           "FoldResult",
           "LayerRow",
           "MemoryStats",
           "Op",
           "Prediction",
           "analyze",
           "analyze_theory",
           "benchmark",
           "compare",
           "fold_batchnorm",
           "program_roofline",
]
