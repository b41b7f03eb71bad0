"""Safe files: atomic writes, locks, the cleaning of what a killed process left, and checksummed
checkpoints.

- :func:`atomic_write` writes to a temporary file beside the target, flushes it to disk
  (``fsync``) and renames it into place, with the permissions a plain ``open`` would give
  (``0o666`` less the umask: a data set made for a class on a shared machine stays readable).
  The temporary file's name carries the host and the process id (``.<name>~<host>~<pid>~<rand>.tmp``),
  so the next write to the same target removes those whose process is gone.
- :func:`file_lock`: an exclusive ``flock`` on a lock file, so that two processes (two notebooks,
  or the ranks of a ``torchrun``) never build the same data set at once.
- :func:`save_checked` / :func:`load_checked`: ``torch.save`` with a SHA-256 of the payload's
  content (every tensor's bytes, and the structure around them), checked on load with
  ``weights_only=True``; a corrupted or foreign file raises :class:`CheckpointError` naming it
  and the fix.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import socket
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

__all__ = ["atomic_write", "file_lock", "pid_alive", "remove_stale_temps", "save_checked", "load_checked", "CheckpointError"]

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def umask() -> int:
    """The process's umask (read without changing it where ``/proc`` tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as e:
        return e.errno != errno.ESRCH
    return True


def owner_gone(host: str, pid: int) -> bool:
    """True if the process ``pid`` of ``host`` is known to be gone (only checkable on this host)."""
    return host == _HOST and pid != os.getpid() and not pid_alive(pid)


_TEMP = re.compile(r"^\.(?P<name>.+)~(?P<host>[A-Za-z0-9_-]+)~(?P<pid>\d+)~[^~]*\.tmp$")


def remove_stale_temps(folder, name: str | None = None) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` in ``folder`` (for target ``name``, or
    all) whose writing process is gone; return them."""
    removed = []
    pattern = f".{name}~*.tmp" if name else ".*~*.tmp"
    for f in Path(folder).glob(pattern):
        m = _TEMP.match(f.name)
        if m and (name is None or m["name"] == name) and owner_gone(m["host"], int(m["pid"])):
            try:
                f.unlink()
                removed.append(f)
            except OSError:
                pass
    return removed


@contextmanager
def atomic_write(path, mode: str = "wb"):
    """Write to a temporary file beside ``path`` and rename it into place on success, so an
    interrupted write never leaves a half-written file. Yields the temporary file's path.

    The file gets the umask's permissions and is flushed to disk before the rename; temporary
    files of ``path`` left by killed processes are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}~{_HOST}~{os.getpid()}~", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~umask())
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def file_lock(path, blocking: bool = True):
    """Hold an exclusive lock on the file ``path`` (created if needed) for the ``with`` block;
    other processes asking for it wait. Released when the process dies, so never stale. Yields
    True once held; with ``blocking=False`` yields False at once if another process holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            held = True
        except BlockingIOError:
            pass
        yield held
    finally:
        if held:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted: unreadable, truncated, or its checksum does not match."""


_KEY = "__sha256__"


def _digest(obj, h) -> None:
    """Feed ``obj`` (nested dicts, lists, tuples, tensors, numbers, strings) into the hash ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k, v in obj.items():
            _digest(k, h)
            _digest(v, h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__[0]}{len(obj)}".encode())
        for v in obj:
            _digest(v, h)
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def payload_digest(payload: dict) -> str:
    """SHA-256 of a checkpoint payload's content (tensors by their bytes)."""
    h = hashlib.sha256()
    _digest({k: v for k, v in payload.items() if k != _KEY}, h)
    return h.hexdigest()


def save_checked(payload: dict, path) -> None:
    """``torch.save`` the dict ``payload`` atomically with its :func:`payload_digest`. The same
    payload gives the same bytes wherever it is written (``torch.save`` to a path names the
    archive's folder after the file, here a temporary one; to an open file, ``archive``), so a
    file's SHA-256 follows its content."""
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        torch.save({**payload, _KEY: payload_digest(payload)}, f)


def load_checked(path, map_location="cpu", fix: str = "delete it to start over") -> dict:
    """Load a dict saved by :func:`save_checked` (``weights_only=True``) and check its checksum.

    Raises :class:`CheckpointError` naming ``path`` and ``fix`` when the file is empty, truncated,
    not a checkpoint, or altered. A checkpoint without a checksum (an older mricourse's) loads
    with a warning."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is an empty file, not a checkpoint; {fix}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # zip, pickle and storage errors of every kind
        detail = " ".join(str(e).split())[:160]
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupted: {detail}); {fix}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a checkpoint dict; {fix}")
    expected = payload.pop(_KEY, None)
    if expected is None:
        warnings.warn(f"{path} has no checksum (written by an older mricourse): loaded unchecked", stacklevel=2)
    elif payload_digest(payload) != expected:
        raise CheckpointError(f"{path} is corrupted (its checksum does not match its content); {fix}")
    return payload
