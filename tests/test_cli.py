"""The command line: ``jaxcost.cli.main([...])`` in process, the module and script forms as
subprocesses. Every error is one line on stderr; 2 for bad arguments, 1 for a failed analysis."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import flax
import jax
import pytest

import jaxcost
from jaxcost.cli import main

ROOT = Path(__file__).resolve().parents[1]

USER_MODULE = """
    import jax.numpy as jnp
    from flax import linen, nnx


    def fn(x):
        return jnp.tanh(x)


    class Mlp(nnx.Module):  # buildable from the class: it needs only rngs
        def __init__(self, *, rngs):
            self.fc = nnx.Linear(8, 16, rngs=rngs)

        def __call__(self, x):
            return self.fc(x)


    class Wide(nnx.Module):  # not buildable: its constructor needs a width
        def __init__(self, width, *, rngs):
            self.fc = nnx.Linear(8, width, rngs=rngs)

        def __call__(self, x):
            return self.fc(x)


    class Dense(linen.Module):  # a linen class with defaults only
        features: int = 16

        @linen.compact
        def __call__(self, x):
            return linen.Dense(self.features)(x)


    wide = Wide(32, rngs=nnx.Rngs(0))
"""


def run(capsys, *argv):
    """``main(argv)`` -> (exit code, stdout, stderr lines)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


@pytest.fixture
def user_pkg(tmp_path, monkeypatch):
    """A package ``cliuserpkg`` in a fresh working directory that is not on ``sys.path``."""
    pkg = tmp_path / "cliuserpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] == "cliuserpkg"]:
        del sys.modules[name]


def test_bad_arguments_are_one_line_exit_2(capsys):
    code, _, err = run(capsys, "analyze", "no_such_model")
    assert code == 2 and len(err) == 1 and "unknown model 'no_such_model'" in err[0]
    code, _, err = run(capsys, "analyze", "math:sqrt")
    assert code == 2 and len(err) == 1 and "--input-shape" in err[0]
    code, _, err = run(capsys, "analyze", "numpy:sin", "--input-shape", "a,b")
    assert code == 2 and err == [("jaxcost: error: --input-shape must be integers separated by commas, "
                                  "got 'a,b'")]
    code, _, err = run(capsys, "analyze", "jax.numpy:tanh", "--input-shape", "4,8", "--dtype", "float7")
    assert code == 2 and len(err) == 1 and "unknown --dtype 'float7'" in err[0]
    code, _, err = run(capsys, "analyze", "gap_head", "--param-dtype", "float7")
    assert code == 2 and len(err) == 1 and "unknown --param-dtype 'float7'" in err[0]
    code, _, err = run(capsys, "peaks", "--rounds", "0")
    assert code == 2 and err == ["jaxcost: error: --rounds must be at least 1, got 0"]
    code, _, err = run(capsys, "peaks", "--recheck", "--refresh")
    assert code == 2 and err == [("jaxcost: error: --recheck re-times a cached calibration; a --refresh one is "
                                 "measured now: give one")]
    code, _, err = run(capsys, "analyze", "--bogus")  # argparse's own errors too
    assert code == 2 and len(err) == 1 and err[0].startswith("jaxcost analyze: error:")
    code, _, err = run(capsys)
    assert code == 2 and len(err) == 1
    code, _, err = run(capsys, "analyze", "no_such_pkg_xyz.mod:fn", "--input-shape", "4")
    assert code == 2 and len(err) == 1 and "no module named 'no_such_pkg_xyz'" in err[0]
    code, _, err = run(capsys, "analyze", "jax.numpy:no_such_fn", "--input-shape", "4")
    assert code == 2 and err == [("jaxcost: error: cannot load 'jax.numpy:no_such_fn': "
                                  "jax.numpy has no 'no_such_fn'")]
    code, _, err = run(capsys, "analyze", "jax.numpy:tanh", "--input-shape", "4", "--backend", "nosuch")
    assert code == 2 and err == [("jaxcost: error: backend 'nosuch' is not available "
                                  f"(jax sees: {jax.default_backend()})")]


def test_callable_json(capsys):
    code, out, _ = run(capsys, "analyze", "jax.numpy:tanh", "--input-shape", "4,8", "--json", "-")
    assert code == 0
    assert json.loads(out)["compiler"]["transcendentals"] == 32


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"jaxcost {jaxcost.__version__} (jax {jax.__version__}, flax {flax.__version__})"
    assert importlib.metadata.version("jaxcost") == jaxcost.__version__  # one version, in __init__


def test_module_form():
    p = subprocess.run([sys.executable, "-m", "jaxcost", "analyze", "no_such_model"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [("jaxcost: error: unknown model 'no_such_model'; run "
                                              "'jaxcost models' for the list, or give package.module:object")]


def test_import_from_working_directory(capsys, user_pkg):
    code, out, err = run(capsys, "analyze", "cliuserpkg.mod:fn", "--input-shape", "4,8", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["compiler"]["transcendentals"] == 32


def test_user_module_import_errors(capsys, user_pkg):
    (user_pkg / "cliuserpkg" / "needs.py").write_text("import cli_missing_dependency\n")
    (user_pkg / "cliuserpkg" / "boom.py").write_text("raise RuntimeError('boom')\n")
    code, _, err = run(capsys, "analyze", "cliuserpkg.needs:fn", "--input-shape", "4")
    assert code == 2 and err == [("jaxcost: error: cannot load 'cliuserpkg.needs:fn': "
                                  "No module named 'cli_missing_dependency'")]
    code, _, err = run(capsys, "analyze", "cliuserpkg.boom:fn", "--input-shape", "4")
    assert code == 2 and err == [("jaxcost: error: cannot load 'cliuserpkg.boom:fn': importing "
                                  "cliuserpkg.boom raised RuntimeError: boom")]
    code, _, err = run(capsys, "analyze", "cliuserpkg.nothere:fn", "--input-shape", "4")
    assert code == 2 and err == [(f"jaxcost: error: cannot load 'cliuserpkg.nothere:fn': no module named "
                                  f"'cliuserpkg.nothere' in {user_pkg} or the installed packages")]


def test_console_script_imports_from_working_directory(user_pkg):
    """The installed ``jaxcost`` script puts its own folder first on ``sys.path``, not the
    working directory; the user's package must still be found there."""
    script = Path(sys.executable).parent / "jaxcost"
    assert script.exists(), "install the package first: pip install -e '.[test]'"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's jaxcost; the cwd is not on the path
    p = subprocess.run([str(script), "analyze", "cliuserpkg.mod:fn", "--input-shape", "4,8", "--json", "-"],
                       cwd=user_pkg, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["compiler"]["transcendentals"] == 32


def test_module_classes(capsys, user_pkg):
    # an nnx class needing only rngs is built abstractly: Linear(8, 16) = 8*16 + 16 parameters
    code, out, err = run(capsys, "analyze", "cliuserpkg.mod:Mlp", "--input-shape", "4,8", "--json", "-")
    assert code == 0, err
    data = json.loads(out)
    assert data["params"] == 144
    assert data["compiler"]["flops"] == 2 * 4 * 8 * 16 + 4 * 16  # the dot and the bias add
    code, out, err = run(capsys, "analyze", "cliuserpkg.mod:Dense", "--input-shape", "4,8", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["params"] == 144
    code, out, err = run(capsys, "analyze", "cliuserpkg.mod:wide", "--input-shape", "4,8", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["params"] == 8 * 32 + 32
    for target in ("Mlp", "Dense", "wide"):  # --param-dtype casts built and given modules alike
        code, out, err = run(capsys, "analyze", f"cliuserpkg.mod:{target}", "--input-shape", "4,8",
                             "--param-dtype", "bfloat16", "--json", "-")
        assert code == 0, err
        params = json.loads(out)["params"]
        assert json.loads(out)["memory"]["argument_bytes"] == params * 2 + 4 * 8 * 4, target
    code, _, err = run(capsys, "analyze", "cliuserpkg.mod:Wide", "--input-shape", "4,8")
    assert code == 2 and len(err) == 1
    assert err == [("jaxcost: error: Wide is a class whose constructor needs width, rngs; give an instance "
                    "instead: model = Wide(...) in cliuserpkg.mod, then cliuserpkg.mod:model")]


def test_output_paths_checked_before_the_analysis(capsys, tmp_path, monkeypatch):
    def never(*a, **k):
        raise AssertionError("analysed before checking the output path")

    monkeypatch.setattr(jaxcost, "analyze", never)
    missing = tmp_path / "missing" / "x.json"
    code, _, err = run(capsys, "analyze", "jax.numpy:tanh", "--input-shape", "4,8", "--json", str(missing))
    assert code == 2 and err == [f"jaxcost: error: --json {missing}: folder {missing.parent} does not exist"]
    code, _, err = run(capsys, "analyze", "jax.numpy:tanh", "--input-shape", "4,8", "--json", str(tmp_path))
    assert code == 2 and err == [f"jaxcost: error: --json {tmp_path} is a folder; give a file name"]
    code, _, err = run(capsys, "bench", "jax.numpy:tanh", "--input-shape", "4,8", "--csv", str(missing))
    assert code == 2 and len(err) == 1 and "--csv" in err[0]


def test_zoo_input_shape_with_the_batch(capsys):
    code, _, err = run(capsys, "analyze", "gap_head", "--input-shape", "1,7,7,512")
    assert code == 2 and err == [("jaxcost: error: gap_head takes inputs of rank 3 without the batch, like "
                                  "7,7,512; --input-shape 1,7,7,512 has rank 4: drop the batch dimension "
                                  "(use --batch)")]
    code, _, err = run(capsys, "analyze", "gap_head", "--input-shape", "7,512")
    assert code == 2 and len(err) == 1 and err[0].endswith("has rank 2")


def test_batch_is_for_zoo_models(capsys):
    code, _, err = run(capsys, "analyze", "jax.numpy:tanh", "--input-shape", "4,8", "--batch", "8")
    assert code == 2 and len(err) == 1 and "first dimension of --input-shape" in err[0]
    code, _, err = run(capsys, "bench", "jax.numpy:tanh", "--input-shape", "4,8", "--batch", "1,8")
    assert code == 2 and len(err) == 1 and "first dimension of --input-shape" in err[0]
    code, _, err = run(capsys, "analyze", "gap_head", "--batch", "0")
    assert code == 2 and err == ["jaxcost: error: --batch must be positive, got 0"]


@pytest.mark.parametrize("argv, expected", [
    (["gap_head", "--dtype", "bfloat16"], "bfloat16"),  # a zoo model runs wholly in --dtype
    (["gap_head", "--dtype", "bfloat16", "--param-dtype", "float32"], "float32"),
    (["gap_head"], None),  # float32 as built
    (["jax.numpy:tanh", "--input-shape", "4,8", "--dtype", "bfloat16"], None),  # yours, as built
    (["jax.numpy:tanh", "--input-shape", "4,8", "--param-dtype", "float16"], "float16"),
])
def test_param_dtype_passed_to_analyze(capsys, monkeypatch, argv, expected):
    seen = {}

    class Done:
        def to_json(self, path):
            return "{}"

    def fake(fn, *inputs, **kwargs):
        seen.update(kwargs, inputs=inputs)
        return Done()

    monkeypatch.setattr(jaxcost, "analyze", fake)
    assert main(["analyze", *argv, "--json", "-"]) == 0
    assert seen.get("param_dtype") == expected
    assert str(seen["inputs"][0].dtype) == ("bfloat16" if "bfloat16" in argv else "float32")


@pytest.mark.parametrize("argv, argument_bytes", [
    ([], 513_000 * 4 + 7 * 7 * 512 * 4),
    (["--dtype", "bfloat16"], 513_000 * 2 + 7 * 7 * 512 * 2),  # parameters follow --dtype
    (["--dtype", "bfloat16", "--param-dtype", "float32"], 513_000 * 4 + 7 * 7 * 512 * 2),
])
def test_zoo_dtypes_reach_the_compiled_arguments(capsys, argv, argument_bytes):
    code, out, err = run(capsys, "analyze", "gap_head", *argv, "--json", "-")
    assert code == 0, err
    assert json.loads(out)["memory"]["argument_bytes"] == argument_bytes


def test_failures_are_one_line(capsys, monkeypatch):
    code, _, err = run(capsys, "analyze", "jax.numpy:matmul", "--input-shape", "4,8")
    assert code == 1 and len(err) == 1 and err[0].startswith("jaxcost: analysis failed: cannot trace")

    def bug(*a, **k):
        raise ValueError("line one\nline two")

    monkeypatch.setattr(jaxcost, "analyze", bug)
    code, _, err = run(capsys, "analyze", "jax.numpy:tanh", "--input-shape", "4")
    assert code == 1 and err == [("jaxcost: error: ValueError: line one line two "
                                  "(rerun as 'jaxcost --traceback ...' for the details)")]
    with pytest.raises(ValueError, match="line one"):
        main(["--traceback", "analyze", "jax.numpy:tanh", "--input-shape", "4"])


def test_models_lists_the_zoo(capsys):
    import models

    code, out, _ = run(capsys, "models")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1 + len(models.names())
    assert lines[0].split()[:4] == ["model", "input", "params", "MACs"]
    resnet50 = next(line for line in lines if line.startswith("resnet50 "))
    assert resnet50.split()[1:3] == ["224,224,3", "25,557,032"]
    assert not re.search(r"[\w/.-]+\.md\b", out), "published figures cite public sources, not our files"


@pytest.mark.skipif(not __import__("jaxcost.hardware", fromlist=["x"]).libtpu_available(),
                    reason="libtpu not installed: pip install 'jaxcost[tpu]'")
def test_analyze_for_a_tpu_target(tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main(["analyze", "gap_head", "--target", "tpu-v5e", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert (data["backend"], data["target"]) == ("tpu", "tpu-v5e:2x2")
    assert data["hbm"].startswith("fits: ")
    assert main(["analyze", "gap_head", "--target", "tpu-v9z"]) == 2
    assert "--target: unknown TPU chip 'v9z'" in capsys.readouterr().err


def test_train_step_from_the_command_line(capsys):
    code, out, _ = run(capsys, "analyze", "gap_head", "--train", "--optimizer", "adam", "--no-compile",
                       "--json", "-")
    assert code == 0
    data = json.loads(out)
    t = data["training"]
    assert set(t["directions"]) == {"forward", "backward", "optimizer"}
    assert t["model_flops"] == t["directions"]["forward"]["theory_contraction_flops"] \
        + t["directions"]["backward"]["theory_contraction_flops"]
    assert data["optimizer_state"] == 2 * data["params"] + 2
    for argv, message in ((("--remat",), "--optimizer and --remat need --train"),
                          (("--train", "--optimizer", "adamm"), "--optimizer 'adamm': choose one of sgd")):
        code, _, err = run(capsys, "analyze", "gap_head", *argv)
        assert code == 2 and len(err) == 1 and message in err[0]
    code, _, err = run(capsys, "analyze", "jax.numpy:tanh", "--input-shape", "4", "--train")
    assert code == 2 and len(err) == 1 and "is a function: write its training step" in err[0]


def test_data_parallel_training_step_on_a_tpu_mesh(capsys):
    """--mesh: the batch over the first axis, parameters replicated; the gradients are all-reduced
    over that axis, every figure is per device."""
    code, out, _ = run(capsys, "analyze", "gap_head", "--batch", "8", "--target", "tpu-v5e:2x4", "--mesh", "data=8",
                       "--train", "--json", "-")
    assert code == 0
    data = json.loads(out)
    assert (data["partitioning"]["devices"], data["partitioning"]["mesh"]) == (8, {"data": 8})
    assert data["partitioning"]["specs"][-2:] == ["P('data')", "P('data')"]  # images and labels
    kinds = {c["kind"] for c in data["collectives"]}
    assert kinds == {"all-reduce"} and all(c["axes"] == ["data"] for c in data["collectives"])
    grads = sum(c["buffer_bytes"] for c in data["collectives"])
    assert grads >= 4 * data["params"]  # every float32 gradient is summed over the 8 devices
    for argv, message in ((("--mesh", "data"), "--mesh must be axis=size pairs"),
                          (("--mesh", "data=3"), "must be a multiple of the 'data' axis (3)")):
        code, _, err = run(capsys, "analyze", "gap_head", "--batch", "8", *argv)
        assert code == 2 and len(err) == 1 and message in err[0]


def test_bench_train_reports_mfu_and_hfu(tmp_path, capsys, monkeypatch):
    import jaxcost.perf
    from jaxcost.perf.peaks import DevicePeaks

    monkeypatch.setattr(jaxcost.perf, "get_peaks", lambda *a, **k: DevicePeaks("cpu", "cpu", {"float32": 1e11}, 1e10,
                                                                                "published"))
    out = tmp_path / "t.json"
    assert main(["bench", "gap_head", "--train", "--optimizer", "sgd", "--budget", "0.05", "--json", str(out)]) == 0
    [r] = json.loads(out.read_text())["results"]
    assert r["mfu"] == pytest.approx(r["model_flops"] / r["step_s"] / 1e11)
    assert r["hfu"] == pytest.approx(r["hardware_flops"] / r["step_s"] / 1e11)
    assert main(["bench", "gap_head", "--train", "--sweep-options"]) == 2
