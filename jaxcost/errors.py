"""Errors jaxcost raises on purpose."""


class AnalysisError(RuntimeError):
    """A function or model could not be traced, lowered or compiled for analysis.

    The message names the function and carries JAX's own error.
    """
