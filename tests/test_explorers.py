"""The chapters' ipywidgets explorers, built in a live kernel (as in JupyterLab or on Colab, not
headless) under the lock's ipywidgets 8, every control moved: each move redraws its figure
without error. `make colab-check` does the same under Colab's ipywidgets 7.7."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mricourse.course.notebooks import NotebookError, drive_explorers

ROOT = Path(__file__).resolve().parents[1]
WITH_EXPLORERS = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if "widgets.interactive(" in p.read_text()]


def test_some_chapter_has_explorers():
    assert WITH_EXPLORERS, "no chapter builds an ipywidgets explorer: update this test"


@pytest.mark.parametrize("path", WITH_EXPLORERS, ids=lambda p: p.stem)
def test_every_control_redraws_its_figure(path, monkeypatch, tmp_path):
    monkeypatch.setenv("MRICOURSE_PROFILE", "smoke")
    monkeypatch.setenv("MRICOURSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("MRICOURSE_HEADLESS", raising=False)
    moves = drive_explorers(path)
    nb = nbformat.read(path, as_version=4)
    built = sum(c.source.count("widgets.interactive(") for c in nb.cells if c.cell_type == "code")
    driven = {m.split(":")[0] for m in moves}
    assert len(driven) == built, f"{built} explorers in the notebook, {len(driven)} driven: {moves}"
    assert sum(m.endswith("new figure") for m in moves) >= 2 * built, moves


def test_a_dead_control_is_reported(tmp_path):
    """A control whose move changes nothing on the figure fails the check."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import ipywidgets as widgets\nimport matplotlib.pyplot as plt\nfrom IPython.display import display\n"
            "def render(a=1, unused=1):\n    fig, ax = plt.subplots()\n    ax.plot([0, a])\n    plt.show()\n"
            "explorer = widgets.interactive(render, a=widgets.IntSlider(value=1, min=0, max=3, description='a'),"
            " unused=widgets.IntSlider(value=1, min=0, max=3, description='unused'))\ndisplay(explorer)\n"
        )
    ]
    path = tmp_path / "dead.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(NotebookError, match="unused.*did not change"):
        drive_explorers(path)
