"""Two CPU processes under torchrun (gloo): replicas stay identical, the run matches a single
process with the same global batch, and an interrupted run resumes from its checkpoint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mricourse as mc

ROOT = Path(__file__).resolve().parents[1]


def _run(out: Path, steps: int, nproc: int) -> dict:
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
        "toy",
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
    ]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def _weights(out: Path) -> dict:
    return mc.load_checkpoint(out / "checkpoint.pt")["state"]["model"]


def test_torchrun_two_processes(tmp_path):
    single = _run(tmp_path / "single", 20, 1)
    two = _run(tmp_path / "two", 20, 2)
    assert two["world_size"] == 2 and two["backend"] == "gloo"
    assert two["replicas_identical"]
    assert two["steps"] == single["steps"] == 20
    for k, v in _weights(tmp_path / "single").items():
        assert torch.allclose(v, _weights(tmp_path / "two")[k], atol=1e-6), k
    # interrupted after 10 steps, then resumed to 20: the same weights as the uninterrupted run
    _run(tmp_path / "resumed", 10, 2)
    assert mc.load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["step"] == 10
    resumed = _run(tmp_path / "resumed", 20, 2)
    assert resumed["steps"] == 20
    for k, v in _weights(tmp_path / "two").items():
        assert torch.allclose(v, _weights(tmp_path / "resumed")[k], atol=1e-6), k


def test_config_overrides():
    from mricourse.tasks import ToyConfig, apply_overrides

    cfg = apply_overrides(ToyConfig(), {"width": "4", "lr": "0.1"})
    assert cfg.width == 4 and cfg.lr == 0.1
    with pytest.raises(ValueError, match="unknown config field"):
        apply_overrides(ToyConfig(), {"depth": "3"})
