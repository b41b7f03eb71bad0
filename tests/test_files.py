"""Writing files whole or not at all (mricourse.files)."""

import pytest
import torch

import mricourse as mc


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with mc.files.atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_save_checked_writes_the_same_bytes_for_the_same_payload(tmp_path):
    from mricourse.files import load_checked, save_checked

    payload = {"state": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 3}
    save_checked(payload, tmp_path / "a.pt")
    save_checked(payload, tmp_path / "sub.pt")  # another name: the archive inside must not differ
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub.pt").read_bytes()
    assert torch.equal(load_checked(tmp_path / "sub.pt")["state"]["w"], payload["state"]["w"])
