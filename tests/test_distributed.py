"""Two CPU processes under torchrun (gloo): replicas stay identical, the run matches a single
process with the same global batch, and an interrupted run resumes from its checkpoint; a GAN
(generator and discriminator each in its own DDP wrapper) resumes exactly too."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mricourse as mc

ROOT = Path(__file__).resolve().parents[1]


def _run(out: Path, steps: int, nproc: int, task: str = "toy", *extra: str) -> dict:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        if nproc > 1
        else [sys.executable]
    )
    cmd = [
        *launcher,
        "-m",
        "mricourse",
        "train",
        task,
        "--profile",
        "smoke",
        "--steps",
        str(steps),
        "--batch-size",
        "8",
        "--checkpoint-every",
        "5",
        "--out",
        str(out),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def _weights(out: Path, name: str = "model") -> dict:
    return mc.load_checkpoint(out / "checkpoint.pt")["state"][name]


def test_torchrun_two_processes(tmp_path):
    single = _run(tmp_path / "single", 20, 1)
    two = _run(tmp_path / "two", 20, 2)
    assert two["world_size"] == 2 and two["backend"] == "gloo"
    assert two["replicas_identical"]
    assert two["steps"] == single["steps"] == 20
    for k, v in _weights(tmp_path / "single").items():
        assert torch.allclose(v, _weights(tmp_path / "two")[k], atol=1e-6), k
    # interrupted after 10 steps, then resumed to 20: the same weights as the uninterrupted run
    _run(tmp_path / "resumed", 20, 2, "toy", "--stop-after", "10")
    assert mc.load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == 10
    resumed = _run(tmp_path / "resumed", 20, 2)
    assert resumed["steps"] == 20
    for k, v in _weights(tmp_path / "two").items():
        assert torch.allclose(v, _weights(tmp_path / "resumed")[k], atol=1e-6), k


def test_torchrun_gan_resumes_exactly(tiny_data, tmp_path):
    """DCGAN on two processes: each process draws its own latent noise (seeded by rank), the
    gradients of G and D are averaged by their own DDP wrappers, and a run stopped after 2 steps
    and resumed to 4 ends with the weights of the uninterrupted run (every process's random state
    is in the checkpoint)."""
    data = ("--data", str(tiny_data["slices"]), "--batch-size", "4")
    whole = _run(tmp_path / "whole", 4, 2, "dcgan", *data)
    assert whole["world_size"] == 2 and whole["replicas_identical"] and whole["steps"] == 4
    _run(tmp_path / "resumed", 4, 2, "dcgan", *data, "--stop-after", "2")
    assert len(mc.load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["local"]) == 2  # one entry per process
    assert _run(tmp_path / "resumed", 4, 2, "dcgan", *data)["replicas_identical"]
    for name in ("G", "D"):
        for k, v in _weights(tmp_path / "whole", name).items():
            assert torch.equal(v, _weights(tmp_path / "resumed", name)[k]), (name, k)


def test_config_overrides():
    from mricourse.training.recipes import apply_overrides
    from mricourse.training.recipes.toy import ToyConfig

    cfg = apply_overrides(ToyConfig(), {"width": "4", "lr": "0.1"})
    assert cfg.width == 4 and cfg.lr == 0.1
    with pytest.raises(ValueError, match="unknown config field"):
        apply_overrides(ToyConfig(), {"depth": "3"})


def test_collectives_run_on_the_models_device(monkeypatch):
    """The tensors all_reduce_mean hands to the collective live on the device it is given (the
    model's: NCCL reduces CUDA tensors only), and fit passes the model's device."""
    from mricourse.training import distributed
    from mricourse.training import fit as fit_module

    seen = []
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed.dist, "all_reduce", lambda t: seen.append(t.device))
    assert distributed.all_reduce_mean(3.0, "cpu") == 1.5 and seen == [torch.device("cpu")]  # (the mock adds nothing)
    with pytest.raises(RuntimeError, match="meta"):  # a meta tensor has no value to read back, but it reached the collective
        distributed.all_reduce_mean(3.0, torch.device("meta"))
    assert seen[-1] == torch.device("meta")
    model = torch.nn.Linear(2, 1)
    assert fit_module._device_of({"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.1)}) == torch.device("cpu")
    assert fit_module._device_of({}) == torch.device("cpu")
