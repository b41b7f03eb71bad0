"""One recipe per model: the chapter's path (``mc.recipe(name).fit()``) and the command line
(``mricourse train name``) train the same weights, bit for bit, from the same seed; resuming a
run folder with another config is refused; the update steps have one shape."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import mricourse as mc
from mricourse.training.cli import main
from mricourse.training.recipes import RECIPES, recipe

pytestmark = pytest.mark.usefixtures("one_thread")

#: the data folder of each recipe in the tiny data sets (None: the recipe makes no data)
DATA = {
    "toy": None,
    "varnet": "fastmri",
    "cascade": "cine",
    "cyclegan": "slices",
    "unet_t1t2": "slices",
    "voxelmorph": "slices",
    "vox2vox": "brats",
    "unet3d_brats": "brats",
    "dcgan": "slices",
    "dae": "slices",
    "msfusion": "slices",
    "srgan": "ixi",
}


def _data(name, tiny_data):
    key = DATA[name]
    return None if key is None else tiny_data[key]


def test_every_recipe_has_tiny_data():
    assert set(RECIPES) <= set(DATA), f"add the tiny data of {sorted(set(RECIPES) - set(DATA))} to DATA"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_chapter_and_the_command_line_train_the_same_weights(name, tiny_data, tmp_path, capsys):
    data = _data(name, tiny_data)
    r = recipe(name, "smoke", data=data, seed=3)
    history = r.fit(progress=False)
    assert history.steps_done == r.steps and history.stopped is None
    chapter = r.weights_hash()
    args = ["train", name, "--profile", "smoke", "--seed", "3", "--out", str(tmp_path / "run")]
    assert main(args + (["--data", str(data)] if data else [])) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["weights_sha256"] == chapter and metrics["steps"] == r.steps
    assert metrics["processor"] == mc.utils.processor()  # the hash holds on this processor, with these threads
    assert chapter in capsys.readouterr().out  # the command line prints the hash
    again = recipe(name, "smoke", data=data, seed=4)  # another seed, another model
    again.fit(progress=False)
    assert again.weights_hash() != chapter


def test_a_paused_run_resumes_exactly_from_the_command_line(tiny_data, tmp_path):
    """varnet (a one-cycle schedule, a new random mask per slice): 6 steps in one go equal 3
    steps, a pause, and 3 more resumed from the checkpoint, bit for bit."""
    base = ["train", "varnet", "--profile", "smoke", "--data", str(tiny_data["fastmri"]), "--checkpoint-every", "1"]
    assert main([*base, "--out", str(tmp_path / "whole")]) == 0
    assert main([*base, "--out", str(tmp_path / "paused"), "--stop-after", "3"]) == 0
    assert mc.load_checkpoint(tmp_path / "paused" / "checkpoint.pt")["step"] == 3
    assert main([*base, "--out", str(tmp_path / "paused")]) == 0
    whole, paused = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "paused"))
    assert paused["steps"] == whole["steps"] == 6 and paused["weights_sha256"] == whole["weights_sha256"]
    w, p = (mc.load_checkpoint(tmp_path / d / "checkpoint.pt")["state"] for d in ("whole", "paused"))
    assert w["schedule_opt"] == p["schedule_opt"] and w["opt"]["param_groups"][0]["lr"] == p["opt"]["param_groups"][0]["lr"]


def test_a_resumed_run_with_another_config_is_refused(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "toy", "--profile", "smoke", "--steps", "4", "--out", out]) == 0
    with pytest.raises(SystemExit) as e:
        main(["train", "toy", "--profile", "smoke", "--steps", "8", "--config", "lr=0.5", "--out", out])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "another config" in err and "lr" in err and "--fresh" in err
    assert main(["train", "toy", "--profile", "smoke", "--steps", "8", "--config", "lr=0.5", "--out", out, "--fresh"]) == 0


def test_a_nan_learning_rate_stops_with_a_clear_error_and_keeps_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "toy", "--profile", "smoke", "--steps", "4", "--out", str(out)]) == 0
    good = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit) as e:
        main(["train", "toy", "--profile", "smoke", "--steps", "4", "--config", "lr=nan", "--out", str(out / "nan")])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "loss 'loss' is nan (no checkpoint was written); lower the learning rate" in err
    assert not (out / "nan" / "checkpoint.pt").exists() and (out / "checkpoint.pt").read_bytes() == good


def test_set_steps_stretches_the_schedules():
    r = recipe("toy", "smoke")
    r.set_steps(7)
    assert r.steps == 7 and all(s.steps == 7 for s in r.schedules.values())
    with pytest.raises(ValueError, match="whole number"):
        r.set_steps(0)


def test_varnet_is_finite_on_all_zero_kspace():
    torch.manual_seed(0)
    net = mc.VarNet(mc.VarNetConfig.smoke())
    k = torch.zeros(1, 2, 16, 16, dtype=torch.complex64)
    mask = mc.equispaced_mask(16, 4, 0.25, seed=0)
    assert torch.isfinite(net(k, mask)).all()


def test_varnet_keeps_a_weight_average_unless_told_not_to(tiny_data):
    from mricourse.training.recipes.varnet import EMA

    r = recipe("varnet", "smoke", data=tiny_data["fastmri"], seed=0)
    assert set(r.averages) == {"model"} and r.averages["model"].decay == EMA and r.record()["settings"]["ema"] == EMA
    initial = r.weights_hash()
    r.fit(progress=False)
    averaged = r.weights_hash()
    r.use_averages(False)
    assert len({initial, averaged, r.weights_hash()}) == 3  # the average moved, and is not the last weights
    assert int(r.averages["model"].updates) == r.steps
    assert recipe("varnet", "smoke", data=tiny_data["fastmri"], overrides={"ema": "0"}).averages == {}
    with pytest.raises(ValueError, match="ema"):
        recipe("varnet", "smoke", data=tiny_data["fastmri"], overrides={"ema": "1.5"})


def test_masks_come_from_seeded_streams():
    """No mask is drawn from the operating system's entropy: two functions built alike draw alike."""
    a, b = mc.MaskFunc("random", (0.08,), (4,)), mc.MaskFunc("random", (0.08,), (4,))
    assert all(torch.equal(a(64)[0], b(64)[0]) for _ in range(3))


def test_cli_records_the_speed_and_writes_the_profiler_table(tmp_path):
    """``mricourse train`` records steps per second and the split of a step in metrics.json;
    ``--torch-profile`` also writes torch's table of the operators that took the most time."""
    out = tmp_path / "run"
    assert main(["train", "toy", "--profile", "smoke", "--steps", "4", "--out", str(out), "--torch-profile"]) == 0
    speed = json.loads((out / "metrics.json").read_text())["speed"]
    assert speed["steps"] == 4 and speed["steps_per_s"] > 0 and abs(sum(speed["split"].values()) - 1) < 1e-6
    table = (out / "profile.txt").read_text()
    assert "Self CPU" in table and "aten::" in table


def test_bfloat16_precision_runs_the_update_under_autocast_and_is_recorded():
    r = mc.recipe("toy", "smoke", seed=0)
    assert r.precision == "float32" and "precision" not in r.record()
    r.precision = "bfloat16"
    seen = []
    r.model.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    r.set_steps(2).fit()
    assert seen and all(d == torch.bfloat16 for d in seen)  # the forward pass ran in bfloat16
    assert all(p.dtype == torch.float32 for p in r.model.parameters())  # the weights stay float32
    assert r.record()["precision"] == "bfloat16" and r.report(r.fit())["precision"] == "bfloat16"
    with pytest.raises(ValueError, match="expected precision one of"):
        dataclasses.replace(r, precision="float16")


def test_channels_last_recipes_put_their_kernels_channels_last_and_record_it():
    from mricourse.training.recipes.base import to_memory_format

    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.Conv3d(4, 4, 3), torch.nn.Linear(3, 3))
    params = list(net.parameters())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    to_memory_format(net, "channels_last")
    assert list(net.parameters()) == params  # the same objects: optimisers keep them
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert net[1].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not net[0].weight.is_contiguous() and net[2].weight.is_contiguous()  # 2D weights stay as they are
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the values do not change
    to_memory_format(net, "contiguous")  # and back (make speed's other side of the choice)
    assert all(p.is_contiguous() for p in net.parameters()) and list(net.parameters()) == params
    with pytest.raises(ValueError, match="expected one of"):
        to_memory_format(net, "nhwc")
    r = mc.recipe("dae", "smoke", seed=0)
    assert r.memory_format == "channels_last" and r.record()["memory_format"] == "channels_last"
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in r.model.parameters() if p.dim() == 4)
    assert "weights channels-last" in str(r)
    toy = mc.recipe("toy", "smoke", seed=0)
    assert toy.memory_format == "contiguous" and "memory_format" not in toy.record()
    with pytest.raises(ValueError, match="expected memory_format one of"):
        dataclasses.replace(toy, memory_format="nhwc")
