"""What every benchmark script writes: results/<name>.json and .md, and the machine they ran on."""

from __future__ import annotations

import json
import os
import platform
import statistics

import jax

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine() -> str:
    """``x86_64, 2 cores, jax 0.10.2, cpu``."""
    return f"{platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, {jax.default_backend()}"


def errors(abs_errors: list[float]) -> dict:
    """``n``, the fractions within ±10 % and ±25 % and the median of ``abs_errors`` (each
    ``|predicted / measured - 1|``); None for the figures of none."""
    n = len(abs_errors)
    return {"n": n, "within_10": sum(e <= 0.10 for e in abs_errors) / n if n else None,
            "within_25": sum(e <= 0.25 for e in abs_errors) / n if n else None,
            "median_abs_error": statistics.median(abs_errors) if n else None}


def save(name: str, data: dict, markdown: str) -> None:
    """Write ``results/<name>.json`` and ``.md`` and print the Markdown."""
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(data, f, indent=2)
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write(markdown)
    print(markdown)
