"""jaxcost: what a JAX program costs in theory, what XLA compiled, and why they differ."""
