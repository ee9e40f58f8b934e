"""``jaxcost diff a.json b.json [--fail-above 2%] [--json]``: what changed between two JSON
reports (:func:`jaxcost.delta`), and a CI gate.

Exit codes: 0, or 1 when ``--fail-above X%`` is given and a cost total (parameters, flops or
bytes accessed, of either module, or the theory's) grew by more than X %; 2 for a bad argument
or a file that is not a jaxcost JSON report.
"""

from __future__ import annotations

import json

from jaxcost.cli.targets import UsageError


def parse_percent(text: str) -> float:
    """``"2%"`` or ``"2"`` -> 0.02; a UsageError for anything else or a negative value."""
    try:
        value = float(text.strip().removesuffix("%")) / 100
    except ValueError:
        raise UsageError(f"--fail-above must be a percentage such as 2%, got {text!r}") from None
    if not value >= 0:
        raise UsageError(f"--fail-above must be a percentage >= 0, got {text!r}")
    return value


def _cmd_diff(args) -> int:
    from jaxcost.diff.delta import delta

    threshold = parse_percent(args.fail_above) if args.fail_above is not None else None
    try:
        d = delta(args.a, args.b)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    except KeyError as e:
        raise UsageError(f"{args.a} or {args.b} is not a jaxcost JSON report: no field {e}") from None
    worse = d.regressions(threshold) if threshold is not None else []
    if args.json:
        print(json.dumps({**d.to_dict(), "regressions": [c.what for c in worse]}, indent=2))
    else:
        d.summary()
        if threshold is not None:
            print(f"regressions above {threshold:.2%}: " + ("; ".join(map(repr, worse)) if worse else "none"))
    return 1 if worse else 0


def add_command(sub) -> None:
    d = sub.add_parser("diff", help="what changed between two JSON reports (jaxcost analyze --json); a CI gate")
    d.add_argument("a", help="JSON report before (Analysis.to_json / jaxcost analyze --json)")
    d.add_argument("b", help="JSON report after")
    d.add_argument("--fail-above", default=None, metavar="PCT",
                   help="exit 1 when a cost total (params, flops, bytes accessed) grows by more than PCT, e.g. 2%%")
    d.add_argument("--json", action="store_true", help="print the delta as JSON instead of tables")
    d.set_defaults(func=_cmd_diff)
