"""The standalone HTML report: self-contained, the layer tree in model order with shapes, its
numbers those of ``to_json()``; opened in headless Chromium where one is installed (no console
errors, sorting works)."""

from __future__ import annotations

import html.parser
import json
import shutil
import subprocess

import jax
import jax.numpy as jnp
import pytest

import jaxcost
import models
from jaxcost.cli.main import main


class _Rows(html.parser.HTMLParser):
    """The layer table's rows: path, depth and the cells' (text, data-v)."""

    def __init__(self):
        super().__init__()
        self.rows, self.cells, self.external, self._in_layers, self._cell = [], None, [], False, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "img") and (a.get("src") or a.get("href")):
            self.external.append(a.get("src") or a.get("href"))
        if tag == "table":
            self._in_layers = a.get("id") == "layers"
        if self._in_layers and tag == "tr" and "data-path" in a:
            self.cells = []
            self.rows.append((a["data-path"], int(a["data-depth"]), self.cells))
        if self._in_layers and tag == "td" and self.cells is not None:
            self._cell = [a.get("data-v"), ""]
            self.cells.append(self._cell)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        if tag == "table":
            self._in_layers = False


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    a = jaxcost.analyze(models.build_abstract("resnet18"), jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32))
    path = tmp_path_factory.mktemp("html") / "resnet18.html"
    a.to_html(path)
    return a, path


def test_tree_in_model_order_with_shapes_and_the_json_numbers(report):
    a, path = report
    parser = _Rows()
    parser.feed(path.read_text())
    assert not parser.external  # nothing fetched: inline CSS, JS and SVG only
    paths = [p for p, _, _ in parser.rows]
    assert paths[:6] == ["", "conv1", "bn1", "layer1", "layer1/0", "layer1/0/conv1"]
    assert paths.index("layer4/1/bn2") < paths.index("fc")
    rows = {p: cells for p, _, cells in parser.rows}
    assert rows["conv1"][1][1] == "float32[2, 32, 32, 3]" and rows["conv1"][2][1] == "float32[2, 16, 16, 64]"
    data = json.loads(a.to_json())
    by_path = {r["path"]: r for r in data["layers"] if r["direction"] == "forward"}
    assert float(rows[""][3][0]) == data["params"]  # the root is the program
    assert float(rows[""][5][0]) == sum(r["flops"] for r in data["layers"])
    for leaf in ("conv1", "layer1/0/conv1", "layer3/1/bn2", "fc"):
        params, macs, flops = (float(rows[leaf][i][0]) if rows[leaf][i][0] else 0.0 for i in (3, 4, 5))
        assert params == by_path[leaf]["params"] and flops == by_path[leaf]["flops"]
        assert macs == (by_path[leaf]["theory"] or {}).get("macs", 0)
    text = path.read_text()
    for section in ("Totals", "Layers, in model order", "Heaviest layers", "Fused kernels", "the ledger"):
        assert section in text
    assert len(text) < 400_000


def test_cli_writes_the_report(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["analyze", "gap_head", "--html", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["analyze", "gap_head", "--html", str(tmp_path / "missing" / "r.html")]) == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium): the report is checked "
                                             "by the parser only")
def test_opens_in_chromium_without_errors_and_sorts(report):
    _, path = report
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                          "--dump-dom", f"file://{path}#sort=3"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert run.returncode == 0
    errors = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert errors == []
    parser = _Rows()
    parser.feed(run.stdout)
    params = [float(cells[3][0]) for _, _, cells in parser.rows if cells[3][0]]
    assert params == sorted(params, reverse=True)  # sorted by the params column, largest first


def test_every_result_type_has_a_text_and_an_html_view(report):
    a, _ = report
    from jaxcost.perf.peaks import DevicePeaks

    peaks = DevicePeaks("cpu", "cpu", {"float32": 1e11}, 1e10, "published")
    shown = {"fused": a.fusion_report(), "Theory vs compiler": a.explain(),
             "Roofline": jaxcost.program_roofline(a, peaks)}
    for word, obj in shown.items():
        text = obj.summary(print_=False)
        assert word in text, (type(obj).__name__, text[:200])
        assert max(len(line) for line in text.splitlines()) <= 160
        assert word in obj._repr_html_()


def test_text_summary_is_the_model_order_tree_unless_flat(report):
    a, _ = report
    tree = a.summary(print_=False, max_layers=12)
    assert "Layers in model order" in tree and "float32[2, 16, 16, 64]" in tree  # conv1's output
    assert "deeper levels folded" in tree
    assert tree.index(" conv1 ") < tree.index(" layer1 ") < tree.index(" fc ")
    flat = a.summary(print_=False, flat=True)
    assert "Layers (heaviest" in flat and "Layers in model order" not in flat
    deep = a.summary(print_=False, depth=3, max_layers=200)
    assert "│       conv1 " in deep and "; depth 3" in deep  # layer1/0/conv1, three levels deep, indented


def test_plots_from_the_api(report):
    import matplotlib

    matplotlib.use("Agg")
    a, _ = report
    ax = a.plot(top=5)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 5 and len(ax.patches) == 5
    heaviest = max(a.layers, key=lambda r: r.flops)
    assert labels[-1] == (heaviest.path or "(top level)") and ax.patches[-1].get_width() == heaviest.flops
    ax = a.plot("bytes", top=3)
    assert len(ax.patches) == 6 and {t.get_text() for t in ax.get_legend().get_texts()} == {
        "unfused (lowered)", "fused (compiled)"}
    with pytest.raises(ValueError, match="what must be 'flops' or 'bytes'"):
        a.plot("time")
