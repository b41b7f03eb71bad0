"""Run every chapter the way a student on Google Colab does, and fail if one does not run.

    python tests/colab/check_colab.py [--notebooks notebooks/*.ipynb] [--rebuild]

1. A separate virtual environment holds what a Colab runtime has before the first cell runs
   (``requirements/colab.txt``: its kind of torch, numpy 2, ipywidgets 7.7, ipykernel, ...).
2. The package is installed into it exactly as each notebook's first cell does it -- the same
   ``pip install`` arguments, from this checkout instead of the repository URL (no lock, no
   extras the cell does not name) -- and no library the runtime already had may be downgraded
   or removed by that install.
3. Every chapter runs top to bottom in the ``smoke`` profile in a kernel of that environment,
   on data generated from scratch (a fresh ``MRICOURSE_DATA``, as on a new Colab runtime); the
   kernel checks that it imports the installed package, not this checkout.
4. The ipywidgets explorers are built in a live kernel of that environment (ipywidgets 7.7) and
   every control is moved (``mricourse.course.notebooks.drive_explorers``); ``tests/test_explorers.py``
   does the same under the lock's ipywidgets 8.

The environment is cached in ``$MRICOURSE_COLAB_ENV`` (default ``~/.cache/mricourse/colab-env``),
one folder per hash of its inputs (``requirements/colab.txt``, ``pyproject.toml``, the Python
version, this script): unchanged inputs reuse it and only the package itself is reinstalled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from mricourse.course.notebooks import (  # noqa: E402
    NotebookError,  # noqa: E402
    drive_explorers,
    execute_notebook,
    repository,
)

PREINSTALLED = ROOT / "requirements" / "colab.txt"
_PIP_LINE = re.compile(r"^\s*%pip install (.+)$", re.M)
# the first cell the kernel runs: it must use the installed package, not this checkout
_WHERE = """import sys, mricourse
assert mricourse.__file__.startswith(sys.prefix), f"mricourse imported from {mricourse.__file__}, not from {sys.prefix}"
print("mricourse from", mricourse.__file__)
"""


def install_args(notebooks: list[Path]) -> list[str]:
    """The ``pip install`` arguments of the chapters' first cells, the repository URL replaced by
    this checkout. Every chapter must install the same way (one environment serves them all)."""
    import nbformat

    url, branch = repository(ROOT)
    found = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        m = _PIP_LINE.search(first.source)
        if not m:
            raise SystemExit(f"{path.name}: its first code cell has no '%pip install' line")
        found[path.name] = m.group(1).strip()
    if len(set(found.values())) != 1:
        raise SystemExit("the chapters install the package differently:\n" + "\n".join(f"  {k}: {v}" for k, v in found.items()))
    args = shlex.split(next(iter(found.values())))
    source = f"git+{url}@{branch}"
    if not any(source in a for a in args):
        raise SystemExit(f"the first cells do not install from {source} (_config.yml): {args}")
    return [a.replace(source, ROOT.as_uri()) for a in args]


def _freeze(python: Path) -> dict[str, str]:
    out = subprocess.run([python, "-m", "pip", "list", "--format", "json"], check=True, capture_output=True, text=True).stdout
    return {d["name"].lower().replace("_", "-"): d["version"] for d in json.loads(out)}


def _version_key(v: str):
    from packaging.version import Version

    return Version(v)


def changed(before: dict[str, str], after: dict[str, str]) -> tuple[list[str], list[str]]:
    """(downgraded or removed, upgraded) packages between two ``pip list`` snapshots."""
    worse, upgraded = [], []
    for name, v in sorted(before.items()):
        if name not in after:
            worse.append(f"{name} {v} removed")
        elif after[name] != v:
            (upgraded if _version_key(after[name]) > _version_key(v) else worse).append(f"{name} {v} -> {after[name]}")
    return worse, upgraded


def _pip(python: Path, *args: str) -> None:
    subprocess.run([python, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def environment(args: list[str], rebuild: bool) -> Path:
    """The cached Colab-like environment with the package installed as the cells do; its python."""
    key = hashlib.sha256()
    for f in (PREINSTALLED, ROOT / "pyproject.toml", Path(__file__)):
        key.update(f.read_bytes())
    key.update(sys.version.encode())
    base = Path(os.environ.get("MRICOURSE_COLAB_ENV") or Path.home() / ".cache" / "mricourse" / "colab-env")
    env_dir = base / key.hexdigest()[:16]
    python = env_dir / "bin" / "python"
    if rebuild or not (env_dir / ".ready").exists():
        shutil.rmtree(env_dir, ignore_errors=True)
        for old in base.glob("*") if base.exists() else []:  # environments of older inputs
            shutil.rmtree(old, ignore_errors=True)
        print(f"building the Colab-like environment in {env_dir}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", env_dir], check=True)
        _pip(python, "install", "-q", "-r", str(PREINSTALLED))
        before = _freeze(python)
        print(f"installing as the first cells do: pip install {' '.join(args)}", flush=True)
        _pip(python, "install", *args)
        after = _freeze(python)
        worse, upgraded = changed(before, after)
        added = sorted(f"{n} {v}" for n, v in after.items() if n not in before)
        print("added: " + ", ".join(added))
        if upgraded:
            print("upgraded: " + ", ".join(upgraded))
        if worse:
            raise SystemExit("the install downgraded or removed what Colab has: " + ", ".join(worse))
        (env_dir / ".ready").write_text(json.dumps({"before": before, "after": after}, indent=1))
    else:
        print(f"reusing the Colab-like environment {env_dir} (inputs unchanged); reinstalling the package", flush=True)
        before = _freeze(python)
        _pip(python, "install", "-q", "--no-deps", "--force-reinstall", *args)
        worse, _ = changed(before, _freeze(python))
        if worse:
            raise SystemExit("reinstalling the package changed the environment: " + ", ".join(worse))
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", nargs="+", type=Path, default=sorted((ROOT / "notebooks").glob("*.ipynb")))
    parser.add_argument("--rebuild", action="store_true", help="rebuild the environment even if its inputs are unchanged")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)

    import nbformat

    python = environment(install_args(args.notebooks), args.rebuild)
    versions = subprocess.run(
        [
            python,
            "-c",
            "import torch, numpy, ipywidgets, sys; print(sys.version.split()[0], torch.__version__, numpy.__version__, ipywidgets.__version__)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    print("Colab-like kernel: Python {}, torch {}, numpy {}, ipywidgets {}".format(*versions), flush=True)

    failures = []
    with tempfile.TemporaryDirectory(prefix="mricourse-colab-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # ipykernel's debugger: no warning per kernel start
        env.update(
            MRICOURSE_PROFILE="smoke", MRICOURSE_DATA=str(Path(tmp) / "data"), MRICOURSE_RESULTS=str(Path(tmp) / "results")
        )
        for path in args.notebooks:
            nb = nbformat.read(path, as_version=4)
            nb.cells.insert(0, nbformat.v4.new_code_cell(_WHERE))
            start = time.perf_counter()
            try:
                execute_notebook(nb, path.parent, timeout=args.timeout, env=env, kernel_python=str(python))
                status = "ok"
            except Exception as e:  # a cell error: report the chapter and go on with the others
                message = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines() or [type(e).__name__]  # no colour codes
                status = "FAILED: " + message[-1]
                failures.append(path.name)
            print(f"{path.name}: {time.perf_counter() - start:.1f} s, {status}", flush=True)
        for path in args.notebooks:
            try:
                moves = drive_explorers(path, kernel_python=str(python), env=env, timeout=args.timeout)
            except (NotebookError, TimeoutError, RuntimeError) as e:
                print(f"{path.name} explorers: FAILED: {e}")
                failures.append(f"{path.name} explorers")
                continue
            if moves:
                print(f"{path.name} explorers (ipywidgets {versions[3]}): {len(moves)} moves, each a new figure")
    if failures:
        print("failed on the Colab path: " + ", ".join(failures), file=sys.stderr)
        return 1
    print(f"Colab path: all {len(args.notebooks)} chapters ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
