"""The ``jaxcost`` command line.

    jaxcost analyze resnet50 --batch 8            # a zoo model
    jaxcost analyze mypkg.mod:fn --input-shape 8,224,224,3 --json out.json
    jaxcost models                                 # list the zoo
"""

from __future__ import annotations

import argparse
import sys

from jaxcost.cli import bench
from jaxcost.cli.targets import UsageError, resolve

EXIT_USAGE = 2


def _cmd_analyze(args) -> int:
    import jaxcost

    if args.batch <= 0:
        raise UsageError(f"--batch must be positive, got {args.batch}")
    fn, inputs, name = resolve(args.target, batch=args.batch, input_shape=args.input_shape,
                               dtype=args.dtype)
    a = jaxcost.analyze(fn, *inputs, backend=args.backend, compile=not args.no_compile, name=name)
    if args.json:
        text = a.to_json(None if args.json == "-" else args.json)
        if args.json == "-":
            print(text)
            return 0
    a.summary(max_layers=args.layers)
    return 0


def _cmd_models(args) -> int:
    import models

    for name in models.names():
        ref = models.reference(name)
        extra = f"  params {ref.params:,}  ({ref.source})" if ref and ref.params else ""
        print(f"{name:24s} input {models.input_shape(name)}{extra}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxcost", description="JAX/XLA compiled-graph cost analyzer")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyze a zoo model or package.module:callable")
    a.add_argument("target")
    a.add_argument("--batch", type=int, default=1)
    a.add_argument("--input-shape", help="input shape; without batch for zoo models, "
                                         "with batch for callables (e.g. 224,224,3)")
    a.add_argument("--dtype", default="float32")
    a.add_argument("--backend", default=None, help="cpu, gpu, tpu (default: jax's default)")
    a.add_argument("--json", metavar="PATH", help="write the JSON report to PATH ('-' = stdout)")
    a.add_argument("--no-compile", action="store_true", help="lowered module only (fast path)")
    a.add_argument("--layers", type=int, default=30, help="layers shown in the table")
    a.set_defaults(func=_cmd_analyze)
    m = sub.add_parser("models", help="list the model zoo")
    m.set_defaults(func=_cmd_models)
    bench.add_commands(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed its one-line error
        return int(e.code or 0)
    from jaxcost.errors import AnalysisError

    try:
        return args.func(args)
    except UsageError as e:
        print(f"jaxcost: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except AnalysisError as e:
        print(f"jaxcost: analysis failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
