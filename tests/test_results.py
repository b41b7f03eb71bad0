"""The chapters' results files and first lines (mricourse.course.results)."""

import json

import pytest
import torch

import mricourse as mc


def test_a_results_file_records_metrics_timings_and_the_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("MRICOURSE_PROFILE", "cpu")
    monkeypatch.setenv("MRICOURSE_RESULTS", str(tmp_path))
    sw = mc.Stopwatch()
    with sw("training"):
        pass
    path = mc.save_results("99_test", {"model": {"psnr": torch.tensor(30.5)}}, sw.times, headline={"metric": "psnr"})
    rec = json.loads(path.read_text())
    assert rec["profile"] == "cpu" and rec["metrics"]["model"]["psnr"] == 30.5
    assert "training" in rec["timings"] and rec["environment"]["cores"] >= 1
    assert mc.load_results(tmp_path)["99_test"]["chapter"] == "99_test"
    with pytest.raises(ValueError, match="non-empty"):
        mc.save_results("x", {})


def test_start_chapter_gives_profile_device_and_stopwatch_and_seeds(monkeypatch, capsys):
    monkeypatch.setenv("MRICOURSE_PROFILE", "smoke")
    P, device, sw = mc.start_chapter(seed=3)
    first = torch.rand(3)
    assert P.name == "smoke" and isinstance(device, torch.device) and sw.times == {}
    assert "profile: smoke" in capsys.readouterr().out
    mc.start_chapter(seed=3)
    assert torch.equal(torch.rand(3), first)
    mc.start_chapter(seed=None)  # no seeding: the stream goes on
    assert not torch.equal(torch.rand(3), first)
