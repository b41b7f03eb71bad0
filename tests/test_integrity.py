"""Nothing lost, nothing falsified: data sets verify their checksums on first use, checkpoints
carry a checksum, files keep the umask's permissions, and what a killed process left behind is
cleaned; concurrent generators build a data set once."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import mricourse as mc
from mricourse import files
from mricourse.data import make, store

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(train=2, test=1, size=16, contrasts=["T1w"])


def _make(root, verbose=False):
    return make.make_dataset("slices", {**TINY, "seed": 0}, root, verbose=verbose)


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_file_changed_in_place_is_regenerated(tmp_path, capsys, monkeypatch):
    folder = _make(tmp_path)
    train = folder / "train.npz"
    calls = []
    real = store.sha256
    monkeypatch.setattr(store, "sha256", lambda p, *a: calls.append(p) or real(p, *a))
    _make(tmp_path)
    assert calls == []  # verified when written: reuse is a stat per file, no hashing
    _flip(train, train.stat().st_size // 2)  # same size, new content
    _make(tmp_path, verbose=True)
    out = capsys.readouterr().err
    assert "train.npz" in out and "regenerat" in out
    assert store.manifest_is_valid(folder, {**TINY, "seed": 0}, checksums=True)
    mc.data.SliceData(train)  # reads back


def test_make_data_verify_then_rerun_repairs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_data", ROOT / "data_scripts" / "make_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ["slices", "--profile", "smoke", "--out", str(tmp_path)]
    assert script.main(args) == 0
    train = tmp_path / "slices" / "train.npz"
    _flip(train, 200)
    assert script.main([*args, "--verify"]) == 1
    assert "train.npz" in capsys.readouterr().out
    assert script.main(args) == 0  # the advice: a plain rerun regenerates
    assert script.main([*args, "--verify"]) == 0


def test_checkpoint_with_flipped_tensor_bytes_is_refused(tmp_path):
    net = torch.nn.Linear(64, 64)
    path = tmp_path / "checkpoint.pt"
    mc.training.fit.save_checkpoint(path, {"model": net}, step=3)
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    _flip(path, offset + info.file_size // 2)
    with pytest.raises(files.CheckpointError, match=r"checkpoint\.pt.*(corrupt|checksum).*--fresh"):
        mc.load_checkpoint(path, {"model": net})


def test_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        folder = _make(tmp_path)
        ckpt = tmp_path / "run" / "checkpoint.pt"
        mc.training.fit.save_checkpoint(ckpt, {"model": torch.nn.Linear(2, 2)})
        for f in (folder / "train.npz", folder / "manifest.json", ckpt):
            assert f.stat().st_mode & 0o777 == 0o644, f
        os.umask(0o077)
        with files.atomic_write(tmp_path / "private.json") as tmp:
            tmp.write_text("{}")
        assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temp_files_of_dead_writers_are_removed(tmp_path):
    dead, host = _dead_pid(), files._HOST
    stale = tmp_path / f".checkpoint.pt~{host}~{dead}~abc.tmp"
    live = tmp_path / f".checkpoint.pt~{host}~{os.getppid()}~abc.tmp"
    other_host = tmp_path / f".checkpoint.pt~elsewhere~{dead}~abc.tmp"
    for f in (stale, live, other_host):
        f.write_bytes(b"x" * 10)
    mc.training.fit.save_checkpoint(tmp_path / "checkpoint.pt", {"model": torch.nn.Linear(2, 2)})
    assert not stale.exists() and live.exists() and other_host.exists()


def test_partial_folders_of_killed_generations_are_removed(tmp_path):
    partial = tmp_path / f".slices.partial-{_dead_pid()}"
    (partial / "junk").mkdir(parents=True)
    _make(tmp_path)
    assert not partial.exists()
    partial.mkdir()
    _make(tmp_path)  # reused, and the leftover is gone too
    assert not partial.exists()


def test_concurrent_generators_build_once(tmp_path):
    code = (
        "import sys; from mricourse.data import make; "
        f"make.make_dataset('slices', {{**{TINY!r}, 'seed': 0}}, sys.argv[1], verbose=True)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum("wrote" in o for o in outs) == 1 and sum("reusing" in o for o in outs) == 1, outs
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["slices"]


def test_ranks_generate_once_then_wait(tmp_path, monkeypatch):
    """Under torchrun: rank 0 generates, then a barrier; the other ranks wait, then reuse."""
    events = []
    monkeypatch.setattr(make, "_rank_world", lambda: (1, 2))
    monkeypatch.setattr(make, "_barrier", lambda: events.append(("barrier", (tmp_path / "smoke" / "slices").exists())))
    monkeypatch.setenv("MRICOURSE_DATA", str(tmp_path))
    make.ensure_dataset("slices", "smoke")  # rank 1 waits first; with no copy from rank 0 (a node's own disk), makes one
    assert events == [("barrier", False)] and (tmp_path / "smoke" / "slices" / "manifest.json").exists()
    shutil.rmtree(tmp_path / "smoke")
    events.clear()
    monkeypatch.setattr(make, "_rank_world", lambda: (0, 2))
    folder = make.ensure_dataset("slices", "smoke")
    assert events == [("barrier", True)] and json.loads((folder / "manifest.json").read_text())["dataset"] == "slices"
