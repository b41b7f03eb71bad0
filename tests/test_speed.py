"""The training-speed measurement (python -m mricourse.training.speed, make speed)."""

import json

import pytest
import torch

from mricourse.training import speed


@pytest.mark.parametrize("variant", ["base", "bf16", "channels_last", "contiguous", "threads1"])
def test_every_variant_times_the_updates_and_leaves_the_threads_as_they_were(variant):
    threads = torch.get_num_threads()
    m = speed.measure("toy", variant, profile="smoke", steps=3, warmup=1)
    assert m["steps_per_s"] > 0 and m["seconds"] > 0 and m["setup_seconds"] >= 0
    assert torch.get_num_threads() == threads


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown variant 'fp8'"):
        speed.measure("toy", "fp8", profile="smoke")


def test_command_line_writes_the_table_and_rejects_bad_arguments(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert speed.main(["toy", "--profile", "smoke", "--steps", "2", "--variants", "base,threads1", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["results"]["toy"]) == {"base", "threads1"} and data["profile"] == "smoke"
    assert "x1.00" in capsys.readouterr().out  # the base variant's ratio to itself
    assert speed.main(["nope", "--variants", "base"]) == 2
    assert speed.main(["toy", "--variants", "fast"]) == 2
    assert "expected tasks from" in capsys.readouterr().err
