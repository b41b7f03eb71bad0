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
    hist = mc.fit(
        mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss),
        _problem(),
        mc.training.fit.TrainConfig(steps=300, progress=False),
    )
    assert hist["loss"][-1] < 1e-3 * hist["loss"][0]
    assert hist["step"][-1] == 300


def test_fit_resumes_from_checkpoint(tmp_path):
    ckpt = tmp_path / "run.pt"

    def run(steps, model, opt):
        return mc.fit(
            mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss),
            _problem(),
            mc.training.fit.TrainConfig(steps=steps, checkpoint=str(ckpt), checkpoint_every=10, progress=False),
            state={"model": model, "opt": opt},
        )

    torch.manual_seed(0)
    ref = nn.Linear(4, 1)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    mc.fit(
        mc.training.fit.supervised_step(ref, ref_opt, nn.functional.mse_loss),
        _problem(),
        mc.training.fit.TrainConfig(steps=40, progress=False),
    )

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


def test_time_budget_is_a_safety_stop_that_says_so():
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.warns(UserWarning, match="safety stop fired"):
        hist = mc.fit(
            mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss),
            _problem(),
            mc.training.fit.TrainConfig(steps=1000, time_budget=1e-9, progress=False),
        )
    assert hist.steps_done == 1 and hist.steps == 1000
    assert hist.stopped.startswith("time budget: stopped at 1 of 1000 steps")
    quiet = mc.fit(
        mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss),
        _problem(),
        mc.training.fit.TrainConfig(steps=3, progress=False),
    )
    assert quiet.stopped is None and quiet.steps_done == 3


def test_checkpoint_stores_config_and_loads_weights_only(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        chans: int = 3

    model = nn.Linear(2, 2)
    mc.training.fit.save_checkpoint(tmp_path / "c.pt", {"model": model}, step=5, config=Cfg())
    other = nn.Linear(2, 2)
    payload = mc.load_checkpoint(tmp_path / "c.pt", {"model": other})
    assert payload["config"] == {"chans": 3}
    assert torch.equal(other.weight, model.weight)
    with pytest.raises(FileNotFoundError):
        mc.load_checkpoint(tmp_path / "missing.pt")


def test_log_lines_for_batch_jobs(capsys):
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    cfg = mc.training.fit.TrainConfig(steps=4, log_every=2, progress=False, log_lines=True)
    mc.fit(mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss), _problem(), cfg)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[-1].startswith("step 4/4") and "loss" in lines[-1]


def test_scheduled_steps_the_schedule_after_each_step():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    schedule = mc.OneCycleSchedule(opt, 1.0, steps=4, warmup=0.0, final=0.0)
    calls = []
    step = mc.training.schedules.scheduled(lambda batch: calls.append(opt.param_groups[0]["lr"]) or {"loss": 0.0}, schedule)
    for _ in range(4):
        assert step(None) == {"loss": 0.0}
    assert calls[0] == 1.0 and calls[1] < 1.0  # the rate changed between the first and the second step
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # annealed after the last one


def _scheduled_run(steps, ckpt, total=40, config=None):
    """A run of ``total`` planned steps with a one-cycle schedule, stopped after ``steps``."""
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    schedule = mc.OneCycleSchedule(opt, 0.05, total)
    step = mc.training.schedules.scheduled(mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss), schedule)

    class Stop(Exception):
        pass

    def stopping(batch):  # a run killed after ``steps`` steps (the checkpoint every step)
        if schedule.count == steps:
            raise Stop
        return step(batch)

    cfg = mc.training.fit.TrainConfig(steps=total, checkpoint=str(ckpt) if ckpt else None, checkpoint_every=1, progress=False)
    try:
        mc.fit(stopping, _problem(), cfg, state={"model": model, "opt": opt, "schedule": schedule}, config=config)
    except Stop:
        pass
    return model, opt, schedule


def test_a_scheduled_run_resumes_exactly(tmp_path):
    """N steps == N/2 steps, a new process resumed from the checkpoint, N/2 more: the weights and
    the learning rate are bit-identical (the schedule is in the checkpoint)."""
    ref, ref_opt, ref_schedule = _scheduled_run(40, None)
    _scheduled_run(20, tmp_path / "run.pt")  # stopped half way
    half = mc.load_checkpoint(tmp_path / "run.pt")
    assert half["step"] == 20 and half["state"]["schedule"]["count"] == 20
    model, opt, schedule = _scheduled_run(40, tmp_path / "run.pt")  # resumed
    assert schedule.count == ref_schedule.count == 40
    assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"]
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)


def test_schedules_are_functions_of_the_step():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    s = mc.OneCycleSchedule(opt, 0.1, 10, warmup=0.0, final=0.0)
    lrs = [s.lr]
    for _ in range(10):
        s.step()
        lrs.append(s.lr)
    assert lrs == [s.lr_at(i) for i in range(11)] and lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.0)
    restored = mc.OneCycleSchedule(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), 0.1, 10, warmup=0.0, final=0.0)
    restored.load_state_dict({"count": 4, "steps": 10})
    assert restored.lr == lrs[4]
    with pytest.raises(ValueError, match="spans 10 steps, this one 20"):
        mc.OneCycleSchedule(opt, 0.1, 20).load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="steps"):
        mc.training.schedules.ConstantSchedule(opt, 0.1, 0)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    _scheduled_run(5, tmp_path / "run.pt", config={"width": 4, "lr": 0.05})
    with pytest.raises(ValueError, match=r"another config \(lr: 0.05 there, 0.5 here\).*--fresh"):
        _scheduled_run(10, tmp_path / "run.pt", config={"width": 4, "lr": 0.5})


def test_a_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    ckpt = tmp_path / "run.pt"
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    cfg = mc.training.fit.TrainConfig(steps=4, checkpoint=str(ckpt), checkpoint_every=1, progress=False)
    mc.fit(mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss), _problem(), cfg, state={"model": model})
    good = ckpt.read_bytes()
    for g in opt.param_groups:
        g["lr"] = float("nan")
    cfg.steps = 8
    # step 5's loss is still finite, its update is not: its weights are refused
    with pytest.raises(
        mc.training.fit.NonFiniteLoss, match=r"step 5: the weights of 'model' are not finite .*is kept\); lower the learning rate"
    ):
        mc.fit(mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss), _problem(), cfg, state={"model": model})
    assert ckpt.read_bytes() == good  # untouched: still the weights of step 4
    cfg.checkpoint_every = 0  # no checkpoint along the way: the NaN loss of step 6 stops the run
    with pytest.raises(
        mc.training.fit.NonFiniteLoss, match=r"step 6: the loss 'loss' is nan .*is kept\); lower the learning rate"
    ):
        mc.fit(mc.training.fit.supervised_step(model, opt, nn.functional.mse_loss), _problem(), cfg, state={"model": model})
    assert ckpt.read_bytes() == good


def test_step_timer_splits_a_step_and_leaves_no_hooks():
    """fit's StepTimer: the forward pass (module hooks), the optimiser (step hooks), the data and
    the rest, measured over every step; its hooks are removed when the run ends."""
    import time as _time

    from mricourse.training.fit import TrainConfig, fit

    net = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    class SlowData:
        def __iter__(self):
            while True:
                _time.sleep(0.01)
                yield torch.randn(8, 4)

    def step(x):
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    h = fit(step, SlowData(), TrainConfig(steps=5, progress=False), {"model": net, "opt": opt})
    t = h.timing
    assert t["steps"] == 5 and t["steps_per_s"] > 0 and abs(sum(t["split"].values()) - 1) < 1e-9
    assert t["split"]["data"] > 0.5  # 10 ms of sleep a batch against microseconds of work
    assert t["split"]["forward"] > 0 and t["split"]["optimiser"] > 0
    assert not net._forward_hooks and not net._forward_pre_hooks and not opt._optimizer_step_pre_hooks
