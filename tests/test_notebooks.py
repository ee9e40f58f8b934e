"""Every notebook executes top to bottom, in its small-input mode (JAXCOST_NOTEBOOK_SMALL=1).

Figures go to a temporary folder (JAXCOST_FIGURES) so the committed ones under docs/ keep
their full-size versions. Run one: ``python -m pytest tests/test_notebooks.py -k 01``.
"""

import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_notebooks_are_there():
    names = [p.stem for p in NOTEBOOKS]
    assert names == ["01_quickstart", "02_theory_vs_compiler", "03_convolution_costs",
                     "04_fusion_effects", "05_backends_and_roofline", "06_training", "07_sharding_and_tpus", "08_where_the_time_goes"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCOST_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("JAXCOST_FIGURES", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"{path.name} is committed with outputs: strip them (python notebooks/strip.py)"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    figures = sorted(p.name for p in tmp_path.iterdir())
    assert figures, f"{path.name} saved no figure under JAXCOST_FIGURES"
