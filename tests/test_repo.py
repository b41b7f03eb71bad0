"""Repository rules: notebooks without outputs, the book's config as the course needs it."""

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_notebooks_are_committed_without_outputs():
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{nb_path.name}: a code cell has stored outputs (strip them)"
                assert cell.get("execution_count") is None, f"{nb_path.name}: a code cell has an execution count"


def test_book_config():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["only_build_toc_files"] is True
    assert ".*" in cfg["exclude_patterns"]
    assert cfg["repository"]["branch"] == "main"
    assert cfg["execute"]["execute_notebooks"] == "cache"
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in [toc["root"], *files]:
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f"_toc.yml names a missing page {f}"
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"notebooks/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"


def test_lock_pins_torch_and_jupyter_book_1():
    lock = (ROOT / "requirements" / "lock.txt").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in lock if "==" in line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0"
    assert pins["jupyter-book"].startswith("1.")
    assert "torchvision" not in pins


def test_api_docstrings_are_escaped_for_restructuredtext():
    from mricourse.course.sphinx_ext import _escape

    assert _escape("(B, C, *spatial) and x * y") == r"(B, C, \*spatial) and x \* y"
    assert _escape("``a*b`` and **bold**") == "``a*b`` and **bold**"
    assert _escape("mean |F(G(x)) - x|") == r"mean \|F(G(x)) - x\|"
