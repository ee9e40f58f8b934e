"""Theory engine: hand-derived cost of each jaxpr equation, by a primitive → rule registry."""

from jaxcost.theory.engine import analyze_jaxpr
from jaxcost.theory.registry import Cost, EqnCost, TheoryResult, TheoryTotals, registered, rule

__all__ = ["Cost", "EqnCost", "TheoryResult", "TheoryTotals", "analyze_jaxpr", "registered", "rule"]
