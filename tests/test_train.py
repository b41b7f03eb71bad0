import json

import pytest
import torch
from torch import nn

import mricourse as mc


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, generator=g)
    y = x @ torch.randn(4, 1, generator=g)
    return [(x, y)]


def test_fit_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    hist = mc.fit(mc.supervised_step(model, opt, nn.functional.mse_loss), _problem(), mc.TrainConfig(steps=300, progress=False))
    assert hist["loss"][-1] < 1e-3 * hist["loss"][0]
    assert hist["step"][-1] == 300


def test_fit_resumes_from_checkpoint(tmp_path):
    ckpt = tmp_path / "run.pt"

    def run(steps, model, opt):
        return mc.fit(
            mc.supervised_step(model, opt, nn.functional.mse_loss),
            _problem(),
            mc.TrainConfig(steps=steps, checkpoint=str(ckpt), checkpoint_every=10, progress=False),
            state={"model": model, "opt": opt},
        )

    torch.manual_seed(0)
    ref = nn.Linear(4, 1)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    mc.fit(mc.supervised_step(ref, ref_opt, nn.functional.mse_loss), _problem(), mc.TrainConfig(steps=40, progress=False))

    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    run(20, model, opt)
    # a new process: fresh objects, resumed from the file
    model2 = nn.Linear(4, 1)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.01)
    hist = run(40, model2, opt2)
    assert hist["step"][-1] == 40 and hist["step"][0] == 10
    for p, q in zip(model2.parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    payload = mc.load_checkpoint(ckpt)
    assert payload["step"] == 40


def test_time_budget_stops_training():
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    hist = mc.fit(
        mc.supervised_step(model, opt, nn.functional.mse_loss),
        _problem(),
        mc.TrainConfig(steps=10**7, time_budget=0.2, progress=False),
    )
    assert hist["step"][-1] < 10**7


def test_checkpoint_stores_config_and_loads_weights_only(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        chans: int = 3

    model = nn.Linear(2, 2)
    mc.save_checkpoint(tmp_path / "c.pt", {"model": model}, step=5, config=Cfg())
    other = nn.Linear(2, 2)
    payload = mc.load_checkpoint(tmp_path / "c.pt", {"model": other})
    assert payload["config"] == {"chans": 3}
    assert torch.equal(other.weight, model.weight)
    with pytest.raises(FileNotFoundError):
        mc.load_checkpoint(tmp_path / "missing.pt")


def test_profile_and_results(tmp_path, monkeypatch):
    monkeypatch.setenv("MRICOURSE_PROFILE", "smoke")
    assert mc.profile().name == "smoke"
    assert mc.profile().pick(smoke=1, cpu=2, gpu=3) == 1
    monkeypatch.setenv("MRICOURSE_PROFILE", "huge")
    with pytest.raises(ValueError, match="expected one of smoke, cpu, gpu"):
        mc.profile()
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


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with mc.atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_log_lines_for_batch_jobs(capsys):
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    cfg = mc.TrainConfig(steps=4, log_every=2, progress=False, log_lines=True)
    mc.fit(mc.supervised_step(model, opt, nn.functional.mse_loss), _problem(), cfg)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[-1].startswith("step 4/4") and "loss" in lines[-1]


def test_scheduled_steps_the_schedule_after_each_step():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    schedule = mc.OneCycleSchedule(opt, 1.0, steps=4, warmup=0.0, final=0.0)
    calls = []
    step = mc.scheduled(lambda batch: calls.append(opt.param_groups[0]["lr"]) or {"loss": 0.0}, schedule)
    for _ in range(4):
        assert step(None) == {"loss": 0.0}
    assert calls[0] == 1.0 and calls[1] < 1.0  # the rate changed between the first and the second step
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # annealed after the last one
