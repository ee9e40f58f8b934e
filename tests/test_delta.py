"""``jaxcost.delta`` / ``jaxcost diff``: what changed between two analyses or JSON reports, and
``--fail-above`` for CI."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import jaxcost
import models
from jaxcost.cli.main import main


@pytest.fixture(scope="module")
def resnet50(tmp_path_factory):
    """ResNet-50, batch 1, and its BN-folded clone, analysed once and written as JSON reports.
    Folding rewrites weights, so the abstract model's leaves are filled with a constant (the
    values do not change any cost)."""
    graph, state = nnx.split(models.build_abstract("resnet50"))
    model = nnx.merge(graph, jax.tree.map(lambda s: jnp.full(s.shape, 0.5, s.dtype), state))
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    fold = jaxcost.fold_batchnorm(model, x)
    a = jaxcost.analyze(model, x, name="resnet50")
    b = jaxcost.analyze(fold.model, x, name="resnet50 folded")
    folder = tmp_path_factory.mktemp("delta")
    paths = folder / "resnet50.json", folder / "resnet50_folded.json"
    a.to_json(paths[0])
    b.to_json(paths[1])
    return fold, a, b, paths


def test_bn_folding_removes_the_bn_layers_and_saves_bytes(resnet50):
    fold, a, b, paths = resnet50
    d = jaxcost.delta(*paths)
    assert d.names == ("resnet50.json", "resnet50_folded.json") and d.basis == "optimized"
    bns = {bn for _, bn in fold.folded}
    assert len(bns) == 53 and set(d.removed) == {(bn, "forward") for bn in bns} and d.added == []
    # each folded BN's scale and bias left, each conv before it gained a bias
    params = d.total("params")
    assert (params.before, params.after) == (25_557_032, 25_557_032 - fold.params_removed + fold.params_added)
    assert params.diff == -26_560
    for what, before, after in (("flops", a.compiler.flops, b.compiler.flops),
                                ("bytes_accessed", a.compiler.bytes_accessed, b.compiler.bytes_accessed),
                                ("bytes_unoptimized", a.compiler_unoptimized.bytes_accessed,
                                 b.compiler_unoptimized.bytes_accessed)):
        c = d.total(what)
        assert (c.before, c.after) == (before, after)
    assert d.total("bytes_accessed").rel < -0.05 and d.total("bytes_unoptimized").rel < -0.3  # the byte saving
    assert d.total("theory_macs").diff == 0  # a BN has no multiply-accumulate
    conv = d.layer("layer1/0/conv3")  # it now adds the bias the BN was
    assert conv.status == "changed" and conv.params.diff == 256 and conv.flops.diff > 0
    # every kernel that held a BN lost it; none absorbed one
    assert {p for k in d.kernels for p in k.released} >= bns
    assert not {p for k in d.kernels for p in k.absorbed} & bns
    assert any(k.layer == "layer1/0/bn1" and k.after == () for k in d.kernels)  # its own kernel is gone


def test_reports_and_analyses_mix_and_show(resnet50, capsys):
    _, a, _, paths = resnet50
    d = jaxcost.delta(a, paths[1])
    assert d.names == ("resnet50", "resnet50_folded.json")
    assert [c.what for c in d.totals] == ["params", "flops", "flops_unoptimized", "bytes_accessed",
                                          "bytes_unoptimized", "theory_flops", "theory_macs"]
    assert d.regressions(0.0) == []  # folding only makes things cheaper
    assert repr(d).startswith("Delta('resnet50' -> 'resnet50_folded.json': params -0.10%, flops -0.64%")
    text = d.summary(print_=False)
    assert "bytes accessed (lowered)" in text and "- │ layer1/0/bn3" in text and "no kernel" in text
    assert "<pre" in d._repr_html_()
    assert main(["diff", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "resnet50.json -> resnet50_folded.json" in out and "53 removed" in out
    assert main(["diff", *map(str, paths), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["params"] == {"before": 25_557_032, "after": 25_530_472,
                                          "rel": -26_560 / 25_557_032}
    assert sum(r["status"] == "removed" for r in report["layers"]) == 53


class MLP(nnx.Module):
    def __init__(self, hidden: int, extra: bool = False, *, rngs: nnx.Rngs):
        self.fc1 = nnx.Linear(64, hidden, rngs=rngs)
        self.extra = nnx.Linear(hidden, hidden, rngs=rngs) if extra else None
        self.fc2 = nnx.Linear(hidden, 10, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.fc1(x))
        return self.fc2(self.extra(h) if self.extra is not None else h)


def mlp(hidden: int, extra: bool = False):
    model = nnx.eval_shape(lambda: MLP(hidden, extra, rngs=nnx.Rngs(0)))
    return jaxcost.analyze(model, jax.ShapeDtypeStruct((8, 64), jnp.float32), name=f"mlp{hidden}", theory=False)


def test_fail_above_exits_1_on_a_wider_layer(tmp_path, capsys):
    narrow, wide = mlp(100), mlp(106)  # hidden layer 6 % wider
    # dots, then the bias adds and the ReLU, one flop per element
    assert narrow.compiler.flops == 2 * 8 * (64 * 100 + 100 * 10) + 8 * 100 * 2 + 8 * 10 == 120_080
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    narrow.to_json(pa)
    wide.to_json(pb)
    d = jaxcost.delta(narrow, wide)
    flops = d.total("flops")
    assert flops.diff == 6 * (2 * 8 * (64 + 10) + 8 * 2) and flops.rel == 7_200 / 120_080  # +6.0 %
    grew = ["params", "flops", "flops_unoptimized", "bytes_accessed", "bytes_unoptimized"]
    assert [c.what for c in d.regressions(0.05)] == grew
    assert d.changed == [("", "forward"), ("fc1", "forward"), ("fc2", "forward")]  # "": the ReLU
    assert d.layer("fc1").params.diff == 6 * (64 + 1) and d.layer("fc2").params.diff == 6 * 10
    assert main(["diff", str(pa), str(pb), "--fail-above", "5%"]) == 1
    assert "regressions above 5.00%: parameters:" in capsys.readouterr().out
    assert main(["diff", str(pa), str(pb), "--fail-above", "10%"]) == 0
    assert main(["diff", str(pb), str(pa), "--fail-above", "0%"]) == 0  # narrower: cheaper
    assert main(["diff", str(pa), str(pa), "--fail-above", "0"]) == 0
    # a measured latency in the reports is compared too, and never gates (it is noisy)
    slower = jaxcost.delta({**narrow.to_dict(), "latency_s": 0.010}, {**narrow.to_dict(), "latency_s": 0.0125})
    assert slower.total("latency_s").rel == pytest.approx(0.25) and slower.regressions(0.05) == []
    assert "latency" in slower.summary(print_=False) and "+2.50 ms" in slower.summary(print_=False)
    capsys.readouterr()
    assert main(["diff", str(pa), str(pb), "--fail-above", "5%", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["regressions"] == grew


def test_added_layers_and_bad_inputs(tmp_path, capsys):
    d = jaxcost.delta(mlp(32).to_dict(), mlp(32, extra=True))
    assert d.added == [("extra", "forward")] and d.removed == []
    extra = d.layer("extra")
    assert extra.status == "added" and extra.params.before is None and extra.params.after == 32 * 32 + 32
    assert extra.flops.rel is None and d.total("params").diff == 32 * 32 + 32
    (tmp_path / "other.json").write_text('{"a": 1}')
    (tmp_path / "broken.json").write_text('{"a": ')
    mlp(32).to_json(tmp_path / "ok.json")
    for argv, message in (([str(tmp_path / "missing.json")], "cannot read the JSON report"),
                          ([str(tmp_path / "broken.json")], "cannot read the JSON report"),
                          ([str(tmp_path / "other.json")], "other.json is not a jaxcost JSON report (no schema_version"),
                          ([str(tmp_path / "ok.json"), "--fail-above", "lots"], "must be a percentage such as 2%"),
                          ([str(tmp_path / "ok.json"), "--fail-above=-1%"], "must be a percentage >= 0")):
        assert main(["diff", str(tmp_path / "ok.json"), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    with pytest.raises(TypeError, match="not int"):
        jaxcost.delta(1, 2)
