"""What every benchmark script writes: results/<name>.json and .md, and the machine they ran on."""

from __future__ import annotations

import json
import os
import platform

import jax

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine() -> str:
    """``x86_64, 2 cores, jax 0.10.2, cpu``."""
    return f"{platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, {jax.default_backend()}"


def save(name: str, data: dict, markdown: str) -> None:
    """Write ``results/<name>.json`` and ``.md`` and print the Markdown."""
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(data, f, indent=2)
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write(markdown)
    print(markdown)
