"""The ``jaxcost`` command line: ``main.py`` parses, ``targets.py`` resolves what to analyse,
``bench.py`` holds the timing commands, ``diff.py`` ``jaxcost diff``."""

from jaxcost.cli.main import main

__all__ = ["main"]
