"""mricourse.course.bench.run_notebook: wall time, and the executed notebook kept on request."""

import nbformat
import pytest

from mricourse.course import bench


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, str(path))
    return path


def test_run_notebook_keeps_the_executed_notebook(tmp_path):
    nb = _notebook(tmp_path / "01_demo.ipynb", "print(6 * 7)")
    wall = bench.run_notebook(nb, {}, timeout=120, executed=tmp_path / "executed")
    out = nbformat.read(str(tmp_path / "executed" / "01_demo.ipynb"), as_version=4)
    assert wall > 0 and out.cells[0].outputs[0]["text"].strip() == "42"
    assert nbformat.read(str(nb), as_version=4).cells[0].outputs == []  # the source notebook is left as it was


def test_run_notebook_keeps_a_failed_notebook_with_its_error(tmp_path):
    nb = _notebook(tmp_path / "02_fails.ipynb", "x = 1", "raise ValueError('bad input')", "x = 2")
    with pytest.raises(Exception, match="bad input"):
        bench.run_notebook(nb, {}, timeout=120, executed=tmp_path / "executed")
    out = nbformat.read(str(tmp_path / "executed" / "02_fails.ipynb"), as_version=4)
    assert out.cells[1].outputs[0]["ename"] == "ValueError" and out.cells[2].outputs == []
    assert not list((tmp_path / "executed").glob(".*tmp"))  # nothing half-written left beside it


@pytest.mark.parametrize("policy", [None, "PASSIVE"])
def test_bench_runs_the_chapters_with_the_environments_openmp_waiting(tmp_path, monkeypatch, policy):
    # idle cores, as a reader's Jupyter: the bench sets no wait policy of its own, and passes one on
    seen = {}

    def fake_run(path, env, timeout=1800, executed=None):
        seen.update(env)
        return 1.0

    if policy is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    monkeypatch.setattr(bench, "run_notebook", fake_run)
    monkeypatch.setattr(bench, "load_results", lambda folder: {})
    bench.main([str(tmp_path / "01_demo.ipynb"), "--profile", "smoke", "--results", str(tmp_path / "r"), "--out", str(tmp_path), "--no-anchors"])
    assert "OMP_WAIT_POLICY" not in seen and seen["MRICOURSE_PROFILE"] == "smoke"
    assert (tmp_path / "results.md").exists()
