"""Theory engine: hand-derived cost of each jaxpr equation, by a primitive → rule registry."""

from jaxcost.theory.engine import analyze_jaxpr, trip_count
from jaxcost.theory.registry import (
           EqnCost,
           TheoryCost,
           TheoryResult,
           register,
           register_expansion,
           registered,
)

__all__ = ["EqnCost", "TheoryCost", "TheoryResult", "analyze_jaxpr", "register", "register_expansion",
           "registered", "trip_count"]
