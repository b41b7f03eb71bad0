"""mricourse: the package behind the course *Deep Learning in MRI -- beyond segmentation*.

``import mricourse as mc`` gives what the chapters use, by name (``mc.fft2c``, ``mc.VarNet``,
``mc.fit``, ...); everything else is reached by its module (``mc.losses.mse``,
``mc.metrics.dice_per_label``, ``mricourse.course.bench``). The layout, bottom to top (a module
imports only from its own layer and those below; ``tests/test_layout.py`` checks it):

- base: ``profiles`` (smoke / cpu / gpu), ``utils``, ``files``
- science: ``fft``, ``masks``, ``physics``, ``signal``, ``spatial``, ``layers``, ``losses``,
  ``metrics``, ``lesions``, ``inference``, ``baselines``, ``registration``, ``degradation``, ``gan_eval``
- ``data/``: the synthetic data sets and their readers and writers
- ``models/``: one file per paper
- ``training/``: ``fit``, schedules, distributed training, the recipes, ``mricourse train``
- ``course/``: the exercise checks, student versions, results, benchmark, figures, the book's
  Sphinx extension
"""

from __future__ import annotations

from ._version import __version__
from .baselines import (
    bm3d_denoise,
    cg_sense,
    classical_denoise,
    compressed_sensing,
    espirit_maps,
    kt_compressed_sensing,
    tune_denoiser,
)
from .course import report
from .course.checks import (
    CheckFailed,
    check_adjoint,
    check_close,
    check_data_consistency,
    check_fft2c,
    check_mask,
    check_metric,
    check_score,
    check_warp,
    check_weighting,
)
from .course.results import Stopwatch, load_results, save_results, start_chapter
from .course.viz import (
    Table,
    compare_table,
    orthogonal_slices,
    plot_history,
    plot_learning_curve,
    show,
    show_flow,
    show_kspace,
    show_labels,
)
from .data import (
    CINE_ACQUISITION,
    CINE_LABELS,
    CineCrops,
    FastMRISlices,
    GANSlices,
    NoisyCrops,
    SRPatches,
    VarNetTransform,
    brain_acquisition,
    brain_slices,
    cine_subject,
    draw_acquisition,
    ensure_dataset,
    load_cine,
    make_subject,
    multicoil_kspace,
    read_fastmri,
    read_nifti,
    t1_slices,
    write_fastmri,
    write_nifti,
)
from .degradation import degrade, interpolate, kspace_truncate, sr_metrics
from .fft import fft2c, ifft2c, ifftnc
from .gan_eval import c2st, diversity, foreground_mask, intensity_histogram, nearest_neighbours, radial_profile
from .inference import from_gan_range, predict, to_gan_range
from .layers import PatchDiscriminator, UNet
from .lesions import add_lesion, disc_and_ring, lesion_centre, lesion_contrast, ring_around
from .losses import discriminator_loss, generator_loss, gradient_difference_loss, ncc_loss
from .masks import MaskFunc, acceleration, equispaced_mask, kt_mask, poisson_disc_mask, random_mask, variable_density_mask
from .metrics import (
    BRATS_REGIONS,
    brats_scores,
    dice,
    displacement_error,
    evaluate,
    folding,
    jacobian_determinant,
    nmse,
    psnr,
    ssim,
    ssim_tensor,
)
from .models.cascade import CascadeNet, DataConsistency, SpaceTimeConv, cascade_step, data_consistency, data_sharing
from .models.cyclegan import CycleGANConfig, cyclegan_step
from .models.dae import DAE, DAEConfig, dae_step
from .models.dcgan import DCGANConfig, DCGANGenerator, gan_step, slerp
from .models.superres import MultiScaleFusionSR, SRGANGenerator, Upsampler, icnr_, pixel_shuffle, pixel_unshuffle, srgan_step
from .models.varnet import VarNet, VarNetBlock, VarNetConfig, acs_mask, state_dict_from_fastmri, varnet_step
from .models.vox2vox import Vox2VoxConfig, Vox2VoxGenerator, largest_component, vox2vox_step
from .models.voxelmorph import VoxelMorph, VoxelMorphConfig, VoxelMorphUNet, voxelmorph_loss, voxelmorph_step
from .physics import MultiCoilMRI, add_noise, add_rician_noise, adjointness_error, coil_maps, g_factor, rss, zero_filled
from .profiles import profile
from .registration import (
    AntsConfig,
    ElastixConfig,
    IterativeConfig,
    ants_register,
    elastix_available,
    elastix_parameter_maps,
    elastix_register,
    iterative_register,
    score_registration,
)
from .signal import SEQUENCES, flair_ti, inversion_recovery, spin_echo, tissue
from .spatial import SpatialTransformer, VecInt, area_resize, gaussian_blur, warp
from .training import recipes
from .training.fit import fit, load_checkpoint
from .training.own_scan import estimate_noise, head_mask, scale_intensities, varnet_reconstruct
from .training.recipes import recipe
from .training.runs import available_weights, load_run, long_run, pretrained, weights_manifest
from .training.schedules import OneCycleSchedule
from .utils import get_device, interactive_session, seed_everything, show_source
