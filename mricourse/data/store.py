"""Where the course data live and how a data set on disk is described.

``$MRICOURSE_DATA`` (default ``~/.cache/mricourse``) holds one folder per data set, each with a
``manifest.json``: the generator's name and version, seed, parameters, and the size and SHA-256
of every file. A data set is reused only if its manifest matches the requested parameters and
every listed file still has its size and its checksum.

Checking checksums on every use would hash hundreds of MB each time a notebook starts, so
:func:`verify` keeps a stamp, ``.verified.json``: the size and modification time (ns) of each
file at the moment its SHA-256 was last found to match the manifest (written right after
generation, when the hashes were just computed). A file whose size and mtime still match its
stamp is trusted without hashing; any other (rewritten in place, touched, copied) is hashed
again. Reuse costs one ``stat`` per file; a changed file costs one hash, and a mismatch means
the data set is regenerated.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..utils import atomic_write

__all__ = ["data_dir", "sha256", "write_manifest", "read_manifest", "manifest_is_valid", "verify"]

MANIFEST = "manifest.json"
STAMP = ".verified.json"


def data_dir(name: str | None = None, create: bool = False) -> Path:
    """``$MRICOURSE_DATA`` (default ``~/.cache/mricourse``), or its sub-folder ``name``."""
    root = Path(os.environ.get("MRICOURSE_DATA") or Path.home() / ".cache" / "mricourse").expanduser()
    path = root / name if name else root
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def sha256(path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder, dataset: str, params: dict, files, extra: dict | None = None) -> Path:
    """Write ``folder/manifest.json`` listing ``files`` (paths inside ``folder``) atomically."""
    folder = Path(folder)
    entries = {}
    for f in sorted(Path(f) for f in files):
        rel = f.relative_to(folder).as_posix() if f.is_absolute() else f.as_posix()
        full = folder / rel
        entries[rel] = {"bytes": full.stat().st_size, "sha256": sha256(full)}
    from .._version import __version__

    manifest = {"dataset": dataset, "mricourse": __version__, "params": params, "files": entries, **(extra or {})}
    with atomic_write(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    _write_stamp(folder, entries)
    return folder / MANIFEST


def _stat(f: Path) -> list[int]:
    st = f.stat()
    return [st.st_size, st.st_mtime_ns]


def _write_stamp(folder: Path, entries) -> None:
    try:
        with atomic_write(folder / STAMP) as tmp:
            tmp.write_text(json.dumps({rel: _stat(folder / rel) for rel in entries}))
    except OSError:  # a read-only copy: verified again next time
        pass


def verify(folder, full: bool = False) -> list[str]:
    """The files of ``folder``'s manifest that are missing or whose SHA-256 does not match it
    (empty: the data set is intact). Files unchanged since their last verification (same size
    and mtime as in the stamp) are not hashed again unless ``full``."""
    folder = Path(folder)
    m = read_manifest(folder)
    if m is None:
        return [MANIFEST]
    try:
        stamp = {} if full else json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        stamp = {}
    bad, rehashed = [], False
    for rel, info in m.get("files", {}).items():
        f = folder / rel
        if not f.is_file() or f.stat().st_size != info["bytes"]:
            bad.append(rel)
        elif stamp.get(rel) != _stat(f):
            rehashed = True
            if sha256(f) != info["sha256"]:
                bad.append(rel)
    if not bad and (rehashed or full):
        _write_stamp(folder, m["files"])
    return bad


def read_manifest(folder) -> dict | None:
    """The manifest of ``folder``, or None if there is none or it is unreadable."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def manifest_is_valid(folder, params: dict, checksums: bool = False) -> bool:
    """True if ``folder`` holds a complete data set made with ``params`` (JSON-comparable): every
    file has its size, and with ``checksums`` its SHA-256 (all hashed; :func:`verify` is the
    fast check)."""
    m = read_manifest(folder)
    if m is None or json.loads(json.dumps(params)) != m.get("params"):
        return False
    for rel, info in m.get("files", {}).items():
        f = Path(folder) / rel
        if not f.exists() or f.stat().st_size != info["bytes"]:
            return False
        if checksums and sha256(f) != info["sha256"]:
            return False
    return True
