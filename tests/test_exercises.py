"""Exercises: the student-version generator (no leaks), the mc.check_* auto-checks (right answers
pass, typical wrong answers get a specific message, stubs raise NotImplementedError), the
notebooks' exercise structure and Colab cell, and the package's Colab-friendly requirements."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
import torch

import mricourse as mc
from mricourse.course.exercises import (
    STUB,
    NotebookError,
    _docstring,
    _kept,
    book_view,
    find_exercises,
    grade,
    main,
    stub_source,
    student_notebook,
)
from mricourse.course.notebooks import colab_problems, colab_url, repository, setup_cell, sync_colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


# ---------------------------------------------------------------- leak detection (independent of the generator)
def _body_nodes(tree: ast.Module, lines: list[str]):
    """(solution-body nodes, interface nodes): what must not reach a stub, and what may."""
    body, interface = [], []

    def split_def(node):
        interface.extend(node.decorator_list)
        interface.append(node.args if not isinstance(node, ast.ClassDef) else ast.Module(node.bases + node.keywords, []))
        if getattr(node, "returns", None) is not None:
            interface.append(node.returns)
        doc = _docstring(node)
        for stmt in node.body:
            if stmt is doc:
                interface.append(stmt)
            elif isinstance(node, ast.ClassDef) and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                split_def(stmt)
            elif isinstance(node, ast.ClassDef) and isinstance(stmt, ast.AnnAssign):
                interface.append(stmt)
            else:
                body.append(stmt)

    for stmt in tree.body:
        if _kept(stmt, lines):
            interface.append(stmt)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            split_def(stmt)
        else:
            body.append(stmt)
    return body, interface


def _fingerprints(nodes, min_size: int = 4) -> dict[str, ast.AST]:
    """{ast.dump: node} of every statement and every expression of at least ``min_size`` nodes below ``nodes``."""
    out = {}
    for root in nodes:
        for n in ast.walk(root):
            if isinstance(n, ast.stmt) or (isinstance(n, ast.expr) and sum(1 for _ in ast.walk(n)) >= min_size):
                out.setdefault(ast.dump(n), n)
    return out


def leaks(solution: str, stub: str) -> list[str]:
    """Pieces of the solution's body (statements, non-trivial expressions) found in the stub."""
    tree, lines = ast.parse(solution), solution.splitlines()
    body, interface = _body_nodes(tree, lines)
    secret = _fingerprints(body)
    for d in _fingerprints(interface):
        secret.pop(d, None)
    return sorted(ast.unparse(secret[d]) for d in _fingerprints([ast.parse(stub)]) if d in secret)


# ---------------------------------------------------------------- the generator
FFT_SOLUTION = '''import torch

def my_fft2c(x: torch.Tensor,
             dims=(-2, -1)) -> torch.Tensor:
    """Centred orthonormal FFT over ``dims``."""
    # shift the centre to the corner, transform, shift back
    x = torch.fft.ifftshift(x, dim=dims)
    x = torch.fft.fftn(x, dim=dims, norm="ortho")
    return torch.fft.fftshift(x, dim=dims)
'''

MASK_SOLUTION = """W = 64  # keep
n = round(0.08 * W)
mask = torch.zeros(W)
start = (W - n + 1) // 2
mask[start : start + n] = 1
for col in range(0, W, 4):
    mask[col] = 1
mask = mask.reshape(1, 1, 1, W)
mc.show(mask[0, 0])
"""

CLASS_SOLUTION = '''from dataclasses import dataclass

@dataclass
class Config:
    """Sizes."""

    chans: int = 8

    def doubled(self) -> "Config":
        return Config(self.chans * 2)

def helper(a, b=3): return a * b + 1
'''


def _run(source: str, namespace: dict | None = None) -> dict:
    ns = {"torch": torch, "mc": mc} if namespace is None else namespace
    exec(compile(source, "<stub>", "exec"), ns)
    return ns


def test_function_stub_keeps_signature_and_docstring_and_raises_naming_the_exercise():
    stub = stub_source(FFT_SOLUTION, "Exercise 1.1 (A centred FFT)")
    assert "def my_fft2c(x: torch.Tensor,\n             dims=(-2, -1)) -> torch.Tensor:" in stub
    assert '"""Centred orthonormal FFT over ``dims``."""' in stub
    assert "import torch" in stub
    ns = _run(stub)
    with pytest.raises(NotImplementedError, match=r"Exercise 1\.1 \(A centred FFT\): write the body of my_fft2c"):
        ns["my_fft2c"](torch.zeros(2, 2, dtype=torch.complex64))


def test_variable_stub_keeps_names_that_later_cells_use_and_keep_lines():
    stub = stub_source(MASK_SOLUTION, "Exercise 1.2", used_later={"mask"})
    assert "W = 64  # keep" in stub and "mask = None" in stub
    assert "n = None" not in stub and "start" not in stub  # temporaries are not revealed
    ns = {"torch": torch, "mc": mc}
    with pytest.raises(NotImplementedError, match=r"Exercise 1\.2: compute mask"):
        _run(stub, ns)
    assert ns["mask"] is None and ns["W"] == 64
    assert "n = None" in stub_source(MASK_SOLUTION, "Exercise 1.2")  # without the notebook, every name stays


def test_class_stub_keeps_fields_and_method_signatures():
    stub = stub_source(CLASS_SOLUTION, "Exercise 3.1")
    ns = _run(stub, {})
    cfg = ns["Config"]()
    assert cfg.chans == 8
    with pytest.raises(NotImplementedError, match=r"write Config\.doubled"):
        cfg.doubled()
    with pytest.raises(NotImplementedError, match=r"write the body of helper"):
        ns["helper"](1)
    assert "def helper(a, b=3):" in stub


def test_a_cell_without_definitions_still_raises():
    with pytest.raises(NotImplementedError, match="Exercise 2.4: not done yet"):
        _run(stub_source("mc.show(torch.zeros(4, 4))\n", "Exercise 2.4"))


@pytest.mark.parametrize("solution", [FFT_SOLUTION, MASK_SOLUTION, CLASS_SOLUTION])
def test_no_line_of_a_solution_body_leaks(solution):
    stub = stub_source(solution, "Exercise 9.9")
    assert leaks(solution, stub) == []
    body_lines = _body_lines(solution)
    assert body_lines, "the test needs body lines"
    stub_lines = {ln.strip() for ln in stub.splitlines()}
    assert not body_lines & stub_lines


def _body_lines(solution: str) -> set[str]:
    """Non-trivial source lines of the solution that belong to bodies (not signatures/docstrings/imports/keep)."""
    tree, lines = ast.parse(solution), solution.splitlines()
    keep = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (
            isinstance(node, ast.stmt) and lines[node.lineno - 1].endswith("# keep")
        ):
            keep.update(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            first = node.body[0]
            end = first.end_lineno if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) else first.lineno - 1
            keep.update(range(min([d.lineno for d in node.decorator_list] + [node.lineno]), end + 1))
        if isinstance(node, ast.AnnAssign) and node.col_offset > 0:
            keep.add(node.lineno)
    out = set()
    for n, line in enumerate(lines, 1):
        text = line.split("#")[0].strip()
        if n not in keep and len(re.findall(r"\w+", text)) >= 3:
            out.add(line.strip())
    return out


def test_leaks_finds_a_copied_expression():
    stub = stub_source(FFT_SOLUTION, "Exercise 1") + "y = torch.fft.fftn(x, dim=dims, norm='ortho')\n"
    assert any("fftn" in piece for piece in leaks(FFT_SOLUTION, stub))


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        new = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(new(source, metadata={"tags": list(tags)}))
    return nb


def _demo_nb():
    return _nb(
        ("md", "# Title", ()),
        ("code", "import torch\nimport mricourse as mc", ()),
        ("md", "### Exercise 4.1: Orthonormal FFT\nWrite it.", ("exercise",)),
        ("code", FFT_SOLUTION, ("solution",)),
        ("code", "mc.check_fft2c(my_fft2c)", ()),
        ("md", "## 9. Exercises\n\n### A mask\nSample 4x.", ("exercise",)),
        ("md", "Hint: the centre.", ()),
        ("code", MASK_SOLUTION, ("solution",)),
        ("code", "mc.check_mask(mask, acceleration=4)", ()),
        ("md", "## Summary", ()),
    )


def test_find_exercises_labels_and_structure():
    exs = find_exercises(_demo_nb(), "04_demo.ipynb")
    assert [(e.label, e.title, e.prompt, e.solutions, e.check) for e in exs] == [
        ("Exercise 4.1", "Orthonormal FFT", 2, [3], 4),
        ("Exercise 4.2", "9. Exercises", 5, [7], 8),
    ]
    nb = _demo_nb()
    nb.cells[5].source = "## 9. Exercises\n\n### Exercise 4.7: A mask\nSample 4x."
    assert find_exercises(nb, "04_demo.ipynb")[1].name == "Exercise 4.7 (A mask)"


@pytest.mark.parametrize(
    "cells, message",
    [
        ((("md", "Exercise", ("exercise",)), ("code", "mc.check_mask(m, 4)", ())), "no code cell tagged 'solution'"),
        ((("md", "Exercise", ("exercise",)), ("code", "x = 1", ("solution",)), ("code", "print(x)", ())), "check cell"),
        ((("code", "x = 1", ("solution",)),), "without an 'exercise' prompt"),
        ((("code", "x = 1", ("exercise",)),), "belongs on a markdown cell"),
    ],
)
def test_malformed_notebooks_are_named(cells, message):
    with pytest.raises(NotebookError, match=message):
        find_exercises(_nb(*cells), "x.ipynb")


def test_student_notebook_replaces_solutions_and_strips_outputs():
    nb = _demo_nb()
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi")]
    student = student_notebook(nb, "04_demo.ipynb")
    assert student.cells[1].outputs == [] and nb.cells[1].outputs  # the source is untouched
    for i in (3, 7):
        assert STUB in student.cells[i].metadata.tags and "solution" not in student.cells[i].metadata.tags
        assert leaks(nb.cells[i].source, student.cells[i].source) == []
    assert "mask = None" in student.cells[7].source and "start = None" not in student.cells[7].source
    assert "Exercise 4.2 (9. Exercises)" in student.cells[7].source


def test_book_view_folds_solutions():
    nb = book_view(_demo_nb())
    cell = nb.cells[3]
    assert "hide-cell" in cell.metadata.tags
    assert cell.metadata.mystnb["code_prompt_show"] == "Show solution"
    assert "hide-cell" not in nb.cells[4].metadata.tags


# ---------------------------------------------------------------- the checks
def _fft_variant(shift_in=True, shift_out=True, norm="ortho", inverse=False, wrong_in=False):
    def f(x):
        dims = (-2, -1)
        if shift_in:
            x = (torch.fft.fftshift if wrong_in else torch.fft.ifftshift)(x, dim=dims)
        x = (torch.fft.ifftn if inverse else torch.fft.fftn)(x, dim=dims, norm=norm)
        return torch.fft.fftshift(x, dim=dims) if shift_out else x

    return f


def test_check_fft2c_passes_the_right_answer(capsys):
    mc.check_fft2c(_fft_variant())
    mc.check_fft2c(mc.fft2c)
    mc.check_fft2c(_fft_variant(inverse=True), inverse=True)
    assert capsys.readouterr().out.count("\N{CHECK MARK}") == 3


@pytest.mark.parametrize(
    "fn, message",
    [
        (_fft_variant(norm=None), r"not orthonormal.*sqrt\(H\*W\).*norm='ortho'"),
        (_fft_variant(shift_out=False), r"DC of a constant .* is at \(0, 0\).*fftshift"),
        (_fft_variant(shift_in=False), r"magnitudes agree but the phase does not"),
        (_fft_variant(wrong_in=True), r"for odd sizes ifftshift and fftshift differ"),
        (lambda x: torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(x), norm="ortho")), r"mixes batch or coil"),
        (lambda x: mc.fft2c(x).abs(), r"expected a complex tensor"),
        (lambda x: mc.ifft2c(x), r"fftn vs ifftn"),
        (lambda x: x.reshape(-1), r"expected shape"),
        (lambda x: 1 / 0, r"raised ZeroDivisionError"),
    ],
)
def test_check_fft2c_names_the_mistake(fn, message):
    with pytest.raises(mc.CheckFailed, match=message):
        mc.check_fft2c(fn)


def test_check_ifft_names_a_missing_shift():
    with pytest.raises(mc.CheckFailed, match="constant image"):
        mc.check_fft2c(_fft_variant(shift_in=False, inverse=True), inverse=True)


def _mask(w=64, acc=4, n=5, centred=True):
    m = torch.zeros(w)
    if centred:
        start = (w - n + 1) // 2
        m[start : start + n] = 1
    else:
        m[: n // 2 + 1], m[w - n // 2 :] = 1, 1
    outside = torch.nonzero(m == 0).flatten()
    m[outside[torch.randperm(len(outside), generator=torch.Generator().manual_seed(0))[: w // acc - int(m.sum())]]] = 1
    return m.reshape(1, 1, 1, w)


def test_check_mask(capsys):
    mc.check_mask(_mask(), acceleration=4, center_fraction=0.08, num_cols=64)
    mc.check_mask(mc.equispaced_mask(128, 4, 0.08, seed=0), acceleration=3.2, center_fraction=0.08, tol=0.1)
    assert "acceleration 4" in capsys.readouterr().out
    with pytest.raises(mc.CheckFailed, match=r"acceleration W / sampled = 64 / 32 = 2, expected 4"):
        mc.check_mask(_mask(acc=2), acceleration=4)
    with pytest.raises(mc.CheckFailed, match=r"shape \(1, 1, 1, W\)"):
        mc.check_mask(_mask().flatten(), acceleration=4)
    with pytest.raises(mc.CheckFailed, match=r"low frequencies sit at the edges"):
        mc.check_mask(_mask(centred=False), acceleration=4, center_fraction=0.08)
    with pytest.raises(mc.CheckFailed, match=r"only 0 \(skipped\) and 1"):
        mc.check_mask(_mask() * 2, acceleration=4)
    with pytest.raises(mc.CheckFailed, match=r"expected W = 128"):
        mc.check_mask(_mask(), acceleration=4, num_cols=128)
    with pytest.raises(NotImplementedError, match="not done yet"):
        mc.check_mask(None, acceleration=4)


def _coil_setup():
    sens = mc.coil_maps(4, (12, 10), seed=0)
    mask = _mask(w=10, acc=2, n=2)
    return sens, mask, mc.MultiCoilMRI(sens, mask)


def test_check_adjoint(capsys):
    sens, mask, op = _coil_setup()
    mc.check_adjoint(op, x_shape=(1, 1, 12, 10))
    mc.check_adjoint(op.A, lambda k: (sens.conj() * mc.ifft2c(mask * k)).sum(1, keepdim=True), x_shape=(1, 1, 12, 10))
    assert capsys.readouterr().out.count("dot-product test") == 2
    wrong = {
        r"adjoint times 2": lambda k: 2 * op.A_adjoint(k),
        r"typical causes": lambda k: (sens * mc.ifft2c(mask * k)).sum(1, keepdim=True),
        r"sum over the coil dim": lambda k: sens.conj() * mc.ifft2c(mask * k),
    }
    for message, adjoint in wrong.items():
        with pytest.raises(mc.CheckFailed, match=message):
            mc.check_adjoint(op.A, adjoint, x_shape=(1, 1, 12, 10))


def test_check_adjoint_of_a_stub_raises_not_implemented():
    _, _, op = _coil_setup()

    def stub(k):
        raise NotImplementedError("Exercise 1.3: write the body of stub()")

    with pytest.raises(NotImplementedError, match="Exercise 1.3"):
        mc.check_adjoint(op.A, stub, x_shape=(1, 1, 12, 10))
    with pytest.raises(NotImplementedError):
        mc.check_adjoint(op.A, None, x_shape=(1, 1, 12, 10))


def test_adjointness_error_accepts_any_operator():
    _, _, op = _coil_setup()
    assert mc.adjointness_error(op, (1, 1, 12, 10), (1, 4, 12, 10)) < 1e-12
    single = mc.physics.SingleCoilMRI(_mask(w=10, acc=2, n=2))
    assert mc.adjointness_error(single, (2, 1, 12, 10), (2, 1, 12, 10)) < 1e-12


def test_check_data_consistency():
    def hard(k, k0, mask):
        return (1 - mask) * k + mask * k0

    def soft(k, k0, mask, v):
        return (1 - mask) * k + mask * (k + v * k0) / (1 + v)

    mc.check_data_consistency(hard)
    mc.check_data_consistency(soft, noise_lvl=0.5)
    with pytest.raises(mc.CheckFailed, match="mask is inverted"):
        mc.check_data_consistency(lambda k, k0, m: m * k + (1 - m) * k0)
    with pytest.raises(mc.CheckFailed, match="they still hold the prediction"):
        mc.check_data_consistency(lambda k, k0, m: k)
    with pytest.raises(mc.CheckFailed, match="unsampled k-space .* must keep the prediction"):
        mc.check_data_consistency(lambda k, k0, m: k0 + 0 * k)
    with pytest.raises(mc.CheckFailed, match=r"must become \(k_pred \+ v k0\)"):
        mc.check_data_consistency(lambda k, k0, m, v: hard(k, k0, m), noise_lvl=0.5)


def test_check_metric():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 16, 16, generator=g) * 3
    pred = gt + 0.1 * torch.randn(2, 16, 16, generator=g)
    mse = ((gt - pred) ** 2).mean()
    mc.check_metric(10 * torch.log10(gt.max() ** 2 / mse), "psnr", gt, pred)
    mc.check_metric(float(((gt - pred) ** 2).sum() / (gt**2).sum()), "nmse", gt, pred)
    mc.check_metric(mc.ssim(gt, pred), "ssim", gt, pred)
    with pytest.raises(mc.CheckFailed, match="data_range = 1 instead of gt.max"):
        mc.check_metric(10 * torch.log10(1 / mse), "psnr", gt, pred)
    with pytest.raises(mc.CheckFailed, match="20 log10 of the MSE"):
        mc.check_metric(20 * torch.log10(gt.max() ** 2 / mse), "psnr", gt, pred)
    with pytest.raises(mc.CheckFailed, match=r"normalised by \|\|pred\|\|"):
        mc.check_metric(float(((gt - pred) ** 2).sum() / (pred**2).sum()), "nmse", gt, pred)
    with pytest.raises(mc.CheckFailed, match="expected one number"):
        mc.check_metric(gt, "psnr", gt, pred)
    with pytest.raises(NotImplementedError):
        mc.check_metric(None, "psnr", gt, pred)
    with pytest.raises(ValueError, match="expected metric"):
        mc.check_metric(1.0, "mae", gt, pred)


def test_check_score(capsys):
    mc.check_score(0.9, "SSIM", at_least=0.85)
    assert "SSIM = 0.9 (>= 0.85)" in capsys.readouterr().out
    with pytest.raises(mc.CheckFailed, match="below the target"):
        mc.check_score(torch.tensor(0.5), "SSIM", at_least=0.85)
    with pytest.raises(mc.CheckFailed, match="diverged"):
        mc.check_score(float("nan"), "loss", at_most=1)


def _grid_sample_warp(align_corners=True, flip=True, sign=1.0):
    def warp(src, flow):
        shape = src.shape[2:]
        grid = mc.spatial.identity_grid(shape) + sign * flow
        scale = torch.tensor([2 / (s - 1) for s in shape]).view(1, -1, *[1] * len(shape))
        grid = (grid * scale - 1).movedim(1, -1)
        return torch.nn.functional.grid_sample(src, grid.flip(-1) if flip else grid, align_corners=align_corners)

    return warp


@pytest.mark.parametrize("dims", [2, 3])
def test_check_warp(dims, capsys):
    mc.check_warp(mc.warp, dims=dims)
    mc.check_warp(_grid_sample_warp(), dims=dims)
    assert capsys.readouterr().out.count("zero flow is the identity") == 2
    with pytest.raises(mc.CheckFailed, match="align_corners=True"):
        mc.check_warp(_grid_sample_warp(align_corners=False), dims=dims)
    with pytest.raises(mc.CheckFailed, match=r"permutes the axes.*flip the last dim"):
        mc.check_warp(_grid_sample_warp(flip=False), dims=dims)
    with pytest.raises(mc.CheckFailed, match="the wrong way"):
        mc.check_warp(_grid_sample_warp(sign=-1.0), dims=dims)
    with pytest.raises(mc.CheckFailed, match=f"along axis 0 moved the image along axis {dims - 1}"):
        mc.check_warp(lambda src, flow: mc.warp(src, flow.flip(1)), dims=dims)  # flow channels in (x, y) order


def test_check_close():
    x = mc.fft2c(torch.randn(1, 1, 6, 6, dtype=torch.complex64))
    mc.check_close(x.clone(), x, "k-space")
    with pytest.raises(mc.CheckFailed, match=r"expected result times 36"):
        mc.check_close(36 * x, x)
    with pytest.raises(mc.CheckFailed, match="transpose"):
        mc.check_close(x.transpose(-1, -2), x)
    with pytest.raises(mc.CheckFailed, match="expected a complex tensor"):
        mc.check_close(x.abs(), x)
    with pytest.raises(mc.CheckFailed, match=r"expected shape \(1, 1, 6, 6\)"):
        mc.check_close(x[0], x)
    with pytest.raises(NotImplementedError):
        mc.check_close(None, x)


# ---------------------------------------------------------------- the notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_exercises_and_stubs(path):
    nb = nbformat.read(path, as_version=4)
    exercises = find_exercises(nb, path.name)
    assert len(exercises) >= 3, f"{path.name}: expected 3 or more exercises, found {len(exercises)}"
    student = student_notebook(nb, path.name)
    for ex in exercises:
        for i in ex.solutions:
            stub = student.cells[i].source
            assert ex.label in stub
            assert leaks(nb.cells[i].source, stub) == [], f"{path.name} cell {i}: the stub of {ex.label} leaks"
            assert not _body_lines(nb.cells[i].source) & {ln.strip() for ln in stub.splitlines()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_colab_cell_and_badge_follow_config(path):
    nb = nbformat.read(path, as_version=4)
    problems = colab_problems(nb, path)
    assert not problems, (
        f"{path.name}: {problems}; fix with `python -m mricourse.course.exercises sync-colab {path.relative_to(ROOT)}`"
    )


def test_sync_colab_writes_the_configured_cell_and_badge(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/someone/course\n  branch: dev\n")
    (tmp_path / "notebooks").mkdir()
    path = tmp_path / "notebooks" / "05_x.ipynb"
    nb = _nb(
        (
            "md",
            "# T\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            "(https://colab.research.google.com/github/old/repo/blob/master/notebooks/05_x.ipynb)",
            (),
        ),
        ("code", "import sys\nif 'google.colab' in sys.modules:\n    %pip install -q mricourse", ()),
        ("code", "import mricourse as mc", ()),
    )
    nbformat.write(nb, path)
    assert main(["sync-colab", "--check", str(path)]) == 1
    assert main(["sync-colab", str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    assert colab_problems(nb, path) == []
    assert '"mricourse @ git+https://github.com/someone/course@dev"' in nb.cells[1].source
    assert "remove-cell" in nb.cells[1].metadata.tags
    assert "https://colab.research.google.com/github/someone/course/blob/dev/notebooks/05_x.ipynb" in nb.cells[0].source
    assert not sync_colab(nb, path)  # idempotent


def test_the_repository_is_configured_in_one_place():
    url, branch = repository(ROOT)
    assert (url, branch) == ("https://github.com/mricourse/mricourse", "main")
    assert colab_url(url, branch, "notebooks/01_mri_physics.ipynb").endswith(
        "/mricourse/mricourse/blob/main/notebooks/01_mri_physics.ipynb"
    )
    assert (
        setup_cell(url, branch).splitlines()[0]
        == "# Colab only: install the course package (it never downgrades Colab's libraries)."
    )


def test_cli_student_and_instructor(tmp_path, capsys):
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(_demo_nb(), src / "04_demo.ipynb")
    assert main(["student", str(src), "--out", str(tmp_path / "student")]) == 0
    assert main(["instructor", str(src), "--out", str(tmp_path / "instructor")]) == 0
    student = nbformat.read(tmp_path / "student" / "04_demo.ipynb", as_version=4)
    instructor = nbformat.read(tmp_path / "instructor" / "04_demo.ipynb", as_version=4)
    assert "raise NotImplementedError" in student.cells[3].source
    assert instructor.cells[3].source == FFT_SOLUTION
    assert "2 exercises" in capsys.readouterr().out


def test_grade_restores_the_checks_and_names_each_outcome(tmp_path):
    dc = "def dc(k, k0, mask):\n    return (1 - mask) * k + mask * k0\n"
    source = _nb(
        ("code", "import torch\nimport mricourse as mc", ()),
        ("md", "### Exercise 7.1: Data consistency", ("exercise",)),
        ("code", dc, ("solution",)),
        ("code", "mc.check_data_consistency(dc)", ()),
        ("md", "### Exercise 7.2: FFT", ("exercise",)),
        ("code", FFT_SOLUTION, ("solution",)),
        ("code", "mc.check_fft2c(my_fft2c)", ()),
        ("md", "### Exercise 7.3: Mask", ("exercise",)),
        ("code", MASK_SOLUTION.replace("mc.show(mask[0, 0])\n", ""), ("solution",)),
        ("code", "mc.check_mask(mask, acceleration=4)", ()),
    )
    (tmp_path / "ref").mkdir()
    nbformat.write(source, tmp_path / "ref" / "07_x.ipynb")
    submission = student_notebook(source, "07_x.ipynb")
    submission.cells[2].source = dc  # right
    submission.cells.insert(3, nbformat.v4.new_code_cell("print('trying')"))  # a scratch cell of the student's
    submission.cells[6].source = "def my_fft2c(x):\n    return torch.fft.fftn(x, dim=(-2, -1), norm='ortho')\n"  # wrong
    submission.cells[7].source = "print('looks fine')"  # an edited check: restored from the reference
    path = tmp_path / "07_x.ipynb"
    nbformat.write(submission, path)
    rows = grade(path, tmp_path / "ref" / "07_x.ipynb", timeout=120)
    assert [r[:2] for r in rows] == [("Exercise 7.1", "passed"), ("Exercise 7.2", "wrong"), ("Exercise 7.3", "not done")]
    assert "CheckFailed" in rows[1][2] and "Exercise 7.3" in rows[2][2]


def test_check_weighting(capsys):
    mc.check_weighting(4000, 100, "T2w")
    mc.check_weighting(500, 15, "T1w")
    mc.check_weighting(3000, 15, "PDw")  # CSF has not fully recovered: only GM > WM is asked
    assert capsys.readouterr().out.count("\N{CHECK MARK}") == 3
    with pytest.raises(mc.CheckFailed, match=r"TR = 500 ms is short.*\n.*TE = 15 ms is short.*\n.*WM > GM > CSF"):
        mc.check_weighting(500, 15, "T2w")
    with pytest.raises(mc.CheckFailed, match="TE = 100 ms is long: the T2 decay now dominates"):
        mc.check_weighting(500, 100, "T1w")
    with pytest.raises(mc.CheckFailed, match="0 < TE < TR"):
        mc.check_weighting(50, 100, "T1w")
    with pytest.raises(mc.CheckFailed, match="two numbers"):
        mc.check_weighting("long", 100, "T2w")
    with pytest.raises(NotImplementedError):
        mc.check_weighting(None, 100, "T2w")
    with pytest.raises(ValueError, match="expected weighting"):
        mc.check_weighting(4000, 100, "FLAIR")
    mc.check_weighting(6000, 120, "T2w", field=3.0)


def test_headless_runs_build_no_widgets(monkeypatch, tmp_path):
    """Notebooks run by the course's runner see MRICOURSE_HEADLESS (no widget explorers), over IPC."""
    import nbformat

    from mricourse.course.notebooks import execute_notebook

    monkeypatch.delenv("MRICOURSE_HEADLESS", raising=False)
    assert mc.interactive_session()
    monkeypatch.setenv("MRICOURSE_HEADLESS", "1")
    assert not mc.interactive_session()
    monkeypatch.delenv("MRICOURSE_HEADLESS")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; print(os.environ.get('MRICOURSE_HEADLESS'))")])
    execute_notebook(nb, tmp_path, timeout=60)
    assert nb.cells[0].outputs[0]["text"].strip() == "1"


def test_check_close_takes_a_number_and_none_means_not_done():
    mc.check_close(31.5, 31.5, "a PSNR")
    with pytest.raises(mc.CheckFailed, match="a PSNR"):
        mc.check_close(30.0, 31.5, "a PSNR")
    with pytest.raises(NotImplementedError):
        mc.check_close(None, 31.5, "a PSNR")
