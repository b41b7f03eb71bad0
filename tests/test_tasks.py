"""Every trainable model of the course as a command-line task: a smoke run of two steps on tiny
data in the real formats, exact resume of the GAN tasks, and the config overrides."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import mricourse as mc
from mricourse.training import cli
from mricourse.training.recipes import apply_overrides, names

#: task -> the tiny data set it reads
DATA = {
    "varnet": "fastmri",
    "cascade": "cine",
    "dcgan": "slices",
    "dae": "slices",
    "cyclegan": "slices",
    "unet_t1t2": "slices",
    "voxelmorph": "slices",
    "vox2vox": "brats",
    "unet3d_brats": "brats",
    "msfusion": "slices",
    "srgan": "ixi",
}


def _train(task, data, out, steps, *extra):
    cli.main(
        ["train", task, "--data", str(data[DATA[task]]), "--profile", "smoke", "--steps", str(steps), "--out", str(out), *extra]
    )
    return json.loads((out / "metrics.json").read_text())


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("task", sorted(set(names()) - {"toy"}))
def test_every_recipe_is_trained_by_a_chapter_and_named_on_beyond_the_notebooks(task):
    """A recipe no chapter builds is not the chapter's model; one the book does not name, nobody finds."""
    chapters = [nb.name for nb in (ROOT / "notebooks").glob("*.ipynb") if f'recipe(\\"{task}\\"' in nb.read_text()]
    assert chapters, f"no chapter builds mc.recipe({task!r})"
    assert f"mricourse train {task}" in (ROOT / "book" / "scaling.md").read_text()


@pytest.mark.parametrize("task", sorted(set(names()) - {"toy"}))
def test_task_trains_from_the_cli(task, tiny_data, tmp_path):
    result = _train(task, tiny_data, tmp_path, 2, "--batch-size", "2")
    assert result["task"] == task and result["steps"] == 2 and result["world_size"] == 1
    assert result["final_loss"] and all(math.isfinite(v) for v in result["final_loss"].values())
    assert result["metrics"] and all(math.isfinite(v) for v in result["metrics"].values())
    payload = mc.load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 2 and json.loads(json.dumps(payload["config"])) == json.loads(
        (tmp_path / "config.json").read_text()
    )
    built = mc.recipe(task, "smoke", data=tiny_data[DATA[task]])  # every module, optimiser and schedule is saved
    assert set(payload["state"]) == set(built.state())
    assert len(payload["local"]) == 1 and "torch" in payload["local"][0]["rng"]


def test_voxelmorph_in_3d_on_ixi_volumes(tiny_data, tmp_path):
    cli.main(
        ["train", "voxelmorph", "--data", str(tiny_data["ixi"]), "--profile", "smoke", "--steps", "2", "--batch-size", "2"]
        + ["--config", "dims=3", "--out", str(tmp_path)]
    )
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["steps"] == 2 and "dice" in result["final_loss"] and 0 <= result["metrics"]["dice"] <= 1
    assert json.loads((tmp_path / "config.json").read_text())["config"]["num_labels"] == 4


@pytest.mark.parametrize("task", ["dcgan", "cyclegan", "vox2vox", "srgan"])
def test_gan_resumes_exactly(task, tiny_data, tmp_path):
    """Stopped after 2 steps and resumed to 5: the same generator, discriminator and optimiser
    states as 5 uninterrupted steps (noise, image pools and random crops included)."""
    whole = tmp_path / "whole"
    _train(task, tiny_data, whole, 5, "--batch-size", "2")
    resumed = tmp_path / "resumed"
    _train(task, tiny_data, resumed, 5, "--batch-size", "2", "--stop-after", "2")
    _train(task, tiny_data, resumed, 5, "--batch-size", "2")
    a, b = mc.load_checkpoint(whole / "checkpoint.pt"), mc.load_checkpoint(resumed / "checkpoint.pt")
    assert a["step"] == b["step"] == 5 and a["state"].keys() == b["state"].keys()
    for name, sd in a["state"].items():
        if name.startswith("opt"):
            for i, s in sd["state"].items():
                assert torch.equal(s["exp_avg"], b["state"][name]["state"][i]["exp_avg"]), (name, i)
        else:
            for k, v in sd.items():  # module weights, and the schedules' step counts
                assert torch.equal(v, b["state"][name][k]) if torch.is_tensor(v) else v == b["state"][name][k], (name, k)


def test_unknown_task_names_the_tasks(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "nonesuch", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "expected one of" in err and "cyclegan" in err


def test_overrides_follow_the_annotations():
    @dataclass
    class Cfg:
        chans: int = 8
        lr: float = 1e-3
        sharing: tuple[int, ...] = ()
        noise_lvl: float | None = None
        factor: int | tuple = 2
        adversarial: bool = True
        name: str = "x"

    cfg = apply_overrides(
        Cfg(),
        {"chans": "4", "lr": "0.1", "sharing": "0,1,2", "noise_lvl": "0.5", "factor": "3", "adversarial": "false", "name": "y"},
    )
    assert cfg == Cfg(4, 0.1, (0, 1, 2), 0.5, 3, False, "y")
    assert apply_overrides(Cfg(noise_lvl=2.0), {"noise_lvl": "none"}).noise_lvl is None
    with pytest.raises(ValueError, match="'chans' of Cfg expects"):
        apply_overrides(Cfg(), {"chans": "wide"})
    with pytest.raises(ValueError, match="unknown config field"):
        apply_overrides(Cfg(), {"depth": "3"})
    assert apply_overrides(mc.models.cascade.CascadeConfig.smoke(dims=2), {"noise_lvl": "0.1"}).noise_lvl == 0.1
    typed = {"chans": 4, "lr": 0.1, "sharing": (0, 1, 2), "noise_lvl": 0.5, "factor": 3, "adversarial": False, "name": "y"}
    assert apply_overrides(Cfg(), typed) == Cfg(4, 0.1, (0, 1, 2), 0.5, 3, False, "y")  # Python values, as from mc.recipe
    assert apply_overrides(Cfg(noise_lvl=2.0), {"noise_lvl": None}).noise_lvl is None
    with pytest.raises(ValueError, match="'chans' of Cfg expects"):
        apply_overrides(Cfg(), {"chans": 4.5})
    with pytest.raises(ValueError, match="'chans' of Cfg expects"):
        apply_overrides(Cfg(), {"chans": {"a": 1}})
