"""BraTS-like tumours: label set, appearance per contrast, mass effect stays diffeomorphic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mricourse as mc
from mricourse.data.tumour import brats_labels


@pytest.fixture(scope="module")
def patient():
    return mc.make_subject(11, resolution=2.0, tumour=True)


def test_brats_label_set(patient):
    assert patient.brats is not None and patient.brats.shape == patient.labels.shape
    assert set(np.unique(patient.brats)) == {0, 1, 2, 4}
    # the tumour core is enclosed: necrosis is surrounded by enhancing tumour, oedema outside
    assert (patient.brats == 2).sum() > (patient.brats == 1).sum() > 0
    assert mc.make_subject(11, resolution=2.0).brats is None


def test_lesion_appearance_per_contrast(patient):
    b, wm = patient.brats, patient.labels == 3
    mean = {
        c: (lambda im: {k: float(im[b == k].mean()) for k in (1, 2, 4)} | {"wm": float(im[wm].mean())})(
            patient.image(c, bias=False)
        )
        for c in ("T1w", "T1w+c", "T2w", "FLAIR")
    }
    assert mean["T1w+c"][4] > 1.3 * mean["T1w+c"]["wm"]  # enhancing rim bright after contrast
    assert mean["T1w+c"][4] > 1.3 * mean["T1w"][4]
    assert mean["T1w"][1] < mean["T1w"]["wm"]  # dark necrotic core on T1
    assert mean["T2w"][2] > 1.3 * mean["T2w"]["wm"]  # bright oedema on T2 and FLAIR
    assert mean["FLAIR"][2] > 1.2 * mean["FLAIR"]["wm"]


def test_mass_effect_is_diffeomorphic(patient):
    assert mc.jacobian_determinant(patient.displacement[None]).min() > 0


def test_brats_labels_from_fractions():
    lesion = torch.tensor([[0.6, 0.1, 0.0, 0.0], [0.1, 0.7, 0.2, 0.0], [0.2, 0.1, 0.7, 0.1]])  # (3, 4)
    assert brats_labels(lesion).tolist() == [1, 2, 4, 0]


def test_slices_with_tumours():
    d = mc.brain_slices(4, contrasts=("T1w", "T1w+c", "T2w", "FLAIR"), size=64, tumour=True, seed=2)
    assert d["images"].shape == (4, 4, 64, 64)
    labels = d["labels"]
    assert set(labels.unique().tolist()) <= {0, 1, 2, 4}
    assert all((labels[n] > 0).any() for n in range(4))  # every slice shows its lesion
