"""Exercises: student versions of the chapter notebooks, their checks, and the Colab setup cell.

A chapter's exercises follow one convention (DESIGN.md section 7): a markdown cell tagged
``exercise`` (the prompt), one or more code cells tagged ``solution``, then a check cell that
calls an ``mc.check_*`` function (:mod:`mricourse.course.checks`). From one source notebook:

- the **book** shows each solution folded behind a "Show solution" toggle (``setup`` below is a
  Sphinx extension that tags solution cells ``hide-cell`` while the book is built);
- the **student version** replaces each solution by a stub that keeps the imports, the function
  and class signatures and docstrings, and the names of the variables it defines (set to ``None``),
  and raises ``NotImplementedError`` naming the exercise; nothing of the solution's body is kept;
- the **instructor version** is the source notebook, validated, without outputs.

Command line (``make student`` and ``make test`` call it)::

    python -m mricourse.course.exercises student notebooks/ --out student/          [--run]
    python -m mricourse.course.exercises instructor notebooks/ --out instructor/
    python -m mricourse.course.exercises check notebooks/        # structure + Colab cell, no execution
    python -m mricourse.course.exercises sync-colab notebooks/   # rewrite the Colab cell and badge from _config.yml

A statement in a solution whose first line ends with ``# keep`` is copied to the stub verbatim
(for given set-up lines).
"""

from __future__ import annotations

import argparse
import ast
import copy
import io
import os
import re
import sys
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from .claims import claim_problems
from .notebooks import (
    NotebookError,
    _source,
    _tags,
    colab_problems,
    execute_notebook,
    sync_colab,
)

__all__ = [
    "Exercise",
    "NotebookError",
    "find_exercises",
    "stub_source",
    "student_notebook",
    "instructor_notebook",
    "book_view",
    "run_student",
    "grade",
    "main",
]

EXERCISE, SOLUTION, STUB = "exercise", "solution", "exercise-stub"
_LABEL = re.compile(r"[*_\s]*Exercise\s+(\d+(?:\.\d+)*)[*_]*\s*[:.\-\u2014\u2013]?[*_]*\s*(.*)", re.IGNORECASE)


@dataclass
class Exercise:
    label: str  # "Exercise 1.2"
    title: str  # "Sampling at 4x" (may be empty)
    prompt: int  # cell indices
    solutions: list[int] = field(default_factory=list)
    check: int = -1

    @property
    def name(self) -> str:
        return f"{self.label} ({self.title})" if self.title else self.label


def _chapter(name: str) -> str | None:
    m = re.match(r"(\d+)", Path(name).stem)
    return str(int(m.group(1))) if m else None


def find_exercises(nb, name: str = "notebook", submitted: bool = False) -> list[Exercise]:
    """The exercises of a notebook, validated: prompt -> solution cell(s) -> check cell.

    ``submitted``: a student's notebook, where stubs (tag ``exercise-stub``) and any extra code
    cells before the check cell make up the answer.
    """
    answer = (SOLUTION, STUB) if submitted else (SOLUTION,)
    cells, out, chapter = nb["cells"], [], _chapter(name)
    used: set[int] = set()
    for i, cell in enumerate(cells):
        if EXERCISE not in _tags(cell):
            continue
        if cell["cell_type"] != "markdown":
            raise NotebookError(f"{name}, cell {i}: the tag '{EXERCISE}' belongs on a markdown cell (the prompt)")
        lines = [ln.lstrip("#").strip() for ln in _source(cell).splitlines() if ln.strip()]
        m = next((m for m in map(_LABEL.match, lines) if m), None)  # "Exercise 1.2: title", on any line
        heading = lines[0] if lines else ""
        n = len(out) + 1
        label = f"Exercise {m.group(1)}" if m else f"Exercise {chapter}.{n}" if chapter else f"Exercise {n}"
        title = (m.group(2) if m else heading).strip().strip("*_ ").rstrip(".")
        ex = Exercise(label, title, i)
        for j in range(i + 1, len(cells)):
            c = cells[j]
            if EXERCISE in _tags(c):
                break
            if c["cell_type"] != "code":
                continue
            if any(t in _tags(c) for t in answer) or (submitted and "check_" not in _source(c)):
                ex.solutions.append(j)
                continue
            ex.check = j
            break
        if not ex.solutions:
            raise NotebookError(f"{name}, cell {i}: {label} has no code cell tagged '{SOLUTION}' after its prompt")
        if ex.check < 0 or "check_" not in _source(cells[ex.check]):
            raise NotebookError(
                f"{name}, cell {ex.solutions[-1]}: the solution of {label} must be followed by a check cell calling mc.check_*"
            )
        used.update(ex.solutions)
        out.append(ex)
    for i, cell in enumerate(cells):
        if any(t in _tags(cell) for t in answer) and i not in used:
            raise NotebookError(f"{name}, cell {i}: a '{SOLUTION}' cell without an '{EXERCISE}' prompt before it")
    return out


# ---------------------------------------------------------------- stubs
def _colon(lines: list[str], lineno: int) -> tuple[int, int]:
    """(row, col) of the colon that ends the ``def``/``class`` header starting at ``lineno``."""
    text = "\n".join(lines[lineno - 1 :]) + "\n"
    depth = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.OP and tok.string == ":" and depth == 0:
            return tok.start[0] + lineno - 1, tok.start[1]
    raise NotebookError(f"no ':' after the header on line {lineno}")


def _docstring(node) -> ast.Expr | None:
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first
    return None


def _stub_def(node, lines: list[str], message: str) -> list[str]:
    """Decorators, signature and docstring of a def/class kept; every function body raises."""
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    row, col = _colon(lines, node.lineno)
    out = lines[start - 1 : row - 1] + [lines[row - 1][: col + 1]]
    indent = " " * (node.col_offset + 4)
    doc = _docstring(node)
    if doc is not None:
        out += [indent + ln.lstrip() if k == 0 else ln for k, ln in enumerate(lines[doc.lineno - 1 : doc.end_lineno])]
        if doc.lineno == row:  # docstring on the header line
            out[-1 - (doc.end_lineno - doc.lineno)] = indent + ast.get_source_segment("\n".join(lines), doc).lstrip()
    if isinstance(node, ast.ClassDef):
        body = []
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body += [""] + _stub_def(stmt, lines, f"{message.split(':')[0]}: write {node.name}.{stmt.name}()")
            elif isinstance(stmt, ast.AnnAssign):  # dataclass fields are the interface
                body += lines[stmt.lineno - 1 : stmt.end_lineno]
        return out + (body or ([] if doc else [indent + "pass"]))
    return out + [f"{indent}raise NotImplementedError({_q(message)})"]


def _bound_names(stmts) -> list[str]:
    """Names a cell assigns at top level (also inside top-level loops/ifs/withs), in order."""
    names: list[str] = []

    def targets(t):
        if isinstance(t, ast.Name):
            yield t.id
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                yield from targets(e)
        elif isinstance(t, ast.Starred):
            yield from targets(t.value)

    def visit(stmt):
        if isinstance(stmt, ast.Assign):
            found = [n for t in stmt.targets for n in targets(t)]
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
            found = list(targets(stmt.target))
        else:
            found = []
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.stmt) and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    visit(child)
        names.extend(n for n in found if n not in names)

    for s in stmts:
        visit(s)
    return names


def _parse(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as e:
        raise NotebookError(f"a solution cell must be plain Python (no magics): {e}") from None


def _kept(stmt, lines: list[str]) -> bool:
    return isinstance(stmt, (ast.Import, ast.ImportFrom)) or lines[stmt.lineno - 1].rstrip().endswith("# keep")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stub_source(source: str, name: str, used_later: set[str] | None = None) -> str:
    """The student stub of one solution cell; ``name`` names the exercise in every message.

    Variables the solution assigns become ``name = None``; with ``used_later`` (the names later
    cells use) only those are kept, so a solution's temporaries are not revealed.
    """
    tree, lines = _parse(source), source.splitlines()
    out = [f"# {name}: replace `raise NotImplementedError` with your code, then run the check below."]
    defs, variables = False, []
    for stmt in tree.body:
        if _kept(stmt, lines):
            out += lines[stmt.lineno - 1 : stmt.end_lineno]
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs = True
            what = f"write the body of {stmt.name}()" if not isinstance(stmt, ast.ClassDef) else f"write {stmt.name}"
            out += ([""] if len(out) > 1 and out[-1] else []) + _stub_def(stmt, lines, f"{name}: {what}") + [""]
        else:
            new = [n for n in _bound_names([stmt]) if n not in variables and (used_later is None or n in used_later)]
            variables += new
            out += [f"{n} = None" for n in new]
    while out and not out[-1]:
        out.pop()
    if variables or not defs:
        todo = f"compute {', '.join(variables)}" if variables else "not done yet"
        out.append(f"raise NotImplementedError({_q(f'{name}: {todo}')})")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- notebooks
def _clean(nb):
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def student_notebook(nb, name: str = "notebook"):
    """The student version: every solution cell replaced by its stub; no outputs."""
    nb = _clean(nb)
    words = [set(re.findall(r"[A-Za-z_]\w*", _source(c))) if c["cell_type"] == "code" else set() for c in nb["cells"]]
    for ex in find_exercises(nb, name):
        for i in ex.solutions:
            cell = nb["cells"][i]
            used_later = set().union(*words[i + 1 :])
            try:
                cell["source"] = stub_source(_source(cell), ex.name, used_later)
            except NotebookError as e:
                raise NotebookError(f"{name}, cell {i}: {e}") from None
            cell["metadata"]["tags"] = [t for t in _tags(cell) if t not in (SOLUTION, "hide-cell", "hide-input")] + [STUB]
    return nb


def instructor_notebook(nb, name: str = "notebook"):
    """The instructor version: the source notebook, validated, without outputs."""
    find_exercises(nb, name)
    return _clean(nb)


def book_view(nb):
    """What the book renders: solution cells folded behind "Show solution" (myst-nb ``hide-cell``)."""
    for cell in nb.get("cells", []):
        if SOLUTION in _tags(cell) and cell.get("cell_type") == "code":
            meta = cell.setdefault("metadata", {})
            meta["tags"] = _tags(cell) + ["hide-cell"] * ("hide-cell" not in _tags(cell))
            meta.setdefault("mystnb", {}).update(code_prompt_show="Show solution", code_prompt_hide="Hide solution")
    return nb


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


def _execute(nb, cwd: Path, timeout: int) -> None:
    """Run every cell (errors allowed) in ``cwd``, in a kernel that imports this very package."""
    package_root = str(Path(__file__).resolve().parents[2])
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

    parser = argparse.ArgumentParser(prog="python -m mricourse.course.exercises", description=__doc__.split("\n\n")[0])
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
    p = sub.add_parser(
        "check",
        help="check the exercise structure, the Colab cell and badge, and the claims (mricourse.course.claims) of notebooks",
    )
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
                claims = [f"claim check: {c}" for c in claim_problems(nb)]  # numbers and outcomes not from the run
                print(f"{path}: " + "; ".join(problems + colab + claims))
                failed |= bool(colab or claims)
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
        print(
            "fix: python -m mricourse.course.exercises sync-colab notebooks/  (URL and branch come from _config.yml)",
            file=sys.stderr,
        )
    return int(failed)


if __name__ == "__main__":
    raise SystemExit(main())
