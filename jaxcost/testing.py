"""Cost budgets in your test suite.

``assert_cost(fn, *args, flops=..., bytes_accessed=..., params=..., rel=0.01)`` analyses
``fn(*args)`` and fails, in one line, when a figure is off its budget by more than ``rel``:
``|measured - expected| > rel * |expected|`` (figures left out are not checked). ``flops`` and
``bytes_accessed`` are XLA's for the optimized module (the lowered one with ``compile=False``).

Snapshots: the pytest fixture ``jaxcost_snapshot`` (:mod:`jaxcost.pytest_plugin`, registered
when jaxcost is installed) compares a program with a JSON snapshot committed next to the test,
``__jaxcost__/<name>.json``, and rewrites it when pytest runs with ``--jaxcost-update``::

    def test_resnet_cost(jaxcost_snapshot):
        model = models.build_abstract("resnet18")
        jaxcost_snapshot(model, jax.ShapeDtypeStruct((8, 224, 224, 3), jnp.float32), name="resnet18")

The snapshot holds the totals (params, flops, bytes accessed) and each layer's flops, bytes
and params, keyed ``path|direction``; a change beyond ``rel`` in any of them, or a layer added
or removed, fails with what moved. A missing snapshot is written and the test fails once, so a
suite never passes against a baseline nobody committed (as pytest-regressions does).
"""

from __future__ import annotations

import json
import os


def _module(d: dict) -> str:
    """The module whose figures are checked: the optimized one when it was compiled."""
    return "compiler" if d["compiler"]["available"] else "compiler_unoptimized"


#: Figures a budget or a snapshot checks, as (name, getter on the JSON form of an Analysis).
FIGURES = {
    "params": lambda d: d["params"],
    "flops": lambda d: d[_module(d)]["flops"],
    "bytes_accessed": lambda d: d[_module(d)]["bytes_accessed"],
}


def _off(expected: float, measured: float, rel: float) -> bool:
    return abs(measured - expected) > rel * abs(expected)


def _change(expected: float, measured: float) -> str:
    if expected == 0:
        return "new" if measured else "+0.00%"
    return f"{(measured - expected) / abs(expected):+.2%}"


def _analyze(fn, args, analyze_kwargs):
    from jaxcost.analysis import analyze

    analyze_kwargs.setdefault("theory", False)  # budgets read XLA's figures only
    return analyze(fn, *args, **analyze_kwargs)


def assert_cost(fn, *args, flops: float | None = None, bytes_accessed: float | None = None,
                params: int | None = None, rel: float = 0.0, **analyze_kwargs):
    """Analyse ``fn(*args)`` (``analyze_kwargs`` go to :func:`jaxcost.analyze`) and check each
    given figure within ``rel``; returns the :class:`jaxcost.Analysis`. An AssertionError names
    the figure, the budget, the measured value and the relative change in one line."""
    budgets = {"flops": flops, "bytes_accessed": bytes_accessed, "params": params}
    if all(v is None for v in budgets.values()):
        raise ValueError("assert_cost() needs a budget: flops=, bytes_accessed= or params=")
    if not rel >= 0:
        raise ValueError(f"rel must be >= 0, got {rel!r}")
    a = _analyze(fn, args, analyze_kwargs)
    d = a.to_dict()
    for name, expected in budgets.items():
        if expected is None:
            continue
        got = FIGURES[name](d)
        if _off(expected, got, rel):
            raise AssertionError(f"{a.name}: {name} is {got:,.0f}, budget {expected:,.0f}: "
                                 f"{_change(expected, got)} (allowed ±{rel:.2%})")
    return a


def snapshot_of(d: dict) -> dict:
    """The part of a JSON report a snapshot keeps (with the backend and jax version it came from)."""
    import jax

    flops, nbytes = ("flops", "bytes_accessed") if d["compiler"]["available"] else (
        "flops_unoptimized", "bytes_unoptimized")
    return {"name": d["name"], "backend": d["backend"], "jax": jax.__version__,
            "totals": {k: get(d) for k, get in FIGURES.items()},
            "layers": {f"{r['path']}|{r['direction']}": {"flops": r[flops], "bytes": r[nbytes], "params": r["params"]}
                       for r in d["layers"]}}


def compare_snapshot(old: dict, new: dict, rel: float) -> list[str]:
    """One line per figure of ``new`` off ``old`` by more than ``rel``, and per layer added or
    removed (empty: they agree)."""
    out = []
    for k, v in new["totals"].items():
        was = old["totals"].get(k)
        if was is None or _off(was, v, rel):
            out.append(f"{k}: {'-' if was is None else f'{was:,.0f}'} -> {v:,.0f}"
                       + ("" if was is None else f" ({_change(was, v)})"))
    for key in sorted(old["layers"].keys() | new["layers"].keys()):
        a, b = old["layers"].get(key), new["layers"].get(key)
        if a is None or b is None:
            out.append(f"layer {key}: {'added' if a is None else 'removed'}")
            continue
        moved = [f"{k} {a[k]:,.0f} -> {b[k]:,.0f} ({_change(a[k], b[k])})"
                 for k in ("flops", "bytes", "params") if _off(a[k], b[k], rel)]
        if moved:
            out.append(f"layer {key}: " + ", ".join(moved))
    return out


def _write(path: str, snapshot: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(snapshot, f, indent=1, sort_keys=True)
        f.write("\n")


def check_snapshot(path: str, fn, *args, rel: float = 0.01, update: bool = False, **analyze_kwargs):
    """Compare ``fn(*args)`` with the snapshot at ``path`` (rewrite it when ``update``); raise an
    AssertionError listing what moved beyond ``rel``, or, when the snapshot is missing, after
    writing it. Returns the Analysis."""
    if not rel >= 0:
        raise ValueError(f"rel must be >= 0, got {rel!r}")
    a = _analyze(fn, args, analyze_kwargs)
    new = snapshot_of(a.to_dict())
    if update:
        _write(path, new)
        return a
    if not os.path.exists(path):
        _write(path, new)
        raise AssertionError(f"{a.name}: no cost snapshot at {path}; written now: commit it (the next run "
                             "compares with it)")
    with open(path) as f:
        old = json.load(f)
    moved = compare_snapshot(old, new, rel)
    if moved:
        where = ""
        if (old.get("backend"), old.get("jax")) != (new["backend"], new["jax"]):
            where = f" (snapshot from {old.get('backend')}, jax {old.get('jax')}; now {new['backend']}, jax {new['jax']})"
        head = (f"{a.name} moved beyond ±{rel:.2%} of its cost snapshot {path}{where}; "
                "rerun pytest with --jaxcost-update to accept:")
        more = [f"... and {len(moved) - 20} more"] if len(moved) > 20 else []
        raise AssertionError("\n  ".join([head, *moved[:20], *more]))
    return a
