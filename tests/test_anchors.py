"""The side-by-side runs against the reference implementations (mricourse.course.anchors) and their place
in the benchmark: tiny configurations, checking the records' structure and that the comparisons
are fair (same weights give the same losses; same data and loss give the same starting loss)."""

import json
import math

import pytest
import torch

import mricourse as mc
from mricourse.course import anchors, bench
from mricourse.course.report import anchors_table, render_anchors
from mricourse.course.results import load_anchors

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _check_record(record, metrics):
    assert record["status"] == "ok" and record["reference"].split()[0] in ("fastmri", "voxelmorph")
    assert set(metrics) <= set(record["metrics"]), record["metrics"].keys()
    for name, v in record["metrics"].items():
        assert set(v) == {"ours", "reference"}, name
        assert all(isinstance(x, (int, float)) and math.isfinite(x) for x in v.values()), (name, v)
    assert record["setting"]


def test_varnet_vs_fastmri_same_weights_same_training():
    pytest.importorskip("fastmri.models", reason="fastmri (the reference implementation) is not installed")
    from mricourse.models.varnet import VarNetConfig

    r = anchors.varnet_vs_fastmri(cfg=VarNetConfig.smoke(), steps=3, n_train=1, n_test=1, warmup=1, profile="smoke", device="cpu")
    _check_record(
        r, ["training step (s, median)", "SSIM, held-out, after 3 steps", "first-step loss (same weights)", "parameters"]
    )
    m = r["metrics"]
    assert m["parameters"]["ours"] == m["parameters"]["reference"]
    # identical weights and batches: the same loss at the first step, and (Adam on the same
    # gradients up to float rounding) the same trajectory and held-out SSIM after it
    assert m["first-step loss (same weights)"]["ours"] == pytest.approx(
        m["first-step loss (same weights)"]["reference"], abs=1e-5
    )
    assert r["losses"]["ours"] == pytest.approx(r["losses"]["reference"], abs=5e-3)  # Adam amplifies rounding
    ssim = m["SSIM, held-out, after 3 steps"]
    assert 0 < ssim["ours"] < 1 and ssim["ours"] == pytest.approx(ssim["reference"], abs=1e-3)


def test_voxelmorph_vs_package_same_data_same_loss():
    pytest.importorskip("voxelmorph", reason="the voxelmorph package (the reference implementation) is not installed")
    cfg = mc.VoxelMorphConfig.smoke()
    r = anchors.voxelmorph_vs_package(
        cfg, steps=3, batch_size=1, n_train=2, n_test=1, size=32, warmup=1, profile="smoke", device="cpu"
    )
    _check_record(
        r, ["Dice, held-out, after 3 steps", "training step (s, median)", "inference per pair (s, median)", "first-step loss"]
    )
    m = r["metrics"]
    # both start near the identity (flow layers initialised with std 1e-5), so on the same pair with
    # the same loss their first losses agree: the comparison is on equal terms
    assert m["first-step loss"]["ours"] == pytest.approx(m["first-step loss"]["reference"], rel=1e-3)
    assert all(0 < d <= 1 for d in m["Dice, held-out, after 3 steps"].values())
    assert len(r["losses"]["ours"]) == len(r["losses"]["reference"]) == 3


def test_package_adapters_speak_our_interfaces():
    """The reference models behind our models' interfaces, as the shared training steps expect."""
    vxm = pytest.importorskip("voxelmorph")  # noqa: F841
    cfg = mc.VoxelMorphConfig.smoke()
    net = anchors.VxmPackage(cfg)
    out = net(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))
    assert (
        isinstance(out, mc.models.voxelmorph.VxmOutput)
        and out.warped.shape == (2, 1, 32, 32)
        and out.flow.shape == (2, 2, 32, 32)
    )
    assert out.flow.abs().max() < 1e-2  # near the identity, like ours
    with pytest.raises(ValueError, match="multiple of 16"):
        anchors.voxelmorph_vs_package(cfg, steps=3, size=40, profile="smoke")


def _fake_record(name, **metrics):
    return {"name": name, "reference": "pkg 1.0", "status": "ok", "setting": "tiny", "metrics": metrics}


def test_run_anchors_reports_missing_packages_and_failures(monkeypatch):
    real_find_spec = anchors.importlib.util.find_spec
    monkeypatch.setattr(anchors.importlib.util, "find_spec", lambda n: None if n == "fastmri" else real_find_spec(n))

    def broken(**kw):
        raise RuntimeError("boom")

    monkeypatch.setitem(anchors._FUNCTIONS, "voxelmorph", broken)
    rec = anchors.run_anchors("smoke")
    assert rec["profile"] == "smoke" and "environment" in rec and rec["wall_s"] >= 0
    assert rec["anchors"]["varnet"]["status"] == "not installed"
    assert rec["anchors"]["voxelmorph"]["status"] == "failed: RuntimeError: boom"
    rows = anchors_table(rec).rows
    assert rows[0][:2] == ["VarNet vs fastmri.models.VarNet", "not installed: fastmri"]
    assert rows[1][1].startswith("failed: RuntimeError: boom")

    def without_course_code(**kw):
        raise ImportError(
            "cannot import name 'VarNet' from 'mricourse.models' (/x/mricourse/models/__init__.py)", name="mricourse.models"
        )

    monkeypatch.setitem(anchors._FUNCTIONS, "voxelmorph", without_course_code)
    status = anchors.run_anchors("smoke", only="voxelmorph")["anchors"]["voxelmorph"]["status"]
    assert status == "not available in this checkout: cannot import name 'VarNet' from 'mricourse.models'"
    with pytest.raises(ValueError, match="unknown anchors"):
        anchors.run_anchors("smoke", only="unet")


def test_anchors_table_ratios_are_ours_over_reference():
    rec = {
        "profile": "cpu",
        "anchors": {
            "varnet": _fake_record(
                "A vs B", **{"step (s)": {"ours": 0.5, "reference": 2.0}, "folding (%)": {"ours": 0.0, "reference": 0.0}}
            ),
        },
    }
    t = anchors_table(rec)
    assert t.header[-1] == "ours / reference"
    assert t.rows[0] == ["A vs B (pkg 1.0)", "step (s)", 0.5, 2.0, 0.25]
    assert t.rows[1][-1] == ""  # no ratio to a zero
    md = render_anchors(rec)
    assert "## Anchors" in md and "**ours / reference**" in md and "| A vs B (pkg 1.0) | step (s) | 0.5 | 2 | 0.25 |" in md


def test_bench_writes_the_anchors_section_and_goes_on_after_a_failure(tmp_path, monkeypatch):
    """Chapters and comparisons are stubbed: the test checks the wiring, not the numbers."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "res"

    def fake_notebook(path, env, executed=None):
        monkeypatch.setenv("MRICOURSE_RESULTS", env["MRICOURSE_RESULTS"])
        mc.save_results(path.stem, {"model": {"dice": 0.8}, "baseline": {"dice": 0.7}}, {"training": 1.0})
        return 1.5

    fake = {
        "profile": "smoke",
        "date": "today",
        "environment": {},
        "wall_s": 2.0,
        "anchors": {
            "varnet": {**_fake_record("V vs F", **{"step (s)": {"ours": 1.0, "reference": 4.0}}), "wall_s": 1.0},
            "voxelmorph": {"name": "X vs Y", "reference": "voxelmorph", "status": "failed: RuntimeError: boom", "wall_s": 1.0},
        },
    }
    monkeypatch.setattr(bench, "run_notebook", fake_notebook)
    monkeypatch.setattr(bench, "run_anchors", lambda profile, env: fake)
    nb = tmp_path / "01_demo.ipynb"
    nb.write_text("{}")
    with pytest.raises(SystemExit):  # a failed comparison makes the run fail, after writing everything
        bench.main([str(nb), "--profile", "smoke", "--results", str(results), "--out", str(tmp_path), "--anchors"])
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["anchors"]["anchors"]["varnet"]["metrics"]["step (s)"]["reference"] == 4.0
    assert record["failed"] == {"anchors/voxelmorph": "failed: RuntimeError: boom"}
    assert "01_demo" in record["chapters"] and record["total_wall_s"] == 1.5 and record["bench_wall_s"] > 0
    md = (tmp_path / "results.md").read_text()
    assert "## Anchors" in md and "| V vs F (pkg 1.0) | step (s) | 1 | 4 | 0.25 |" in md and "anchors/voxelmorph" in md
    assert load_anchors(results)["anchors"]["varnet"]["status"] == "ok"  # for the book's page
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    mc.report.results_page(results)
    # prose as Markdown, tables as HTML tables (the book renders Markdown outputs without tables)
    text = "\n".join(o.data for o in shown if not isinstance(o, mc.Table))
    tables = [o for o in shown if isinstance(o, mc.Table)]
    assert "### 01_demo" in text and "|" not in text.replace("\\|", "")
    assert [t.caption for t in tables] == ["Summary", "01_demo", "Anchors"]
    assert "<td" in tables[-1]._repr_html_() and ["V vs F (pkg 1.0)", "step (s)", 1, 4, 0.25] in tables[-1].rows

    # --no-anchors, or named notebooks without --anchors: no comparisons, and no failure
    monkeypatch.setattr(bench, "run_anchors", lambda profile, env: pytest.fail("the anchors ran"))
    for flag in (["--no-anchors"], []):
        bench.main([str(nb), "--profile", "smoke", "--results", str(results), "--out", str(tmp_path), *flag])
        assert json.loads((tmp_path / "results.json").read_text())["anchors"] is None
    (tmp_path / "notebooks").mkdir()  # all notebooks (none here): the comparisons run unless --no-anchors
    monkeypatch.setattr(bench, "run_anchors", lambda profile, env: {**fake, "anchors": {"varnet": fake["anchors"]["varnet"]}})
    bench.main(["--profile", "smoke", "--results", str(results), "--out", str(tmp_path)])
    assert json.loads((tmp_path / "results.json").read_text())["anchors"]["anchors"]["varnet"]["status"] == "ok"


def test_bench_runs_the_anchors_in_a_fresh_process(monkeypatch):
    """The comparisons run as ``python -m mricourse.course.anchors`` with the kernels' environment; a
    process that dies leaves a record in which every comparison failed."""
    calls = []

    def fake_run(cmd, env, timeout):
        calls.append((cmd, env))
        out = cmd[cmd.index("--json") + 1]
        if env.get("FAIL") != "1":
            with open(out, "w") as f:
                json.dump({"profile": "smoke", "wall_s": 1.0, "anchors": {"varnet": _fake_record("V vs F")}}, f)
        return type("Done", (), {"returncode": 0 if env.get("FAIL") != "1" else 1})()

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    rec = bench.run_anchors("smoke", {"OMP_WAIT_POLICY": "PASSIVE"})
    cmd, env = calls[0]
    assert cmd[1:5] == ["-m", "mricourse.course.anchors", "--profile", "smoke"] and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert rec["anchors"]["varnet"]["status"] == "ok"
    rec = bench.run_anchors("smoke", {"FAIL": "1"})
    assert set(rec["anchors"]) == set(anchors.ANCHORS)
    assert all(a["status"] == "failed: python -m mricourse.course.anchors exited with status 1" for a in rec["anchors"].values())
