"""Course data: the digital brain (atlas, subjects, slices), tumours, multi-coil k-space, readers
and writers in the real formats (fastMRI HDF5, NIfTI/BraTS/IXI), torch Datasets, and the data
sets written to ``$MRICOURSE_DATA`` (``ensure_dataset``, ``data_scripts/make_data.py``)."""

from .atlas import TISSUE_NAMES, Atlas, load_atlas
from .brain import CONTRASTS, Subject, make_subject, synthesize
from .cine import CARDIAC_TISSUES, CINE_ACQUISITION, CINE_LABELS, CineSubject, cine_sequences, cine_subject, contraction
from .cine_sets import CineCrops, load_cine
from .datasets import BratsVolumes, FastMRISlices, NiftiVolumes, RegistrationPairs, SliceData, VarNetTransform, crop_readout
from .fastmri import check_fastmri_file, read_fastmri, write_fastmri
from .fields import random_deformation
from .kspace import brain_acquisition, center_crop, draw_acquisition, multicoil_kspace
from .make import DATASETS, dataset_params, ensure_dataset, make_dataset
from .nifti import check_brats_case, read_brats_case, read_nifti, write_brats_case, write_nifti
from .patches import SRPatches
from .prepare import index_brats, index_fastmri, index_ixi
from .slices import brain_slices
from .store import data_dir
from .t1slices import T1_SLICES, GANSlices, NoisyCrops, t1_slices
from .tumour import BRATS_LABELS

__all__ = [
    "CARDIAC_TISSUES",
    "CINE_ACQUISITION",
    "CINE_LABELS",
    "CineSubject",
    "cine_sequences",
    "cine_subject",
    "contraction",
    "CineCrops",
    "load_cine",
    "TISSUE_NAMES",
    "Atlas",
    "load_atlas",
    "CONTRASTS",
    "Subject",
    "make_subject",
    "synthesize",
    "random_deformation",
    "brain_slices",
    "t1_slices",
    "T1_SLICES",
    "GANSlices",
    "NoisyCrops",
    "BRATS_LABELS",
    "multicoil_kspace",
    "brain_acquisition",
    "draw_acquisition",
    "center_crop",
    "write_fastmri",
    "read_fastmri",
    "check_fastmri_file",
    "write_nifti",
    "read_nifti",
    "write_brats_case",
    "read_brats_case",
    "check_brats_case",
    "SliceData",
    "SRPatches",
    "FastMRISlices",
    "VarNetTransform",
    "crop_readout",
    "BratsVolumes",
    "NiftiVolumes",
    "RegistrationPairs",
    "DATASETS",
    "dataset_params",
    "make_dataset",
    "ensure_dataset",
    "data_dir",
    "index_fastmri",
    "index_ixi",
    "index_brats",
]
