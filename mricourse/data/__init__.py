"""Course data: the digital brain (atlas, subjects, slices), tumours, k-space, and readers and
writers in the real formats (fastMRI HDF5, NIfTI/BraTS)."""

from .atlas import TISSUE_NAMES, Atlas, load_atlas
from .brain import CONTRASTS, Subject, make_subject, synthesize
from .cine import CARDIAC_TISSUES, CINE_LABELS, CineSubject, cine_sequences, cine_subject, contraction
from .fields import random_deformation
from .slices import brain_slices

__all__ = [
    "CARDIAC_TISSUES",
    "CINE_LABELS",
    "CineSubject",
    "cine_sequences",
    "cine_subject",
    "contraction",
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
