"""The course's data sets as the training recipes read them: 2D slices (``slices``), BraTS cases
(``brats``) and IXI T1 volumes (``ixi``), from a data folder or, for the slices, synthesised in
memory at the data set's sizes for the profile."""

from __future__ import annotations

from pathlib import Path

import torch

from ..profiles import Profile

__all__ = ["load_slices", "load_brats", "load_ixi"]


def load_slices(data: Path | None, profile: Profile, contrasts=("T1w",)) -> tuple[dict, dict]:
    """Train and test slices ``{"images": (N, len(contrasts), H, W), "labels": (N, 1, H, W),
    "subject": (N,)}`` from the ``slices`` data set in ``data``, or synthesised (distinct subjects
    for train and test) when ``data`` is None."""
    import numpy as np

    from .datasets import SliceData
    from .make import dataset_params
    from .slices import brain_slices

    if data is None:
        p = dataset_params("slices", profile.name)
        return tuple(
            brain_slices(n, contrasts=tuple(contrasts), size=p["size"], seed=p["seed"], start=start)
            for n, start in ((p["train"], 0), (p["test"], p["train"]))
        )
    out = []
    for split in ("train", "test"):
        path = Path(data) / f"{split}.npz"
        ds = SliceData(path)  # names the script that makes the file when it is missing
        with np.load(path) as z:
            names = [str(c) for c in z["contrasts"]] if "contrasts" in z.files else ["T1w"]
        missing = [c for c in contrasts if c not in names]
        if missing:
            raise ValueError(
                f"{path}: expected contrasts {list(contrasts)}, the file has {names}: make it again "
                f"(python data_scripts/make_data.py slices --force) or choose contrasts it has (--config contrasts=...)"
            )
        idx = [names.index(c) for c in contrasts]
        out.append({"images": ds.images[:, idx], "labels": ds.labels, "subject": ds.subject})
    return tuple(out)


def load_brats(root: Path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every labelled case under ``root`` as ``(images (4, D, H, W) z-scored over the brain,
    classes (1, D, H, W) int64 in 0-3)``, read by :class:`mricourse.data.datasets.BratsVolumes`."""
    from .datasets import BratsVolumes

    cases = [c for c in BratsVolumes(root) if "seg" in c]
    if len(cases) < 2:
        raise ValueError(
            f"{root}: expected at least 2 BraTS cases with a segmentation (training and validation), got {len(cases)}"
        )
    return [(c["image"], c["seg"][None].long()) for c in cases]


def load_ixi(root: Path) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """The T1-weighted volumes of an IXI folder (``IXI-T1/*.nii.gz``) as (1, D, H, W) tensors with
    the brain's bright end at 1 (:class:`mricourse.data.datasets.NiftiVolumes`), and per volume its
    (1, D, H, W) int64 tissue labels from ``ground_truth/`` (written by ``make_data.py ixi``) or
    None (real IXI): ``(volumes, labels)``."""
    import numpy as np

    from .datasets import NiftiVolumes
    from .nifti import read_nifti

    files = sorted((Path(root) / "IXI-T1").glob("*.nii.gz"))
    if len(files) < 2:
        raise FileNotFoundError(
            f"{Path(root) / 'IXI-T1'}: expected at least 2 IXI T1 volumes; make them with python data_scripts/make_data.py ixi"
        )
    volumes = [item["image"] for item in NiftiVolumes(files)]
    segs = []
    for f in files:
        path = Path(root) / "ground_truth" / f.name.replace("-T1.nii.gz", "-labels.nii.gz")
        segs.append(torch.from_numpy(read_nifti(path, np.int64, hint="ixi")[0])[None] if path.exists() else None)
    return volumes, segs
