"""Exercises: student versions of the chapter notebooks, their checks, and the Colab setup cell.

A chapter's exercises follow one convention (DESIGN.md section 7): a markdown cell tagged
``exercise`` (the prompt), one or more code cells tagged ``solution``, then a check cell that
calls an ``mc.check_*`` function (:mod:`mricourse.checks`). From one source notebook:

- the **book** shows each solution folded behind a "Show solution" toggle (``setup`` below is a
  Sphinx extension that tags solution cells ``hide-cell`` while the book is built);
- the **student version** replaces each solution by a stub that keeps the imports, the function
  and class signatures and docstrings, and the names of the variables it defines (set to ``None``),
  and raises ``NotImplementedError`` naming the exercise; nothing of the solution's body is kept;
- the **instructor version** is the source notebook, validated, without outputs.

Command line (``make student`` and ``make test`` call it)::

    python -m mricourse.exercises student notebooks/ --out student/          [--run]
    python -m mricourse.exercises instructor notebooks/ --out instructor/
    python -m mricourse.exercises check notebooks/        # structure + Colab cell, no execution
    python -m mricourse.exercises sync-colab notebooks/   # rewrite the Colab cell and badge from _config.yml

A statement in a solution whose first line ends with ``# keep`` is copied to the stub verbatim
(for given set-up lines).
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Exercise", "NotebookError", "find_exercises", "stub_source", "student_notebook", "instructor_notebook", "book_view"]

EXERCISE, SOLUTION, STUB = "exercise", "solution", "exercise-stub"
_LABEL = re.compile(r"[*_\s]*Exercise\s+(\d+(?:\.\d+)*)[*_]*\s*[:.\-\u2014\u2013]?[*_]*\s*(.*)", re.IGNORECASE)


class NotebookError(ValueError):
    """A notebook that does not follow the exercise convention; the message names the cell."""


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


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


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


def _on_source_read(app, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        try:
            nb = json.loads(source[0])
        except ValueError:
            return
        source[0] = json.dumps(book_view(nb), ensure_ascii=False)


def setup(app):
    """Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``): fold solutions in the book."""
    app.connect("source-read", _on_source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    from .nbtools import main

    raise SystemExit(main())
