"""Tools for the chapter notebooks: the Colab setup cell and badge (from ``_config.yml``), running the
student versions, and the command line ``python -m mricourse.exercises`` (see :mod:`mricourse.exercises`).

The repository URL and branch live in ONE place, ``_config.yml`` (``repository.url``,
``repository.branch``); every notebook's first code cell and Colab badge are derived from them,
and ``check``/``sync-colab`` keep them in step.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .exercises import STUB, NotebookError, _source, _tags, find_exercises, instructor_notebook, student_notebook
from .utils import HEADLESS_ENV

__all__ = [
    "repository",
    "setup_cell",
    "colab_url",
    "colab_problems",
    "sync_colab",
    "run_student",
    "grade",
    "execute_notebook",
    "drive_explorers",
    "main",
]

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


def run_student(nb_path: Path, out: Path, timeout: int = 600) -> tuple[list[str], float]:
    """Generate the student version of ``nb_path`` into ``out``, execute it (errors allowed) and
    return (problems, seconds). The only errors allowed are ``NotImplementedError`` in stub and
    check cells, and every check cell must raise it (a check that passes on a stub is too lax)."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    exercises = find_exercises(nb, nb_path.name)
    student = student_notebook(nb, nb_path.name)
    checks = {ex.check: ex for ex in exercises}
    t0 = time.perf_counter()
    _execute(student, nb_path.parent, timeout)  # run where the source notebook lives
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(student, out / nb_path.name)
    problems = []
    for i, cell in enumerate(student["cells"]):
        if cell["cell_type"] != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        for e in errors:
            if e["ename"] != "NotImplementedError" or not (STUB in _tags(cell) or i in checks):
                problems.append(f"cell {i}: {e['ename']}: {e['evalue']}")
        if i in checks and not any(e["ename"] == "NotImplementedError" for e in errors):
            problems.append(f"cell {i}: the check of {checks[i].label} did not raise NotImplementedError on the stub")
    return problems, seconds


def grade(submission: Path, reference: Path | None = None, timeout: int = 600) -> list[tuple[str, str, str]]:
    """Run a student's notebook and grade each exercise by its check cell: ``(label, status,
    detail)`` with status ``passed``, ``wrong`` (the check's message), ``not done`` or ``error``.

    With ``reference`` (the source notebook) the check cells are first restored from it, so an
    edited check cannot pass, and the kernel runs in the reference's folder.
    """
    import nbformat

    nb = nbformat.read(submission, as_version=4)
    cwd, originals = submission.parent, {}
    if reference is not None:
        ref = nbformat.read(reference, as_version=4)
        originals = {e.label: ref.cells[e.check] for e in find_exercises(ref, reference.name)}
        by_id = {c.get("id"): c for c in nb.cells if c.get("id")}
        for check in originals.values():  # the student version keeps the cell ids of the source
            if check.get("id") in by_id:
                by_id[check["id"]].source = check.source
        cwd = reference.parent
    exercises = find_exercises(nb, submission.name, submitted=True)
    for ex in exercises:
        if ex.label in originals:
            nb.cells[ex.check].source = originals[ex.label].source
    missing = [label for label in originals if label not in {e.label for e in exercises}]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    _execute(nb, cwd, timeout)
    rows = []
    for ex in exercises:
        errors = [(i, o) for i in [*ex.solutions, ex.check] for o in nb.cells[i].outputs if o.output_type == "error"]
        if not errors:
            rows.append((ex.label, "passed", ""))
            continue
        i, e = errors[0]
        detail = f"{e.ename}: {e.evalue}".splitlines()[0]
        status = (
            "not done"
            if e.ename == "NotImplementedError"
            else "wrong"
            if (i == ex.check and e.ename == "CheckFailed")
            else "error"
        )
        rows.append((ex.label, status, detail))
    return rows + [(label, "missing", "the exercise's cells were deleted") for label in missing]


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


def _execute(nb, cwd: Path, timeout: int) -> None:
    """Run every cell (errors allowed) in ``cwd``, in a kernel that imports this very package."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    execute_notebook(nb, cwd, timeout, env=env, allow_errors=True)


def _notebooks(paths: list[str]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        out += sorted(p.glob("*.ipynb")) if p.is_dir() else [p]
    if not out:
        raise SystemExit(f"no notebooks found in {', '.join(paths)}")
    return out


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(prog="python -m mricourse.exercises", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in [("student", "write student versions (solutions -> stubs)"), ("instructor", "write instructor versions")]:
        p = sub.add_parser(name, help=help_)
        p.add_argument("paths", nargs="+", help="notebooks or folders of notebooks")
        p.add_argument("--out", required=True, type=Path, help="output folder")
        if name == "student":
            p.add_argument("--run", action="store_true", help="also execute them: only NotImplementedError may be raised")
            p.add_argument("--profile", default="smoke", help="MRICOURSE_PROFILE for --run (default smoke)")
            p.add_argument("--timeout", type=int, default=600, help="seconds per cell for --run")
    p = sub.add_parser("grade", help="run students' notebooks and grade each exercise by its check")
    p.add_argument("paths", nargs="+", help="submitted notebooks or folders of them")
    p.add_argument("--reference", type=Path, help="folder of the source notebooks: restores the check cells, runs there")
    p.add_argument("--profile", help="MRICOURSE_PROFILE for the run (default: the environment's)")
    p.add_argument("--csv", type=Path, help="also write the grades to this CSV file")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p = sub.add_parser("check", help="check the exercise structure and the Colab cell and badge of notebooks")
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("sync-colab", help="rewrite each notebook's Colab setup cell and badge from _config.yml")
    p.add_argument("paths", nargs="+")
    p.add_argument("--check", action="store_true", help="only report notebooks that are out of step (exit 1)")
    args = parser.parse_args(argv)

    failed, grades = False, []
    if args.command == "grade" and args.profile:
        os.environ["MRICOURSE_PROFILE"] = args.profile
    for path in _notebooks(args.paths):
        nb = nbformat.read(path, as_version=4)
        try:
            if args.command == "instructor":
                args.out.mkdir(parents=True, exist_ok=True)
                nbformat.write(instructor_notebook(nb, path.name), args.out / path.name)
                print(f"instructor {args.out / path.name}")
            elif args.command == "student" and not args.run:
                args.out.mkdir(parents=True, exist_ok=True)
                nbformat.write(student_notebook(nb, path.name), args.out / path.name)
                print(f"student {args.out / path.name}: {len(find_exercises(nb, path.name))} exercises")
            elif args.command == "student":
                os.environ["MRICOURSE_PROFILE"] = args.profile
                # absolute: the kernel runs in the notebook's folder
                os.environ["MRICOURSE_RESULTS"] = str(Path(os.environ.get("MRICOURSE_RESULTS") or args.out / "results").resolve())
                problems, seconds = run_student(path, args.out, args.timeout)
                n = len(find_exercises(nb, path.name))
                print(f"student {path.name}: {n} exercises, {seconds:.1f} s, " + ("ok" if not problems else "FAILED"))
                for msg in problems:
                    print(f"  {msg}")
                failed |= bool(problems)
            elif args.command == "grade":
                ref = args.reference / path.name if args.reference else None
                rows = grade(path, ref if ref is not None and ref.exists() else None, args.timeout)
                passed = sum(status == "passed" for _, status, _ in rows)
                print(f"{path}: {passed}/{len(rows)} passed")
                for label, status, detail in rows:
                    print(f"  {label:<14} {status:<9} {detail}")
                grades += [(str(path), *row) for row in rows]
            elif args.command == "check":
                problems = [f"{len(find_exercises(nb, path.name))} exercises"]
                colab = colab_problems(nb, path)
                print(f"{path}: " + "; ".join(problems + colab))
                failed |= bool(colab)
            elif args.command == "sync-colab" and args.check:
                colab = colab_problems(nb, path)
                print(f"{path}: " + ("; ".join(colab) if colab else "ok"))
                failed |= bool(colab)
            else:
                if sync_colab(nb, path):
                    nbformat.write(nb, path)
                    print(f"{path}: updated")
                else:
                    print(f"{path}: ok")
        except NotebookError as e:
            print(f"{path}: {e}", file=sys.stderr)
            failed = True
    if args.command == "grade" and args.csv:
        import csv

        with open(args.csv, "w", newline="") as f:
            csv.writer(f).writerows([("notebook", "exercise", "status", "detail"), *grades])
    if failed and args.command in ("check", "sync-colab"):
        print("fix: python -m mricourse.exercises sync-colab notebooks/  (URL and branch come from _config.yml)", file=sys.stderr)
    return int(failed)
