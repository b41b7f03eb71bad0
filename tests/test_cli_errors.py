"""``mricourse train`` on bad arguments: every argument is checked before data or models are
built; an error is one line on stderr naming the argument and the fix, exit code 2 for the
command line, 1 for a fault found while running; ``--debug`` shows the traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mricourse.training import cli


def _fails(capsys, argv, code=2):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == code
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """$MRICOURSE_DATA in an empty folder: a test can check that nothing was generated."""
    root = tmp_path / "data"
    monkeypatch.setenv("MRICOURSE_DATA", str(root))
    return root


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--steps", "-5"], "--steps"),
        (["--steps", "0"], "--steps"),
        (["--batch-size", "0"], "--batch-size"),
        (["--checkpoint-every", "-1"], "--checkpoint-every"),
        (["--time-budget", "-1"], "--time-budget"),
        (["--time-budget", "nan"], "--time-budget"),
        (["--log-every", "0"], "--log-every"),
        (["--seed", "-1"], "--seed"),
        (["--config", "width"], "KEY=VALUE"),
        (["--config", "=3"], "KEY=VALUE"),
        (["--config", "width=3", "--config", "width=4"], "twice"),
        (["--profile", "huge"], "profile"),
        (["--steps", "five"], "--steps"),
    ],
)
def test_bad_numbers_and_forms_are_usage_errors(capsys, tmp_path, no_data, extra, words):
    err = _fails(capsys, ["train", "varnet", "--profile", "smoke", "--out", str(tmp_path / "run"), *extra])
    assert words in err
    assert not no_data.exists()  # nothing generated before the check


def test_unknown_task_and_config_key(capsys, tmp_path, no_data):
    err = _fails(capsys, ["train", "nonesuch", "--out", str(tmp_path)])
    assert "nonesuch" in err and "cyclegan" in err
    err = _fails(capsys, ["train", "varnet", "--profile", "smoke", "--config", "nonesuch=3", "--out", str(tmp_path)])
    assert "nonesuch" in err and "chans" in err
    err = _fails(capsys, ["train", "toy", "--config", "width=wide", "--out", str(tmp_path)])
    assert "width" in err and "wide" in err
    assert not no_data.exists()


def test_profile_from_the_environment_is_checked(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MRICOURSE_PROFILE", "laptop")
    err = _fails(capsys, ["train", "toy", "--out", str(tmp_path)])
    assert "laptop" in err and "MRICOURSE_PROFILE" in err


def test_paths_are_checked_first(capsys, tmp_path, no_data):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _fails(capsys, ["train", "varnet", "--profile", "smoke", "--out", str(blocker / "run")])
    assert "--out" in err and str(blocker) in err
    err = _fails(capsys, ["train", "varnet", "--profile", "smoke", "--out", str(blocker)])
    assert "--out" in err
    err = _fails(
        capsys, ["train", "varnet", "--profile", "smoke", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")]
    )
    assert "--data" in err and "missing" in err and "make_data.py" in err
    assert not no_data.exists()


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n", "truncated"])
def test_corrupt_checkpoint_on_resume_is_one_line(capsys, tmp_path, content):
    run = tmp_path / "run"
    argv = ["train", "toy", "--profile", "smoke", "--steps", "4", "--out", str(run)]
    cli.main(argv)
    ckpt = run / "checkpoint.pt"
    if content == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    else:
        ckpt.write_bytes(content)
    capsys.readouterr()
    err = _fails(capsys, [*argv[:-2], "--steps", "6", "--out", str(run)], code=1)
    assert str(ckpt) in err and "--fresh" in err
    # the way out the message names: start again
    cli.main([*argv[:-2], "--steps", "6", "--fresh", "--out", str(run)])
    assert json.loads((run / "metrics.json").read_text())["steps"] == 6


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="--steps"):
        cli.main(["train", "toy", "--steps", "0", "--debug", "--out", str(tmp_path)])


def test_console_exit_codes(tmp_path):
    """As a user meets it: one line on stderr, exit code 2, no traceback."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "mricourse", "train", "toy", "--steps", "-5", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--steps" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "checkpoint.pt").exists()
