"""Course data: the digital brain (atlas, subjects, slices), tumours, k-space, and readers and
writers in the real formats (fastMRI HDF5, NIfTI/BraTS)."""

from .atlas import TISSUE_NAMES, Atlas, load_atlas
from .brain import CONTRASTS, Subject, make_subject, synthesize
from .fields import random_deformation
from .slices import brain_slices

__all__ = [
    "TISSUE_NAMES",
    "Atlas",
    "load_atlas",
    "CONTRASTS",
    "Subject",
    "make_subject",
    "synthesize",
    "random_deformation",
    "brain_slices",
]
