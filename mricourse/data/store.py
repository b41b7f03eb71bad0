"""Where the course data live and how a data set on disk is described.

``$MRICOURSE_DATA`` (default ``~/.cache/mricourse``) holds one folder per data set, each with a
``manifest.json``: the generator's name and version, seed, parameters, and the size and SHA-256
of every file. A data set is reused only if its manifest matches the requested parameters and
every listed file still has its size (and, when asked, its checksum).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..utils import atomic_write

__all__ = ["data_dir", "sha256", "write_manifest", "read_manifest", "manifest_is_valid"]

MANIFEST = "manifest.json"


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
    from .. import __version__

    manifest = {"dataset": dataset, "mricourse": __version__, "params": params, "files": entries, **(extra or {})}
    with atomic_write(folder / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return folder / MANIFEST


def read_manifest(folder) -> dict | None:
    """The manifest of ``folder``, or None if there is none or it is unreadable."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def manifest_is_valid(folder, params: dict, checksums: bool = False) -> bool:
    """True if ``folder`` holds a complete data set made with ``params`` (JSON-comparable)."""
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
