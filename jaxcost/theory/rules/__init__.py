"""The theory rules, one module per op family; importing this package registers them all."""

from jaxcost.theory.rules import conv, dot, elementwise, movement, reduce  # noqa: F401
