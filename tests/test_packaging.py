"""The packaging: pyproject.toml admits Colab's Python and libraries without pinning them, and the
exact lock (requirements/lock.txt) and environment.yml install the same versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


COLAB_PROVIDED = {
    "torch",
    "numpy",
    "scipy",
    "matplotlib",
    "nibabel",
    "h5py",
    "ipywidgets",
    "tqdm",
    "scikit-image",
    "pandas",
    "pyyaml",
}


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads TOML")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_has_no_upper_pins_and_admits_python_310_to_313():
    project = _pyproject()["project"]
    for dep in project["dependencies"]:
        req = Requirement(dep)
        upper = [s for s in req.specifier if s.operator in ("<", "<=", "==", "~=", "===")]
        assert not upper, (
            f"{dep}: no upper pins in pyproject.toml (Colab must never be downgraded); exact pins go in requirements/lock.txt"
        )
    names = {Requirement(d).name.lower() for d in project["dependencies"]}
    assert {"torch", "numpy", "ipywidgets"} <= names
    spec = SpecifierSet(project["requires-python"])
    for version in ("3.10", "3.11", "3.12", "3.13"):
        assert spec.contains(version), f"requires-python {spec} must admit Python {version} (Colab runs 3.13)"
        assert f"Programming Language :: Python :: {version}" in project["classifiers"]
    ipyw = next(Requirement(d) for d in project["dependencies"] if Requirement(d).name == "ipywidgets")
    assert ipyw.specifier.contains("7.7.1"), "Colab ships ipywidgets 7.7"


def test_colab_provided_packages_are_not_pinned_in_any_extra():
    project = _pyproject()["project"]
    for extra, deps in project.get("optional-dependencies", {}).items():
        for dep in deps:
            req = Requirement(dep)
            if req.name.lower() in COLAB_PROVIDED:
                assert not any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), f"[{extra}] {dep}"


def _lock() -> dict[str, str]:
    lines = (ROOT / "requirements" / "lock.txt").read_text().splitlines()
    return {k.lower(): v for k, v in (line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))}


def _environment() -> tuple[str, dict[str, str]]:
    """environment.yml's Python version and its pins (conda ``name=version``, pip ``name==version``)."""
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pins, python = {}, None
    for d in deps:
        for item in d["pip"] if isinstance(d, dict) else [d]:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==?\s*([^\s]+)", item)
            if m and m.group(1).lower() == "python":
                python = m.group(2)
            elif m:
                pins[m.group(1).lower()] = m.group(2)
    return python, pins


def test_environment_yml_installs_the_locked_versions_on_an_admitted_python():
    python, pins = _environment()
    lock = _lock()
    assert SpecifierSet(_pyproject()["project"]["requires-python"]).contains(python), f"environment.yml's python {python}"
    differ = {name: (v, lock[name]) for name, v in pins.items() if name in lock and lock[name] != v}
    assert differ == {}, "environment.yml and requirements/lock.txt pin different versions (environment, lock)"
    assert "torch" in pins and "torch" in lock, "torch must be pinned exactly in both (an unpinned torch pulls a CUDA build)"


def test_the_lock_pins_jupyter_book_1_and_no_torchvision():
    lock = _lock()
    assert lock["jupyter-book"].startswith("1.")
    assert "torchvision" not in lock
