"""Cost budgets in your test suite.

``assert_cost(fn, *args, flops=..., bytes_accessed=..., params=..., rel=0.01)`` analyses
``fn(*args)`` and fails, in one line, when a figure is off its budget by more than ``rel``
(figures left out are not checked). Snapshots: the pytest fixture ``jaxcost_snapshot``
(:mod:`jaxcost.pytest_plugin`, registered when jaxcost is installed) compares a program with a
JSON snapshot committed next to the test (``__jaxcost__/<name>.json``) and rewrites it when
pytest runs with ``--jaxcost-update``::

    def test_resnet_cost(jaxcost_snapshot):
        model = models.build_abstract("resnet18")
        jaxcost_snapshot(model, jax.ShapeDtypeStruct((8, 224, 224, 3), jnp.float32), name="resnet18")

The snapshot holds the totals (params, XLA flops optimized, bytes accessed) and each layer's
flops, bytes and params; a change beyond ``rel`` in any of them fails with the layers that moved.
"""

from __future__ import annotations

import json
import os

#: Figures a budget or a snapshot checks, as (name, getter on the JSON form).
FIGURES = {
    "params": lambda d: d["params"],
    "flops": lambda d: d["compiler"]["flops"] if d["compiler"]["available"] else d["compiler_unoptimized"]["flops"],
    "bytes_accessed": lambda d: (d["compiler"] if d["compiler"]["available"] else d["compiler_unoptimized"])[
        "bytes_accessed"],
}


def _off(expected: float, measured: float, rel: float) -> bool:
    return abs(measured - expected) > rel * abs(expected)


def assert_cost(fn, *args, flops: float | None = None, bytes_accessed: float | None = None,
                params: int | None = None, rel: float = 0.0, **analyze_kwargs):
    """Analyse ``fn(*args)`` and check each given figure within ``rel`` (relative); returns the
    :class:`jaxcost.Analysis`. ``flops`` / ``bytes_accessed`` are XLA's for the optimized module."""
    from jaxcost.analysis import analyze

    a = analyze(fn, *args, theory=False, **analyze_kwargs)
    d = a.to_dict()
    for name, expected in (("flops", flops), ("bytes_accessed", bytes_accessed), ("params", params)):
        if expected is None:
            continue
        got = FIGURES[name](d)
        if _off(expected, got, rel):
            change = (got - expected) / abs(expected) if expected else float("inf")
            raise AssertionError(f"{a.name}: {name} {got:,.0f} is {change:+.2%} off the budget {expected:,.0f} "
                                 f"(allowed ±{rel:.2%})")
    return a


def snapshot_of(d: dict) -> dict:
    """The part of a JSON report a snapshot keeps."""
    return {"name": d["name"], "totals": {k: get(d) for k, get in FIGURES.items()},
            "layers": {f"{r['path']}|{r['direction']}": {"flops": r["flops"] or r["flops_unoptimized"],
                                                          "bytes": r["bytes_accessed"] or r["bytes_unoptimized"],
                                                          "params": r["params"]} for r in d["layers"]}}


def compare_snapshot(old: dict, new: dict, rel: float) -> list[str]:
    """One line per figure of ``new`` off ``old`` by more than ``rel`` (empty: they agree)."""
    out = []
    for k, v in new["totals"].items():
        if _off(old["totals"].get(k, 0), v, rel):
            out.append(f"{k}: {old['totals'].get(k)} -> {v}")
    for key in sorted(old["layers"].keys() | new["layers"].keys()):
        a, b = old["layers"].get(key), new["layers"].get(key)
        if a is None or b is None:
            out.append(f"layer {key}: {'added' if a is None else 'removed'}")
            continue
        moved = [f"{k} {a[k]:,.0f} -> {b[k]:,.0f}" for k in ("flops", "bytes", "params") if _off(a[k], b[k], rel)]
        if moved:
            out.append(f"layer {key}: " + ", ".join(moved))
    return out


def check_snapshot(path: str, fn, *args, rel: float = 0.01, update: bool = False, **analyze_kwargs):
    """Compare ``fn(*args)`` with the snapshot at ``path`` (write it when missing or ``update``);
    raise AssertionError listing what moved beyond ``rel``. Returns the Analysis."""
    from jaxcost.analysis import analyze

    a = analyze(fn, *args, theory=False, **analyze_kwargs)
    new = snapshot_of(a.to_dict())
    if update or not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            json.dump(new, f, indent=1, sort_keys=True)
        return a
    with open(path) as f:
        old = json.load(f)
    moved = compare_snapshot(old, new, rel)
    if moved:
        head = f"{a.name} moved beyond ±{rel:.2%} of its snapshot {path} (rerun with --jaxcost-update to accept):"
        raise AssertionError("\n  ".join([head, *moved[:20]]))
    return a
