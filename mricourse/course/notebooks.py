"""Running and checking the chapter notebooks: the Colab setup cell and badge (from
``_config.yml``), executing a notebook headless in a fresh kernel (the benchmark, the student
versions) and driving its widget explorers. The exercises and their command line are in
:mod:`mricourse.course.exercises`.

The repository URL and branch live in ONE place, ``_config.yml`` (``repository.url``,
``repository.branch``); every notebook's first code cell and Colab badge are derived from them,
and ``check``/``sync-colab`` keep them in step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..utils import HEADLESS_ENV

__all__ = [
    "repository",
    "setup_cell",
    "colab_url",
    "colab_problems",
    "sync_colab",
    "execute_notebook",
    "drive_explorers",
    "NotebookError",
]


class NotebookError(ValueError):
    """A notebook that does not follow the exercise convention; the message names the cell."""


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


_SETUP = """# Colab only: install the course package (it never downgrades Colab's libraries).
import sys
if "google.colab" in sys.modules:
    %pip install -q "mricourse @ git+{url}@{branch}"
"""
_BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"
_COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'>]+")


def _root(start: Path) -> Path:
    start = start.resolve()
    for p in [start, *start.parents]:
        if (p / "_config.yml").exists():
            return p
    raise FileNotFoundError(f"no _config.yml above {start}")


def repository(root: Path | str = ".") -> tuple[str, str]:
    """``(url, branch)`` of the repository from ``_config.yml`` (the one place they are configured)."""
    import yaml

    cfg = yaml.safe_load((_root(Path(root)) / "_config.yml").read_text())
    repo = cfg.get("repository", {})
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def setup_cell(url: str, branch: str) -> str:
    """The first code cell of every chapter: install the package, only on Colab, non-editable."""
    return _SETUP.format(url=url, branch=branch)


def colab_url(url: str, branch: str, path: str) -> str:
    """The Colab address of the notebook at ``path`` (relative to the repository root)."""
    m = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(\.git)?", url)
    if not m:
        raise ValueError(f"expected a GitHub repository URL https://github.com/<owner>/<repo>, got {url!r}")
    return f"https://colab.research.google.com/github/{m.group(1)}/blob/{branch}/{path}"


def _first_code(nb) -> int | None:
    return next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"), None)


def colab_problems(nb, path: Path) -> list[str]:
    """What is wrong with a notebook's Colab setup cell and badge (empty when all is right)."""
    root = _root(path.parent)
    url, branch = repository(root)
    want_link = colab_url(url, branch, path.resolve().relative_to(root).as_posix())
    problems = []
    i = _first_code(nb)
    if i is None or _source(nb["cells"][i]).strip() != setup_cell(url, branch).strip():
        problems.append(f"the first code cell is not the Colab setup cell for {url}@{branch}")
    elif "remove-cell" not in _tags(nb["cells"][i]):
        problems.append("the Colab setup cell is not tagged 'remove-cell'")
    links = [m for c in nb["cells"] if c["cell_type"] == "markdown" for m in _COLAB_LINK.findall(_source(c))]
    if not links:
        problems.append("no 'Open in Colab' badge in a markdown cell")
    problems += [f"the Colab link {link} should be {want_link}" for link in links if link != want_link]
    return problems


def sync_colab(nb, path: Path) -> bool:
    """Rewrite the setup cell and the Colab links from ``_config.yml``; add them if missing. True if changed."""
    import nbformat

    before = repr(nb["cells"])
    root = _root(path.parent)
    url, branch = repository(root)
    want_link = colab_url(url, branch, path.resolve().relative_to(root).as_posix())
    i = _first_code(nb)
    if i is not None and "google.colab" in _source(nb["cells"][i]) and "pip install" in _source(nb["cells"][i]):
        nb["cells"][i]["source"] = setup_cell(url, branch).rstrip("\n")
    else:
        nb["cells"].insert(
            i if i is not None else len(nb["cells"]), nbformat.v4.new_code_cell(setup_cell(url, branch).rstrip("\n"))
        )
        i = i if i is not None else len(nb["cells"]) - 1
    nb["cells"][i].setdefault("metadata", {})["tags"] = sorted(set(_tags(nb["cells"][i])) | {"remove-cell"})
    found = False
    for c in nb["cells"]:
        if c["cell_type"] == "markdown" and _COLAB_LINK.search(_source(c)):
            c["source"], found = _COLAB_LINK.sub(want_link, _source(c)), True
    if not found:
        md = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
        badge = f"[![Open In Colab]({_BADGE_IMG})]({want_link})"
        if md is None:
            nb["cells"].insert(0, nbformat.v4.new_markdown_cell(badge))
        else:
            md["source"] = _source(md).rstrip("\n") + "\n\n" + badge
    return repr(nb["cells"]) != before


def _kernel_manager(sockets: Path, kernel_python: str | None):
    """A kernel manager over IPC sockets in ``sockets``; the kernel runs in ``kernel_python``
    (another virtual environment's interpreter, with ipykernel) or, by default, in this one."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    if kernel_python is None:
        return KernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / "kernel"))
    spec = sockets / "kernels" / "course"
    spec.mkdir(parents=True)
    argv = [str(kernel_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "course", "language": "python"}))
    ksm = KernelSpecManager(kernel_dirs=[str(sockets / "kernels")])
    return KernelManager(kernel_name="course", kernel_spec_manager=ksm, transport="ipc", ip=str(sockets / "kernel"))


def execute_notebook(
    nb,
    cwd: Path,
    timeout: int | None = 600,
    env: dict | None = None,
    allow_errors: bool = False,
    kernel_python: str | None = None,
) -> None:
    """Run every cell of ``nb`` (in place) in a fresh ``python3`` kernel working in ``cwd``.

    The kernel talks to this process over local (IPC) sockets in a private temporary folder, not
    over TCP ports: a port picked for the kernel can be taken by another program in the moment
    before the kernel binds it (another kernel, or a ``torchrun`` job), and the client then waits
    for replies that never come. ``env``: the kernel's whole environment (default: this process's).
    ``timeout``: seconds per cell. The kernel runs with ``MRICOURSE_HEADLESS=1``.
    ``kernel_python``: run the kernel in that interpreter (another environment) instead of this one.
    """
    from nbclient import NotebookClient

    env = {**(os.environ if env is None else env), HEADLESS_ENV: "1"}  # no widgets: see interactive_session
    sockets = Path(tempfile.mkdtemp(prefix="mricourse-kernel-"))
    try:
        km = _kernel_manager(sockets, kernel_python)
        resources = {"metadata": {"path": str(Path(cwd).resolve())}}
        client = NotebookClient(nb, km=km, timeout=timeout, allow_errors=allow_errors, resources=resources)
        client.execute(env=env)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


# Kernel-side helpers of drive_explorers: every ipywidgets.interactive in the namespace, and the
# values each control is moved to: a slider to the ends of its range and back, a dropdown to its
# next option, a checkbox toggled (these two stay moved, so the later controls are driven in the
# other state too, as a reader would: a TI slider with the inversion pulse switched on).
_EXPLORER_HELPERS = """
import ipywidgets as _mc_w
def _mc_explorers():
    return {k: v for k, v in globals().items() if isinstance(v, _mc_w.interactive) and not k.startswith("_")}
def _mc_moves(w):
    if getattr(w, "disabled", False):
        return []
    if isinstance(w.value, bool):
        return [not w.value]
    if hasattr(w, "index") and hasattr(w, "options"):
        return [("index", (w.index + 1) % len(w.options))] if len(w.options) > 1 else []
    if hasattr(w, "max") and hasattr(w, "min"):
        moves, current = [], w.value
        for target in (w.max, w.min, w.value):
            if target != current:
                moves.append(target)
                current = target
        return moves
    raise TypeError(f"no rule to move a {type(w).__name__}")
def _mc_set(w, move):
    if isinstance(move, tuple) and move and move[0] == "index":
        w.index = move[1]
    else:
        w.value = move
"""


def _run_in_kernel(kc, code: str, timeout: float) -> dict:
    """Execute ``code``; return its outputs: ``pngs`` (base64 PNGs displayed), ``errors``, ``stdout``."""
    msg_id = kc.execute(code, store_history=False)
    out = {"pngs": [], "errors": [], "stdout": ""}
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no reply within {timeout:.0f} s to: {code.splitlines()[0][:80]}")
        msg = kc.get_iopub_msg(timeout=remaining)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind in ("display_data", "execute_result", "update_display_data") and "image/png" in content["data"]:
            out["pngs"].append(content["data"]["image/png"])
        elif kind == "error":
            out["errors"].append(f"{content['ename']}: {content['evalue']}")
        elif kind == "stream" and content["name"] == "stdout":
            out["stdout"] += content["text"]
        elif kind == "status" and content["execution_state"] == "idle":
            return out


def drive_explorers(
    path: Path | str, kernel_python: str | None = None, env: dict | None = None, timeout: float = 600
) -> list[str]:
    """Build a chapter's ipywidgets explorers in a live kernel and move every control of each.

    A live kernel as JupyterLab or Colab gives (``MRICOURSE_HEADLESS`` unset, the inline
    matplotlib backend): the notebook's code cells run up to its last explorer, then every
    enabled control of every ``ipywidgets.interactive`` is moved in turn (a slider to its ends and
    back, a dropdown to its next option, a checkbox toggled). Each move must run the explorer's callback without
    error and draw a new figure, different from the one before. The kernel runs in
    ``kernel_python`` if given (an environment with another ipywidgets).

    Returns one line per move; raises ``NotebookError`` naming the cell or the control that failed.
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    last = max((i for i, c in enumerate(code) if "widgets.interactive(" in c.source or "interact(" in c.source), default=None)
    if last is None:
        return []
    env = {k: v for k, v in (os.environ if env is None else env).items() if k not in (HEADLESS_ENV, "MPLBACKEND")}
    sockets = Path(tempfile.mkdtemp(prefix="mricourse-kernel-"))
    km = _kernel_manager(sockets, kernel_python)
    lines = []
    try:
        km.start_kernel(env=env, cwd=str(path.parent.resolve()))
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        for i, cell in enumerate(code[: last + 1]):
            r = _run_in_kernel(kc, cell.source, timeout)
            if r["errors"]:
                raise NotebookError(f"{path.name}: code cell {i + 1} failed before the explorers: {r['errors'][0]}")
        r = _run_in_kernel(
            kc, _EXPLORER_HELPERS + "\nimport json as _mc_json\nprint(_mc_json.dumps(sorted(_mc_explorers())))", timeout
        )
        if r["errors"]:
            raise NotebookError(f"{path.name}: could not list the explorers: {r['errors'][0]}")
        names = json.loads(r["stdout"].strip().splitlines()[-1])
        if not names:
            raise NotebookError(
                f"{path.name}: the explorer cells ran but built no ipywidgets.interactive (is MRICOURSE_HEADLESS set?)"
            )
        for name in names:
            n_controls = int(_run_in_kernel(kc, f"print(len({name}.kwargs_widgets))", timeout)["stdout"])
            previous = None
            for j in range(n_controls):
                w = f"{name}.kwargs_widgets[{j}]"
                r = _run_in_kernel(kc, f"_mc_m = _mc_moves({w})\nprint(len(_mc_m), {w}.description, sep='|')", timeout)
                if r["errors"]:
                    raise NotebookError(f"{path.name}: {name} control {j}: {r['errors'][0]}")
                n_moves, label = r["stdout"].strip().splitlines()[-1].split("|", 1)
                if n_moves == "0":
                    lines.append(f"{name}: {label}: disabled or a single option, not moved")
                for k in range(int(n_moves)):
                    r = _run_in_kernel(kc, f"_mc_set({w}, _mc_m[{k}])\nprint(repr({w}.value))", timeout)
                    what = f"{name}: {label} -> {r['stdout'].strip().splitlines()[-1] if r['stdout'].strip() else '?'}"
                    if r["errors"]:
                        raise NotebookError(f"{path.name}: {what}: the callback raised {r['errors'][0]}")
                    if not r["pngs"]:
                        raise NotebookError(f"{path.name}: {what}: no figure was drawn")
                    if r["pngs"][-1] == previous:
                        raise NotebookError(f"{path.name}: {what}: the figure did not change")
                    previous = r["pngs"][-1]
                    lines.append(f"{what}: new figure")
    finally:
        try:
            km.shutdown_kernel(now=True)
        finally:
            shutil.rmtree(sockets, ignore_errors=True)
    return lines
