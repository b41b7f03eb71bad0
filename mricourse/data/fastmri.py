"""fastMRI HDF5 files: write them like the real data set, read real or simulated ones.

Layout (Zbontar et al. 2018, https://fastmri.org/dataset): dataset ``kspace`` (slices, coils, H, W)
complex64 for multi-coil or (slices, H, W) for single-coil; ``reconstruction_rss`` (multi-coil)
or ``reconstruction_esc`` (single-coil) (slices, h, w) float32, the target; ``ismrmrd_header``, an
ISMRMRD XML header from which ``fastmri.data.SliceDataset`` reads encodedSpace/reconSpace matrix
sizes and encodingLimits/kspace_encoding_step_1; attributes ``acquisition`` (AXT1, AXT1POST,
AXT2, AXFLAIR ...), ``max`` and ``norm`` (of the target volume) and ``patient_id``. Test files
carry a ``mask`` dataset (W,) and attributes ``acceleration`` and ``num_low_frequencies``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import torch

from ..utils import atomic_write

__all__ = ["write_fastmri", "read_fastmri", "ismrmrd_header", "parse_header", "check_fastmri_file", "ACQUISITIONS"]

ISMRMRD_NS = "http://www.ismrm.org/ISMRMRD"
#: fastMRI brain acquisition names for our contrasts
ACQUISITIONS = {"T1w": "AXT1", "T1w+c": "AXT1POST", "T2w": "AXT2", "FLAIR": "AXFLAIR", "PDw": "AXPD"}
MAKE_HINT = "python data_scripts/make_data.py fastmri (or data_scripts/prepare_fastmri.py for the real data)"


def ismrmrd_header(
    encoded: tuple[int, int],
    recon: tuple[int, int],
    fov_mm: tuple[float, float] = (240.0, 240.0),
    field: float = 1.5,
    coils: int = 1,
    seq: dict | None = None,
) -> bytes:
    """A minimal ISMRMRD XML header with what fastMRI's loader reads.

    ``encoded`` = k-space (rows, cols) = (read-out, phase encoding), ``recon`` = target size.
    """
    ET.register_namespace("", ISMRMRD_NS)
    q = lambda tag: f"{{{ISMRMRD_NS}}}{tag}"  # noqa: E731

    def sub(parent, tag, text=None):
        el = ET.SubElement(parent, q(tag))
        if text is not None:
            el.text = str(text)
        return el

    root = ET.Element(q("ismrmrdHeader"))
    system = sub(root, "acquisitionSystemInformation")
    sub(system, "systemFieldStrength_T", field)
    sub(system, "receiverChannels", coils)
    enc = sub(root, "encoding")
    for name, (x, y), fov in (
        ("encodedSpace", encoded, (fov_mm[0] * encoded[0] / recon[0], fov_mm[1])),
        ("reconSpace", recon, fov_mm),
    ):
        space = sub(enc, name)
        size = sub(space, "matrixSize")
        sub(size, "x", x), sub(size, "y", y), sub(size, "z", 1)
        f = sub(space, "fieldOfView_mm")
        sub(f, "x", f"{fov[0]:.1f}"), sub(f, "y", f"{fov[1]:.1f}"), sub(f, "z", "5.0")
    limits = sub(enc, "encodingLimits")
    for name, n in (("kspace_encoding_step_1", encoded[1]), ("kspace_encoding_step_2", 1), ("slice", 1)):
        lim = sub(limits, name)
        sub(lim, "minimum", 0), sub(lim, "maximum", n - 1), sub(lim, "center", n // 2)
    sub(enc, "trajectory", "cartesian")
    if seq:
        params = sub(root, "sequenceParameters")
        for key in ("TR", "TE", "TI"):
            if key in seq:
                sub(params, key, seq[key])
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def parse_header(xml: bytes | str) -> dict:
    """The sizes fastMRI's loader uses: encoding_size, recon_size (x, y, z), padding_left/right."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise ValueError(f"ismrmrd_header is not valid XML ({e})") from None
    ns = {"m": ISMRMRD_NS}

    def get(path):
        el = root.find(".//" + "//".join(f"m:{p}" for p in path), ns)
        if el is None:
            raise ValueError(f"ismrmrd_header has no {'/'.join(path)}")
        return int(float(el.text))

    enc = tuple(get(["encoding", "encodedSpace", "matrixSize", a]) for a in "xyz")
    rec = tuple(get(["encoding", "reconSpace", "matrixSize", a]) for a in "xyz")
    center = get(["encoding", "encodingLimits", "kspace_encoding_step_1", "center"])
    maximum = get(["encoding", "encodingLimits", "kspace_encoding_step_1", "maximum"]) + 1
    left = enc[1] // 2 - center
    return {"encoding_size": enc, "recon_size": rec, "padding_left": left, "padding_right": left + maximum}


def write_fastmri(
    path,
    kspace,
    target,
    acquisition: str = "AXT2",
    patient_id: str = "",
    mask=None,
    acceleration: int | None = None,
    num_low_frequencies: int | None = None,
    field: float = 1.5,
    fov_mm: float = 240.0,
    attrs: dict | None = None,
) -> Path:
    """Write one volume as a fastMRI HDF5 file (atomically: temporary file, then rename).

    Args:
        kspace: (S, coils, H, W) multi-coil or (S, H, W) single-coil complex k-space.
        target: (S, h, w) magnitude target (RSS for multi-coil, ESC for single-coil).
        mask: optional (W,) sampling mask for a test file (the k-space must then be masked).
    """
    k = kspace.numpy() if isinstance(kspace, torch.Tensor) else np.asarray(kspace)
    t = target.numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
    if not np.iscomplexobj(k) or k.ndim not in (3, 4):
        raise TypeError(f"write_fastmri: expected complex k-space (S, [coils,] H, W), got {k.dtype} {k.shape}")
    if t.ndim != 3 or t.shape[0] != k.shape[0] or np.iscomplexobj(t):
        raise ValueError(f"write_fastmri: expected a real target (S={k.shape[0]}, h, w), got {t.dtype} {t.shape}")
    multicoil = k.ndim == 4
    coils = k.shape[1] if multicoil else 1
    header = ismrmrd_header(k.shape[-2:], t.shape[-2:], (fov_mm, fov_mm), field, coils)
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("kspace", data=k.astype(np.complex64))
            f.create_dataset("reconstruction_rss" if multicoil else "reconstruction_esc", data=t.astype(np.float32))
            f.create_dataset("ismrmrd_header", data=np.bytes_(header))
            if mask is not None:
                f.create_dataset("mask", data=np.asarray(mask, dtype=bool).reshape(-1))
                f.attrs["acceleration"] = int(acceleration or 0)
                f.attrs["num_low_frequencies"] = int(num_low_frequencies or 0)
            f.attrs["acquisition"] = acquisition
            f.attrs["max"] = float(t.max())
            f.attrs["norm"] = float(np.linalg.norm(t))
            f.attrs["patient_id"] = patient_id
            for key, val in (attrs or {}).items():
                f.attrs[key] = val
    return Path(path)


def _open(path) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such fastMRI file; make it with {MAKE_HINT}")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise ValueError(
            f"{path} is not a readable HDF5 file (truncated or corrupt?): delete it and re-download or regenerate it "
            f"({MAKE_HINT}); h5py said: {e}"
        ) from None


def _target_key(f: h5py.File) -> str | None:
    return "reconstruction_rss" if "reconstruction_rss" in f else "reconstruction_esc" if "reconstruction_esc" in f else None


def _header(path: Path, f: h5py.File) -> dict:
    try:
        return parse_header(f["ismrmrd_header"][()])
    except ValueError as e:
        raise ValueError(
            f"{path}: {e}; the file is damaged or not from fastMRI: re-download or regenerate it ({MAKE_HINT})"
        ) from None


def _check_finite(path: Path, name: str, data: np.ndarray) -> None:
    bad = int(data.size - np.isfinite(data).sum())
    if bad:
        raise ValueError(
            f"{path}: '{name}' holds {bad} NaN or inf values of {data.size} (non-finite data); re-download or regenerate "
            f"the file ({MAKE_HINT}), or read it with allow_nonfinite=True and replace them (np.nan_to_num)"
        )


def read_fastmri(path, slices=None, allow_nonfinite: bool = False) -> dict:
    """Read a fastMRI HDF5 file (real or simulated).

    Returns a dict: ``kspace`` complex64 tensor (S, [coils,] H, W), ``target`` float32 (S, h, w)
    or None (test files), ``mask`` (W,) or None, ``attrs`` (the file's attributes plus the
    header's sizes), ``multicoil``. ``slices``: an index or slice to read only part of the volume.
    NaN or inf values in what is read raise ValueError unless ``allow_nonfinite``.
    """
    path = Path(path)
    sel = slice(None) if slices is None else slices
    with _open(path) as f:
        if "kspace" not in f:
            raise ValueError(f"{path} has no 'kspace' dataset: not a fastMRI file (found {sorted(f.keys())})")
        if "ismrmrd_header" not in f:
            raise ValueError(f"{path} has no 'ismrmrd_header': fastMRI's loader needs it; regenerate with {MAKE_HINT}")
        n = f["kspace"].shape[0]
        if isinstance(sel, (int, np.integer)) and not -n <= sel < n:
            raise IndexError(f"{path}: slice {sel} is out of range: the file has {n} slices (0 to {n - 1})")
        key = _target_key(f)
        if key is not None and f[key].shape[0] != n:
            raise ValueError(
                f"{path}: '{key}' has {f[key].shape[0]} slices but 'kspace' has {n}: the file is damaged; "
                f"re-download or regenerate it ({MAKE_HINT})"
            )
        attrs = dict(f.attrs)
        attrs.update(_header(path, f))
        try:
            kspace = f["kspace"][sel]
            target = f[key][sel] if key else None
            mask = np.asarray(f["mask"]) if "mask" in f else None
            multicoil = f["kspace"].ndim == 4
        except (OSError, KeyError) as e:
            raise ValueError(f"{path}: could not read its datasets (truncated?): {e}; regenerate with {MAKE_HINT}") from None
    if not np.iscomplexobj(kspace):
        raise ValueError(f"{path}: 'kspace' should be complex, got {kspace.dtype}")
    if not allow_nonfinite:
        _check_finite(path, "kspace", kspace)
        if target is not None:
            _check_finite(path, key, target)
    return {
        "kspace": torch.from_numpy(np.ascontiguousarray(kspace)).to(torch.complex64),
        "target": None if target is None else torch.from_numpy(np.ascontiguousarray(target)).float(),
        "mask": None if mask is None else torch.from_numpy(mask.astype(np.float32)),
        "attrs": attrs,
        "multicoil": multicoil,
    }


def check_fastmri_file(path, full: bool = False) -> dict:
    """Validate one fastMRI file without loading the k-space; returns a summary for an index.

    Raises ValueError (naming the file and the fix) for foreign, corrupt or inconsistent files;
    with ``full``, every slice is read and checked for NaN or inf values (``prepare_fastmri.py``).
    """
    path = Path(path)
    with _open(path) as f:
        if "kspace" not in f or "ismrmrd_header" not in f:
            raise ValueError(f"{path}: not a fastMRI file (needs 'kspace' and 'ismrmrd_header', found {sorted(f.keys())})")
        shape = f["kspace"].shape
        if len(shape) not in (3, 4) or not np.issubdtype(f["kspace"].dtype, np.complexfloating):
            raise ValueError(f"{path}: 'kspace' should be complex (slices, [coils,] H, W), got {f['kspace'].dtype} {shape}")
        header = _header(path, f)
        key = _target_key(f)
        if key is not None and f[key].shape[0] != shape[0]:
            raise ValueError(f"{path}: {key} has {f[key].shape[0]} slices but kspace has {shape[0]}")
        try:  # touch the last slice: a truncated file fails here
            f["kspace"][shape[0] - 1, ..., :1]
        except OSError as e:
            raise ValueError(f"{path}: k-space data unreadable (truncated download?): {e}") from None
        if full:
            try:
                for s in range(shape[0]):
                    _check_finite(path, "kspace", f["kspace"][s])
                if key is not None:
                    _check_finite(path, key, f[key][()])
            except OSError as e:
                raise ValueError(f"{path}: data unreadable (truncated download?): {e}") from None
        return {
            "file": path.name,
            "slices": int(shape[0]),
            "coils": int(shape[1]) if len(shape) == 4 else 1,
            "kspace_shape": list(shape[-2:]),
            "recon_size": list(header["recon_size"][:2]),
            "target": key,
            "acquisition": str(f.attrs.get("acquisition", "")),
            "test": "mask" in f,
        }
