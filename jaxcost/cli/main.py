"""The ``jaxcost`` command line.

    jaxcost analyze resnet50 --batch 8            # a zoo model
    jaxcost analyze resnet50 --batch 8 --train --optimizer adam --remat   # one training step
    jaxcost analyze mypkg.mod:fn --input-shape 8,224,224,3 --json out.json
    jaxcost models                                 # list the zoo
    jaxcost diff before.json after.json --fail-above 2%   # what changed; exit 1 on a regression

Every error is one line on stderr: exit code 2 for a bad argument (checked before any
work, output paths included), 1 when the analysis itself fails.
"""

from __future__ import annotations

import argparse
import sys

from jaxcost.cli import bench, diff
from jaxcost.cli.targets import (
    UsageError,
    add_train_arguments,
    check_backend,
    check_output,
    mesh_options,
    parse_dtype,
    resolve,
    train_options,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _param_dtype(args, zoo: bool) -> str | None:
    """``--param-dtype``, defaulting to ``--dtype`` for zoo models (the CLI builds them, so the
    whole model runs in that dtype); a user's module keeps its own parameter dtype unless told."""
    if args.param_dtype is not None:
        return args.param_dtype
    if zoo and parse_dtype(args.dtype) != parse_dtype("float32"):
        return args.dtype  # zoo parameters are float32 as built: nothing to pass otherwise
    return None


def _cmd_analyze(args) -> int:
    import jaxcost

    check_output(args.json, "--json")
    check_output(args.html, "--html")
    check_backend(args.backend)
    if args.hardware is not None:
        from jaxcost.hardware import parse_target

        if args.backend is not None:
            raise UsageError("give --backend or --target, not both")
        try:
            parse_target(args.hardware)
        except ValueError as e:
            raise UsageError(f"--target: {e}") from None
    if args.param_dtype is not None:
        parse_dtype(args.param_dtype, "--param-dtype")
    r = resolve(args.target, batch=args.batch, input_shape=args.input_shape, dtype=args.dtype)
    options = {}
    param_dtype = _param_dtype(args, r.zoo)
    if param_dtype is not None:
        options["param_dtype"] = param_dtype
    if args.hardware is not None:
        options["target"] = args.hardware
    step = train_options(args, r)
    if args.mesh is not None:
        options.update(mesh_options(args.mesh, r, train=step is not None))
    if step is not None:
        a = step.analyze(backend=args.backend, compile=not args.no_compile, **options)
    else:
        a = jaxcost.analyze(r.fn, *r.inputs, backend=args.backend, compile=not args.no_compile, name=r.name,
                            **options)
    if args.json == "-":
        print(a.to_json(None))
        return 0
    if args.json:
        a.to_json(args.json)
    if args.html:
        a.to_html(args.html)
    a.summary(max_layers=args.layers, flat=args.flat, depth=args.depth)
    return 0


def _cmd_models(args) -> int:
    """The zoo with the published parameter and MAC counts each model must reproduce
    (``~`` marks a rounded paper figure)."""
    import models
    from jaxcost.report.format import si

    rows = []
    for name in models.names():
        ref = models.reference(name)
        params = macs = source = ""
        if ref is not None:
            approx = "" if ref.params_exact else "~"
            params = f"{approx}{ref.params:,}" if ref.params else ""
            macs = si(ref.macs) if ref.macs else ""
            source = ref.source
        rows.append((name, ",".join(map(str, models.input_shape(name))), params, macs, source))
    header = ("model", "input", "params", "MACs", "published figures")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for r in [header, *rows]:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}"
              .rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    import flax
    import jax

    from jaxcost import __version__

    p = _Parser(prog="jaxcost", description="JAX/XLA compiled-graph cost analyzer")
    p.add_argument("--version", action="version",
                   version=f"jaxcost {__version__} (jax {jax.__version__}, flax {flax.__version__})")
    p.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyze a zoo model or package.module:object")
    a.add_argument("target", help="a zoo model (see 'jaxcost models') or package.module:object, "
                                  "imported from the working directory or the installed packages")
    a.add_argument("--batch", type=int, default=None, help="batch size of a zoo model (default 1)")
    a.add_argument("--input-shape", help="zoo models: without the batch (e.g. 224,224,3); "
                                         "package.module:object: with it (e.g. 8,224,224,3)")
    a.add_argument("--dtype", default="float32", help="input dtype (default float32)")
    a.add_argument("--param-dtype", default=None,
                   help="parameter dtype; default: --dtype for zoo models, as built for your own")
    a.add_argument("--backend", default=None, help="cpu, gpu, tpu (default: jax's default)")
    a.add_argument("--target", dest="hardware", default=None, metavar="TPU",
                   help="compile for a TPU slice without a TPU, e.g. tpu-v5e, tpu-v5e:2x4, tpu-v4:2x2x2 "
                        "(needs libtpu: pip install 'jaxcost[tpu]'); figures per device")
    a.add_argument("--mesh", default=None, metavar="AXES",
                   help="shard over a device mesh, e.g. data=2,model=4 (the TPU slice of --target, or this "
                        "machine's devices): the batch over the first axis, parameters replicated")
    a.add_argument("--json", metavar="PATH", help="write the JSON report to PATH ('-' = stdout)")
    a.add_argument("--html", metavar="PATH", help="write the standalone HTML report to PATH")
    a.add_argument("--no-compile", action="store_true", help="lowered module only (fast path)")
    a.add_argument("--layers", type=int, default=30, help="layers shown in the table")
    a.add_argument("--flat", action="store_true", help="the heaviest layers instead of the tree in model order")
    a.add_argument("--depth", type=int, default=None, help="depth of the layer tree (default: what fits --layers)")
    add_train_arguments(a)
    a.set_defaults(func=_cmd_analyze)
    m = sub.add_parser("models", help="list the model zoo with its published figures")
    m.set_defaults(func=_cmd_models)
    bench.add_commands(sub)
    diff.add_command(sub)
    return p


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv=None) -> int:
    """Run the command line; returns the exit code (0, 1 analysis failed, 2 bad arguments)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or argparse's one-line error
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    from jaxcost.errors import AnalysisError

    try:
        return args.func(args)
    except UsageError as e:
        print(f"jaxcost: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("jaxcost: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.traceback:
            raise
        if isinstance(e, AnalysisError):  # its message carries JAX's own error
            print(f"jaxcost: analysis failed: {_one_line(e)}", file=sys.stderr)
        else:
            print(f"jaxcost: error: {type(e).__name__}: {_one_line(e)} "
                  "(rerun as 'jaxcost --traceback ...' for the details)", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
