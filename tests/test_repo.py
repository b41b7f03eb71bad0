"""Repository rules: notebooks without outputs, the book's config as the course needs it."""

import json
import re
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


def test_api_docstrings_are_escaped_for_restructuredtext():
    from mricourse.course.sphinx_ext import _escape

    assert _escape("(B, C, *spatial) and x * y") == r"(B, C, \*spatial) and x \* y"
    assert _escape("``a*b`` and **bold**") == "``a*b`` and **bold**"
    assert _escape("mean |F(G(x)) - x|") == r"mean \|F(G(x)) - x\|"


def test_every_module_has_an_api_page():
    """The API reference (book/api/*.md) documents every module of the package, under its real path."""
    documented = set()
    for page in (ROOT / "book" / "api").glob("*.md"):
        documented |= set(re.findall(r"\.\. automodule:: ([\w.]+)", page.read_text()))
    package = ROOT / "mricourse"
    modules = set()
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] in ("__main__", "_version") or (
            parts[-1] == "__init__" and (len(parts) == 2 or not path.read_text().strip())
        ):
            continue  # the top-level namespace (book/api/index.md), empty package files
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    assert sorted(modules - documented) == [], "modules without an API section"
    assert sorted(documented - modules) == [], "API sections naming no module"
