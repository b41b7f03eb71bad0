"""Weight averaging (EMA): the arithmetic, the swap after training, and an exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import mricourse as mc
from mricourse.training.averaging import WeightAverage
from mricourse.training.cli import main
from mricourse.training.recipes import recipe

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_average_follows_its_formula_with_the_warm_up():
    net = nn.Linear(2, 1)
    avg = WeightAverage(net, decay=0.9)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    d = avg.rate()
    assert d == pytest.approx(2 / 11)  # (1 + n) / (10 + n) for the first update
    avg.update(net)
    assert torch.allclose(avg.average.weight, d * start + (1 - d) * net.weight)
    for _ in range(200):
        avg.update(net)
    assert avg.rate() == 0.9 and torch.allclose(avg.average.weight, net.weight, atol=1e-6)
    assert not any(p.requires_grad for p in avg.average.parameters())


def test_a_decay_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="decay in"):
        WeightAverage(nn.Linear(2, 1), decay=1.0)


def test_after_fit_the_recipe_holds_the_averaged_weights_and_resumes_with_the_training_ones():
    r = recipe("toy", "smoke", overrides={"average": "0.8"}, seed=1)
    raw = recipe("toy", "smoke", seed=1)  # the same run without an average
    r.fit(progress=False)
    raw.fit(progress=False)
    assert r.averaged and "weight averages model (decay 0.8)" in str(r)
    trained = r.averages["model"].average.state_dict()  # the training weights wait in the average
    assert all(torch.equal(trained[k], v) for k, v in raw.model.state_dict().items())
    assert not torch.equal(r.model.net[0].weight, raw.model.net[0].weight)
    r.use_averages(False)
    assert torch.equal(r.model.net[0].weight, raw.model.net[0].weight)
    r.use_averages(True)
    x, y = r.val_set.tensors
    with torch.no_grad():
        assert torch.isfinite(r.model(x)).all()


def test_a_paused_run_with_an_average_resumes_exactly(tmp_path):
    base = ["train", "toy", "--profile", "smoke", "--config", "average=0.9", "--checkpoint-every", "1"]
    assert main([*base, "--out", str(tmp_path / "whole")]) == 0
    assert main([*base, "--out", str(tmp_path / "paused"), "--stop-after", "7"]) == 0
    assert main([*base, "--out", str(tmp_path / "paused")]) == 0
    whole, paused = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "paused"))
    assert paused["weights_sha256"] == whole["weights_sha256"]
    state = mc.load_checkpoint(tmp_path / "paused" / "checkpoint.pt")["state"]
    assert int(state["average_model"]["updates"]) == paused["steps"] == 20
    chapter = recipe("toy", "smoke", overrides={"average": "0.9"})
    chapter.fit(progress=False)
    assert chapter.weights_hash() == whole["weights_sha256"]  # the averaged weights, as the chapter has them
