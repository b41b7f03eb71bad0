"""The long-run weights shipped in the package and the loading of a reader's own run."""

import json
import shutil

import pytest
import torch

import mricourse as mc
from mricourse.training import cli, runs, weights
from mricourse.training.recipes.base import weights_hash


@pytest.mark.parametrize("task", runs.available_weights())
def test_shipped_weights_match_their_manifest_and_reproduce_their_metrics(task):
    info = runs.weights_manifest(task)
    assert runs.file_sha256(runs.weights_dir() / info["file"]) == info["sha256"]
    assert info["curve"] and info["curve"][-1]["step"] == info["steps"] == info["record"]["steps"]
    loaded = mc.pretrained(task)  # loads into today's model code
    modules = loaded if isinstance(loaded, dict) else {"model": loaded}
    got = weights.smoke_check(task, modules)
    for k, v in info["smoke_check"].items():
        assert abs(got[k] - v) < 2e-3, (k, got[k], v)


def test_the_shipped_weights_are_small():
    total = sum(p.stat().st_size for p in runs.weights_dir().glob("*.pt"))
    assert total <= 30 * 2**20, f"{total / 2**20:.1f} MB of weights: the package ships at most 30 MB"


def test_unknown_task_and_damaged_file(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="no long-run weights for 'nope'"):
        mc.pretrained("nope")
    monkeypatch.setattr(runs, "weights_dir", lambda: tmp_path)
    r, curve, seconds = weights.train_long("toy", tmp_path / "runs", steps=20, every=10, profile="smoke")
    weights.export("toy", r, curve, seconds, tmp_path)
    pt = tmp_path / "toy.pt"
    data = bytearray(pt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its manifest"):
        mc.pretrained("toy")


def test_a_long_run_exports_loads_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "weights_dir", lambda: tmp_path / "weights")
    r, curve, seconds = weights.train_long("toy", tmp_path / "runs", steps=20, every=10, profile="smoke")
    assert [p["step"] for p in curve] == [10, 20] and all("mse" in p for p in curve)
    started = weights.started_at(tmp_path / "runs", "toy")
    assert weights.trained_on(tmp_path / "runs", "toy") == [mc.utils.processor()]
    manifest = json.loads(weights.export("toy", r, curve, seconds, commit=started, processors=weights.trained_on(tmp_path / "runs", "toy")).read_text())
    assert started and manifest["commit"] == started  # the code the training started from
    assert manifest["dtype"] in ("float16", "float32") and manifest["steps"] == 20 and manifest["record"]["recipe"] == "toy"
    assert manifest["processors"] == [mc.utils.processor()] and manifest["processors"][0]["threads"] == torch.get_num_threads()  # where the hash holds
    model = mc.pretrained("toy")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert abs(weights.smoke_check("toy", {"model": model})["mse"] - manifest["smoke_check"]["mse"]) < 1e-6
    # the same command again resumes: nothing is trained twice, the curve is kept
    r2, curve2, _ = weights.train_long("toy", tmp_path / "runs", steps=20, every=10, profile="smoke")
    assert curve2 == curve and r2.weights_hash() == r.weights_hash()
    assert weights.trained_on(tmp_path / "runs", "toy") == [mc.utils.processor()]  # nothing trained: no new processor
    # a session on another processor that has steps left records it beside the first
    saved = json.loads((tmp_path / "runs" / "toy" / "curve.json").read_text())
    (tmp_path / "runs" / "toy" / "curve.json").write_text(json.dumps({**saved, "curve": saved["curve"][:1]}))  # step 20 left
    other = {**mc.utils.processor(), "name": "another processor"}
    monkeypatch.setattr(weights, "processor", lambda: other)
    weights.train_long("toy", tmp_path / "runs", steps=20, every=10, profile="smoke")
    assert weights.trained_on(tmp_path / "runs", "toy") == [mc.utils.processor(), other]


def test_load_run_gives_the_trained_model(tmp_path):
    out = tmp_path / "run"
    cli.main(["train", "toy", "--profile", "smoke", "--out", str(out), "--config", "average=0.9"])
    result = json.loads((out / "metrics.json").read_text())
    model = mc.load_run(out)  # the weight average, the model the recipe keeps
    assert weights_hash({"model": model}) == result["weights_sha256"] and not model.training
    last = mc.load_run(out, averaged=False)
    assert weights_hash({"model": last}) != result["weights_sha256"]
    shutil.copy(out / "config.json", tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        mc.load_run(tmp_path)


@pytest.mark.parametrize("name", sorted(runs.NETWORKS))
def test_records_of_every_recipe_rebuild_their_networks(name):
    r = mc.recipe(name, "smoke", seed=0)
    record = json.loads(json.dumps(r.record()))  # as config.json and the manifests hold it
    rebuilt = runs.networks_from_record(record)
    assert set(rebuilt) == set(r.modules)
    for k, m in rebuilt.items():
        m.load_state_dict(r.modules[k].state_dict())  # strict: the same parameters and shapes
    assert weights_hash(rebuilt) == r.weights_hash()


def test_a_recipe_without_a_rebuild_is_named():
    with pytest.raises(ValueError, match="cannot rebuild the networks of recipe 'nosuch'"):
        runs.networks_from_record({"recipe": "nosuch", "config": {}})
    with pytest.raises(ValueError, match="no image size"):  # a voxelmorph record of an older version
        runs.networks_from_record({"recipe": "voxelmorph", "config": {}, "settings": {}})


def test_a_gan_ships_its_generator_only_and_keeps_its_start_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "weights_dir", lambda: tmp_path / "weights")
    monkeypatch.setattr(weights, "_commit", lambda: "first")
    r, curve, seconds = weights.train_long("vox2vox", tmp_path / "runs", steps=2, every=1, profile="smoke")
    monkeypatch.setattr(weights, "_commit", lambda: "second")  # the code changed before the run was resumed and exported
    r, curve, seconds = weights.train_long("vox2vox", tmp_path / "runs", steps=2, every=1, profile="smoke")
    manifest = json.loads(weights.export("vox2vox", r, curve, seconds, commit=weights.started_at(tmp_path / "runs", "vox2vox")).read_text())
    assert manifest["commit"] == "first" and manifest["modules"] == ["G"]  # no discriminator
    nets = mc.pretrained("vox2vox")
    assert set(nets) == {"G"} and not nets["G"].training  # a dict by name: the recipe's network is not called "model"


def test_long_run_describes_the_weights_or_says_there_are_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runs, "weights_dir", lambda: tmp_path / "weights")
    assert mc.long_run("toy", steps=5) == (None, None)
    assert "no weights for toy, long run in this installation" in capsys.readouterr().out
    r, curve, seconds = weights.train_long("toy", tmp_path / "runs", steps=20, every=10, profile="smoke")
    weights.export("toy", r, curve, seconds, commit="abc")
    capsys.readouterr()  # the training's log
    info, model = mc.long_run("toy", steps=5, name="Toy, long run")
    assert info == runs.weights_manifest("toy") and not model.training
    assert weights_hash({"model": model}) == weights_hash({"model": mc.pretrained("toy")})
    out = capsys.readouterr().out
    assert out.startswith("Toy, long run: 20 steps (this chapter's run: 5), seed 0") and "commit abc" in out
