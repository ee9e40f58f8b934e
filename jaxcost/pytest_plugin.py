"""The pytest plugin behind ``jaxcost_snapshot`` (see :mod:`jaxcost.testing`): registered through
the ``pytest11`` entry point when jaxcost is installed; ``--jaxcost-update`` rewrites snapshots."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--jaxcost-update", action="store_true", default=False,
                     help="rewrite jaxcost cost snapshots (__jaxcost__/*.json) instead of comparing with them")


@pytest.fixture
def jaxcost_snapshot(request):
    """``jaxcost_snapshot(fn, *args, name=..., rel=0.01, folder=None, **analyze_kwargs)``: compare
    the program's costs with ``<folder>/<name>.json``, by default ``__jaxcost__/`` next to the test
    file and the test's name; returns the :class:`jaxcost.Analysis`."""
    from jaxcost.testing import check_snapshot

    update = request.config.getoption("--jaxcost-update")

    def check(fn, *args, name: str | None = None, rel: float = 0.01, folder=None, **kwargs):
        folder = folder if folder is not None else request.path.parent / "__jaxcost__"
        path = os.path.join(folder, f"{name or request.node.name}.json")
        return check_snapshot(path, fn, *args, rel=rel, update=update, **kwargs)

    return check
