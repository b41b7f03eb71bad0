"""Validate and index real data sets a user has downloaded (fastMRI, IXI, BraTS).

Each ``index_*`` walks the real folder layout, checks every file with the readers of this
package, and returns ``{"dataset", "root", "items", "errors", "summary"}``: ``items`` are what a
loader needs (paths and shapes), ``errors`` name each bad file and the fix. The scripts
``data_scripts/prepare_*.py`` print the summary and save the index as JSON.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import nibabel as nib

from ..utils import atomic_write
from .fastmri import check_fastmri_file
from .nifti import IXI_PATTERN, check_brats_case, read_nifti
from .store import data_dir

__all__ = ["index_fastmri", "index_ixi", "index_brats", "save_index"]


def _root(folder, what: str, url: str) -> Path:
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder; download {what} ({url}), extract it, and pass the folder")
    return root


def _result(dataset: str, root: Path, items: list, errors: list, summary: dict) -> dict:
    return {"dataset": dataset, "root": str(root.resolve()), "items": items, "errors": errors, "summary": summary}


def index_fastmri(folder) -> dict:
    """Index a fastMRI folder: split folders (``multicoil_train``, ``multicoil_val``,
    ``singlecoil_test`` ...) of ``.h5`` files, or a folder of ``.h5`` files."""
    root = _root(folder, "the fastMRI brain or knee data", "https://fastmri.med.nyu.edu")
    splits = sorted(p for p in root.iterdir() if p.is_dir() and p.name.split("_")[0] in ("multicoil", "singlecoil"))
    groups = {p.name: sorted(p.glob("*.h5")) for p in splits} or {root.name: sorted(root.glob("*.h5"))}
    if not any(groups.values()):
        raise FileNotFoundError(
            f"{root}: no .h5 files (expected multicoil_train/ etc. or .h5 files); is this the extracted fastMRI folder?"
        )
    items, errors = [], []
    for split, files in groups.items():
        for f in files:
            try:
                items.append({"split": split, "path": str(f.resolve()), **check_fastmri_file(f, full=True)})
            except (OSError, ValueError) as e:
                errors.append(str(e))
    summary = {
        "files": len(items),
        "slices": sum(i["slices"] for i in items),
        "splits": dict(Counter(i["split"] for i in items)),
        "acquisitions": dict(Counter(i["acquisition"] for i in items)),
        "bad_files": len(errors),
    }
    return _result("fastmri", root, items, errors, summary)


def index_ixi(folder) -> dict:
    """Index IXI: ``IXI-T1/``, ``IXI-T2/``, ``IXI-PD/`` sub-folders (or all files in one folder)
    named ``IXI012-HH-1211-T1.nii.gz``; subjects are matched across contrasts."""
    root = _root(folder, "IXI (IXI-T1.tar, IXI-T2.tar, IXI-PD.tar)", "https://brain-development.org/ixi-dataset/")
    files = sorted(root.glob("IXI-*/*.nii*")) + sorted(root.glob("*.nii*"))
    if not files:
        raise FileNotFoundError(
            f"{root}: no IXI files (expected IXI-T1/IXI012-HH-1211-T1.nii.gz etc.); is this the extracted IXI folder?"
        )
    subjects: dict[str, dict] = defaultdict(dict)
    errors = []
    for f in files:
        m = IXI_PATTERN.match(f.name)
        if m is None:
            errors.append(f"{f}: not an IXI name (expected e.g. IXI012-HH-1211-T1.nii.gz); skipped")
            continue
        try:
            img = nib.load(f)
            if len(img.shape) != 3:
                raise ValueError(f"{f}: expected a 3D volume, got shape {img.shape}")
            read_nifti(f, hint="ixi")  # reads the data: catches truncated downloads
        except (OSError, ValueError, nib.filebasedimages.ImageFileError) as e:
            errors.append(str(e))
            continue
        sid, site = m.group(1), m.group(2)
        subjects[sid].update({"subject": sid, "site": site, m.group(4): str(f.resolve()), f"{m.group(4)}_shape": list(img.shape)})
    items = [subjects[k] for k in sorted(subjects)]
    summary = {
        "subjects": len(items),
        "with": {c: sum(c in s for s in items) for c in ("T1", "T2", "PD")},
        "T1_T2_pairs": sum("T1" in s and "T2" in s for s in items),
        "sites": dict(Counter(s["site"] for s in items)),
        "bad_files": len(errors),
    }
    return _result("ixi", root, items, errors, summary)


def index_brats(folder) -> dict:
    """Index BraTS 2017-2021: one folder per case with ``<case>_{t1,t1ce,t2,flair,seg}.nii.gz``."""
    root = _root(folder, "BraTS (Synapse / Kaggle)", "https://www.synapse.org/brats")
    cases = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not cases:
        raise FileNotFoundError(f"{root}: no case folders (expected e.g. BraTS2021_00000/BraTS2021_00000_t1.nii.gz)")
    items, errors = [], []
    for case in cases:
        try:
            items.append({"path": str(case.resolve()), **check_brats_case(case)})
        except (OSError, ValueError) as e:
            errors.append(str(e))
    summary = {
        "cases": len(items),
        "with_seg": sum(bool(i["labels"]) for i in items),
        "shapes": dict(Counter("x".join(map(str, i["shape"])) for i in items)),
        "bad_cases": len(errors),
    }
    return _result("brats", root, items, errors, summary)


def save_index(index: dict, path=None) -> Path:
    """Save an index as JSON (default ``$MRICOURSE_DATA/prepared/<dataset>.json``), atomically."""
    path = Path(path) if path else data_dir("prepared", create=True) / f"{index['dataset']}.json"
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(index, indent=1))
    return path


def prepare_main(index_fn, description: str, argv=None) -> int:
    """Command line of the ``prepare_*`` scripts: index a folder, print, save; exit 1 on bad files."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("folder", type=Path, help="the extracted data set")
    parser.add_argument("--out", type=Path, help="index file (default $MRICOURSE_DATA/prepared/<dataset>.json)")
    args = parser.parse_args(argv)
    try:
        index = index_fn(args.folder)
    except FileNotFoundError as e:
        print(f"error: {e}")
        return 2
    for err in index["errors"]:
        print(f"bad: {err}")
    print(json.dumps(index["summary"], indent=1))
    print(f"index: {save_index(index, args.out)}")
    return 1 if index["errors"] else 0
