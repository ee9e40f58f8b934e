"""Machine-readable exports: dict/JSON (versioned schema), pandas, HTML.

JSON schema, version 3 (``schema_version``; 2 added the dtypes, optimizer state, target and
basis, and layer rows per (path, direction) with their own theory; 3 the directions
``recompute`` and ``optimizer``, the layers' ``input_grad`` / ``weight_grad`` theory and
``training``, the per-direction split of a training step, null for other programs;
``partitioning`` and ``collectives``)::

    {"schema_version": 3, "name", "backend", "device_kind", "target", "hbm", "compiled", "basis",
     "input_shapes", "input_dtypes", "param_dtypes", "params", "optimizer_state",
     "optimizer_state_bytes", "compiler": {"flops", "transcendentals", "bytes_accessed", "available"},
     "compiler_unoptimized": {...}, "corrected": {..., "reasons": [...]},
     "memory": {"argument_bytes", "output_bytes", "temp_bytes", "alias_bytes",
                "generated_code_bytes", "peak_bytes", "available"},
     "theory": {totals...} | null,
     "layers": [{"path", "direction", "params", "flops", "transcendentals", "bytes_accessed",
                 "flops_unoptimized", "bytes_unoptimized", "fusions", "theory": {...} | null,
                 "input_grad": {...} | null, "weight_grad": {...} | null}],
     "training": {"directions": {direction: {"theory_flops", "theory_contraction_flops", "xla_flops",
                  "xla_flops_unoptimized", "xla_bytes"}}, "input_grad_flops", "weight_grad_flops",
                  "model_flops", "hardware_flops"} | null,
     "partitioning": {"devices", "mesh", "specs", "manual", "basis"},
     "collectives": [{"name", "kind", "layer", "buffer_bytes", "group_size", "groups", "axes",
                      "link_bytes", "model", "seconds", "count"}],
     "ops": [{"name", "opcode", "shape", "fusion_kind", "flops", "transcendentals",
              "bytes_accessed", "layer", "direction", "layers"}],
     "warnings": [...], "timings": {"trace_s", "lower_s", "compile_s", "background_s", "waited_s",
                                      "price_s", "analyze_s"}}
"""

from __future__ import annotations

import dataclasses
import json

from jaxcost.report.format import BASIS

SCHEMA_VERSION = 3


def _plain(x):
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)
                if f.name not in ("raw", "instruction", "inner", "layer_bytes")}
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x


def _op(op) -> dict:
    return {"name": op.name, "opcode": op.opcode, "shape": op.shape, "fusion_kind": op.fusion_kind,
            "flops": op.flops, "transcendentals": op.transcendentals,
            "bytes_accessed": op.bytes_accessed, "layer": op.layer, "direction": op.direction,
            "layers": list(op.layers)}


def to_dict(a) -> dict:
    theory = getattr(a.theory, "totals", None)
    return {
        "schema_version": SCHEMA_VERSION,
        "name": a.name, "backend": a.backend, "device_kind": a.device_kind, "target": a.target, "hbm": str(a.hbm) if a.hbm is not None else None,
        "compiled": a.compiled, "basis": BASIS, "input_shapes": list(a.input_shapes),
        "input_dtypes": list(a.input_dtypes), "param_dtypes": list(a.param_dtypes), "params": a.params,
        "optimizer_state": a.optimizer_state, "optimizer_state_bytes": a.optimizer_state_bytes,
        "compiler": _plain(a.compiler), "compiler_unoptimized": _plain(a.compiler_unoptimized),
        "corrected": _plain(a.corrected), "memory": _plain(a.memory),
        "theory": _plain(theory) if theory is not None else None,
        "layers": [_plain(r) for r in a.layers],
        "training": _plain(a.training()) if a.is_training_step else None,
        "partitioning": {**_plain(a.partitioning), "basis": a.partitioning.basis},
        "collectives": [_plain(c) for c in a.collectives()] if a.compiled else [],
        "ops": [_op(op) for op in a.ops],
        "warnings": list(a.warnings), "timings": _plain(a.timings),
    }


def to_json(a, path=None, *, indent: int = 2) -> str:
    text = json.dumps(to_dict(a), indent=indent)
    if path is not None:
        with open(path, "w") as f:
            f.write(text)
    return text


def to_dataframe(a, what: str = "layers"):
    """``what``: "layers" (one row per layer) or "ops" (one row per top-level op)."""
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover
        raise ImportError("to_dataframe() needs pandas: pip install 'jaxcost[test]' or pandas") from e
    basis = a.partitioning.basis  # the compiler figures: per device of a partitioned program
    if what == "ops":
        return pd.DataFrame([{**_op(op), "basis": basis} for op in a.ops])
    if what != "layers":
        raise ValueError(f"what must be 'layers' or 'ops', not {what!r}")
    records = []
    for r in a.layers:
        rec = _plain(r)
        theory = rec.pop("theory") or {}
        rec.update({f"theory_{k}": v for k, v in theory.items()})
        for grad in ("input_grad", "weight_grad"):
            rec[f"theory_{grad}_flops"] = (rec.pop(grad) or {}).get("flops_xla")
        rec["fusions"] = ", ".join(rec["fusions"])
        rec["basis"] = basis
        records.append(rec)
    return pd.DataFrame(records)


def to_html(a, path=None) -> str:
    """The standalone HTML report (:mod:`jaxcost.report.html`); written to ``path`` if given."""
    from jaxcost.report.html import report_html

    text = report_html(a)
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text
