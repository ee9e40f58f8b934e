"""The ``jaxcost`` command line: ``main.py`` parses, ``targets.py`` resolves what to analyse,
``bench.py`` holds the timing commands."""

from jaxcost.cli.main import main

__all__ = ["main"]
