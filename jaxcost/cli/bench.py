"""``jaxcost bench``, ``jaxcost profile``, ``jaxcost peaks`` and ``jaxcost compare``."""

from __future__ import annotations

import json

import jax

from jaxcost.cli.targets import (
    UsageError,
    add_train_arguments,
    check_backend,
    check_output,
    parse_batches,
    parse_options,
    resolve,
    train_options,
)


def _bench_train(args, targets, backends, console) -> int:
    """``jaxcost bench MODEL --train``: steady-state step time, MFU and HFU per backend and batch."""
    from rich.table import Table

    from jaxcost.perf import get_peaks
    from jaxcost.report.format import secs, si

    t = Table(title=f"jaxcost bench {args.target} --train (one step: forward, backward, optimizer update)")
    for col in ("backend", "batch", "step (median)", "IQR", "model FLOPs", "hardware FLOPs", "peak", "MFU",
                "HFU"):
        t.add_column(col, justify="left" if col == "backend" else "right")
    records = []
    for backend in backends:
        try:
            peaks = get_peaks(backend, measure=not args.published_peaks)
        except LookupError as e:
            raise UsageError(f"{e}: MFU needs a peak; run without --published-peaks to measure it") from None
        for r in targets:
            step = train_options(args, r)
            console.print(f"[dim]{step} on {backend} ...[/dim]")
            b = step.benchmark(backend=backend, peaks=peaks, time_budget_s=args.budget)
            t.add_row(backend, str(b.batch_size), secs(b.step_s), secs(b.timing.stats.iqr), si(b.model_flops),
                      si(b.hardware_flops), f"{si(b.peak_flops_per_s, 'FLOP/s')} ({b.peak_source})",
                      f"{b.mfu:.1%}", f"{b.hfu:.1%}")
            records.append(b.to_dict())
    console.print(t)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"target": args.target, "train": True, "results": records}, f, indent=2)
    return 0


def _bench_point(t, backend: str, opt_name: str, opts: dict, budget: float, peaks):
    """One benchmarked point: (result, analysis, predicted seconds); a failure is a row with its error."""
    import jaxcost
    from jaxcost.perf.predict import program_roofline
    from jaxcost.perf.results import BenchmarkResult
    from jaxcost.perf.timing import benchmark

    try:
        r = benchmark(t.fn, *t.inputs, backend=backend, compiler_options=opts or None, time_budget_s=budget,
                      batch_size=t.batch)
        r = BenchmarkResult(**{**r.__dict__, "options_name": opt_name})
        a = jaxcost.analyze(t.fn, *t.inputs, backend=backend, compiler_options=opts or None, theory=False)
        return r, a, program_roofline(a, peaks).predicted_s if peaks else None
    except Exception as e:  # noqa: BLE001 - one failed point is a row, not the end
        return (BenchmarkResult(backend=backend, device_kind="", batch_size=t.batch, compile_s=None, lower_s=None,
                                stats=None, latency_s=None, throughput=None, compiler_options=opts,
                                options_name=opt_name, error=f"{type(e).__name__}: {e}"), None, None)


def _cmd_bench(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from jaxcost.perf import DEFAULT_OPTION_SETS, available_backends, get_peaks, results_to_csv

    check_output(args.json, "--json")
    check_output(args.csv, "--csv")
    batches = parse_batches(args.batch) if args.batch else [None]  # None: 1, or the callable's own
    user_options = parse_options(args.xla_option)
    backends = args.backend.split(",") if args.backend else [jax.default_backend()]
    missing = [b for b in backends if b not in available_backends((b,))]
    if missing:
        raise UsageError(f"backend(s) not available: {', '.join(missing)}")
    targets = [resolve(args.target, batch=b, input_shape=args.input_shape, dtype=args.dtype) for b in batches]
    rows = []
    console = Console(width=150)
    if args.train or args.optimizer is not None or args.remat:
        if args.sweep_options or user_options or args.csv:
            raise UsageError("--train times the default compiler options; drop --sweep-options/--xla-option/--csv")
        train_options(args, targets[0])  # checks the options before any timing
        return _bench_train(args, targets, backends, console)
    for backend in backends:
        option_sets = {"default": {}}
        if args.sweep_options:
            option_sets = dict(DEFAULT_OPTION_SETS.get(backend, {"default": {}}))
        if user_options:
            option_sets = {"custom": user_options} if not args.sweep_options else \
                {**option_sets, "custom": user_options}
        peaks = None
        if not args.no_predict:
            try:
                peaks = get_peaks(backend, measure=not args.published_peaks)
            except LookupError as e:
                console.print(f"[yellow]no roofline prediction: {e} (run without --published-peaks "
                              "to measure them)[/yellow]")
        from jaxcost.report.progress import progress

        points = [(o, t) for o in option_sets.items() for t in targets]
        with progress(len(points), f"bench {args.target} on {backend}") as step:
            for (opt_name, opts), t in points:
                step(f"batch {t.batch}, {opt_name}")
                rows.append(_bench_point(t, backend, opt_name, opts, args.budget, peaks))
    t = Table(title=f"jaxcost bench {args.target}")
    for col in ("backend", "options", "batch", "median", "IQR", "CV", "n", "items/s", "GFLOP/s",
                "XLA bytes", "predicted", "pred/meas", "compile", "error"):
        t.add_column(col, justify="right" if col not in ("backend", "options", "error") else "left")
    from jaxcost.report.format import secs, si

    records = []
    results = [r for r, _, _ in rows]
    for r, a, predicted in rows:
        ok = r.error is None
        gflops = (a.compiler.flops / r.latency_s / 1e9) if ok and a and a.compiler.flops else None
        t.add_row(r.backend, r.options_name or "", str(r.batch_size),
                  secs(r.latency_s) if ok else "-", secs(r.stats.iqr) if ok else "-",
                  f"{r.stats.cv:.1%}" if ok else "-", str(r.stats.n) if ok else "-",
                  f"{r.throughput:.1f}" if ok and r.throughput else "-",
                  f"{gflops:.1f}" if gflops else "-",
                  si(a.compiler.bytes_accessed, "B") if a else "-",
                  secs(predicted) if predicted else "-",
                  f"{predicted / r.latency_s:.2f}" if predicted and ok else "-",
                  f"{r.compile_s:.2f} s" if ok else "-", (r.error or "")[:60])
        rec = r.to_dict()
        rec.update({"predicted_s": predicted, "gflops_per_s": gflops,
                    "xla_flops": a.compiler.flops if a else None,
                    "xla_bytes": a.compiler.bytes_accessed if a else None})
        records.append(rec)
    console.print(t)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"target": args.target, "results": records}, f, indent=2)
    if args.csv:
        results_to_csv(results, args.csv)
    return 0


def _cmd_profile(args) -> int:
    from jaxcost.perf.profile import profile

    check_output(args.json, "--json")
    check_backend(args.backend)
    if args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    r = resolve(args.target, batch=args.batch, input_shape=args.input_shape, dtype=args.dtype)
    p = profile(r.fn, *r.inputs, steps=args.steps, backend=args.backend)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(p.to_dict(), f, indent=2)
    p.summary(top=args.top)
    return 0


def _cmd_peaks(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from jaxcost.perf import PUBLISHED_PEAKS, get_peaks
    from jaxcost.perf.rates import RateFit

    t = Table(title="Device peaks")
    for col in ("device", "source", "FLOP/s by dtype", "bandwidth", "ridge (FLOP/B)",
                "float32 FLOP/s by kernel class", "per kernel"):
        t.add_column(col)

    def add(p):
        flops = ", ".join(f"{k} {v / 1e12:.3g} T" for k, v in p.flops_per_s.items())
        ridge = max(p.flops_per_s.values()) / p.bandwidth_bytes_per_s
        classes = ", ".join(f"{k} {v / 1e9:.3g} G" for k, v in p.kernel_flops_per_s.items()) or "-"
        overhead = f"{p.kernel_overhead_s * 1e6:.2f} us" if p.kernel_overhead_s is not None else "-"
        source = f"{p.source} ({p.rounds} rounds)" if p.rounds > 1 else p.source
        t.add_row(p.device_kind, source, flops, f"{p.bandwidth_bytes_per_s / 1e9:.1f} GB/s", f"{ridge:.1f}",
                  classes, overhead)

    fits = Table(title="Rate model (jaxcost.perf.rates), leave-one-out on the calibration kernels")
    for col in ("class", "kernel", "kernels", "median error", "within 10 %", "within 25 %", "steps (a cache, one thread)"):
        fits.add_column(col, justify="left" if col in ("class", "kernel") else "right")
    drift = None  # --recheck's (jaxcost.perf.drift)
    if args.published:
        for _patterns, p in PUBLISHED_PEAKS:
            add(p)
    else:
        check_backend(args.backend)
        if args.rounds < 1:
            raise UsageError(f"--rounds must be at least 1, got {args.rounds}")
        if args.recheck and args.refresh:
            raise UsageError("--recheck re-times a cached calibration; a --refresh one is measured now: give one")
        p = get_peaks(args.backend, measure=True, refresh=args.refresh, rounds=args.rounds)
        if args.recheck:
            from jaxcost.perf.drift import measure_drift

            try:
                drift = measure_drift(p)
            except ValueError as e:
                raise UsageError(str(e)) from None
        add(p)
        for f in p.kernel_fits:
            fits.add_row(f["cls"], f["impl"], str(f["rows"]), f"{f['loo_median']:.0%}", f"{f['loo_within_10']:.0%}",
                         f"{f['loo_within_25']:.0%}", RateFit(**f).step)
    console = Console(width=150)
    console.print(t)
    if fits.row_count:
        console.print(fits)
    if not args.published and p.program_rows:
        from jaxcost.perf.programs import ProgramFactor

        console.print(f"In-program factor (jaxcost.perf.programs): {ProgramFactor.fit(p.program_rows)!r}")
    if drift is not None:
        console.print(f"Re-check (jaxcost.perf.drift): {drift!r}: {drift.advice}")
    return 0


def _cmd_compare(args) -> int:
    from jaxcost.diff.compare import compare

    a, b = (resolve(t, batch=args.batch, input_shape=args.input_shape, dtype=args.dtype)
            for t in (args.a, args.b))
    (fn_a, inputs_a, name_a), (fn_b, inputs_b, name_b) = (a.fn, a.inputs, a.name), (b.fn, b.inputs, b.name)
    if [x.shape for x in inputs_a] != [x.shape for x in inputs_b]:
        raise UsageError(f"{args.a} and {args.b} take different inputs ({inputs_a[0].shape} vs "
                          f"{inputs_b[0].shape}); give --input-shape")
    opts_b = parse_options(args.b_xla_option)
    if args.fold_b:
        if not b.zoo:
            raise UsageError(f"--fold-b folds a zoo model's BatchNorms; {args.b} is not one")
        import models
        from jaxcost.transforms.fold_bn import fold_batchnorm

        fn_b = fold_batchnorm(models.build(args.b)).model  # folding needs real weights
        name_b = f"{args.b} (BN folded)"
    if opts_b:
        name_b = f"{name_b} ({', '.join(f'{k}={v}' for k, v in opts_b.items())})"
    if name_a == name_b:
        name_b += " (B)"
    c = compare(fn_a, fn_b, *inputs_a, names=(name_a, name_b), measure=not args.no_time,
                compiler_options=(None, opts_b or None), time_budget_s=args.budget)
    c.summary()
    return 0


def add_commands(sub) -> None:
    c = sub.add_parser("compare", help="two programs side by side: costs and measured latency")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--batch", type=int, default=None, help="batch size of zoo models (default 1)")
    c.add_argument("--input-shape")
    c.add_argument("--dtype", default="float32")
    c.add_argument("--b-xla-option", action="append", metavar="KEY=VALUE",
                   help="XLA option for B only, e.g. xla_disable_hlo_passes=fusion")
    c.add_argument("--fold-b", action="store_true", help="fold B's BatchNorms into its convs")
    c.add_argument("--no-time", action="store_true", help="costs only, no timed runs")
    c.add_argument("--budget", type=float, default=2.0)
    c.set_defaults(func=_cmd_compare)
    b = sub.add_parser("bench", help="time a zoo model or callable; predicted vs measured latency")
    b.add_argument("target")
    b.add_argument("--batch", default=None, help="batch sizes of a zoo model, e.g. 1,8,32 (default 1)")
    b.add_argument("--input-shape")
    b.add_argument("--dtype", default="float32")
    b.add_argument("--backend", default=None, help="one or more of cpu,gpu,tpu (comma-separated)")
    b.add_argument("--xla-option", action="append", metavar="KEY=VALUE", help="XLA compiler option")
    b.add_argument("--sweep-options", action="store_true", help="time the built-in option sets")
    b.add_argument("--budget", type=float, default=2.0, help="seconds of timed runs per point")
    b.add_argument("--published-peaks", action="store_true", help="do not measure device peaks")
    b.add_argument("--no-predict", action="store_true", help="skip the roofline prediction")
    b.add_argument("--json", metavar="PATH", help="write the results as JSON")
    b.add_argument("--csv", metavar="PATH", help="write the results as CSV")
    add_train_arguments(b)
    b.set_defaults(func=_cmd_bench)
    f = sub.add_parser("profile", help="measured time per kernel and per layer (the JAX profiler)")
    f.add_argument("target")
    f.add_argument("--batch", type=int, default=None, help="batch size of a zoo model (default 1)")
    f.add_argument("--input-shape")
    f.add_argument("--dtype", default="float32")
    f.add_argument("--backend", default=None)
    f.add_argument("--steps", type=int, default=5, help="profiled steps (after 2 warm-up steps)")
    f.add_argument("--top", type=int, default=25, help="kernels and layers shown")
    f.add_argument("--json", metavar="PATH", help="write the profile as JSON")
    f.set_defaults(func=_cmd_profile)
    p = sub.add_parser("peaks", help="measure (or list published) device peaks")
    p.add_argument("--backend", default=None)
    p.add_argument("--published", action="store_true")
    p.add_argument("--refresh", action="store_true")
    p.add_argument("--rounds", type=int, default=1,
                   help="timing rounds the calibration averages: each adds ~12 s on a 2-core CPU; 3 make "
                        "predictions steadier (a cached calibration of fewer rounds is measured again)")
    p.add_argument("--recheck", action="store_true",
                   help="time the calibration's synthetic programs again (~6 s): is the cached calibration "
                        "still this machine's?")
    p.set_defaults(func=_cmd_peaks)
