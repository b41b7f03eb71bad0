"""mricourse: the package behind the course *Deep Learning in MRI -- beyond segmentation*.

Everything is re-exported flat: ``import mricourse as mc; mc.fft2c, mc.fit, ...``. Where to find:

- physics: ``fft`` (centred FFTs), ``masks`` (undersampling), ``physics`` (operators, coils,
  noise, RSS), ``signal`` (tissue parameters, signal equations)
- classical reconstruction: ``baselines`` (ESPIRiT maps, CG-SENSE, compressed sensing via sigpy)
- learning: ``layers`` (U-Net, PatchGAN, spatial transformer), ``models/`` (one file per paper),
  ``training`` (``fit``, schedules, recipes, ``mricourse train``), ``metrics``, ``gan_eval`` (novelty and realism of generated images)
- course: ``profile``, ``results``, ``viz``, ``utils``, ``checks`` (``mc.check_*`` for the exercises),
  ``exercises`` (student versions; ``python -m mricourse.exercises``)
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import report
from .baselines import (
    DENOISERS,
    acs_width,
    cg_sense,
    classical_denoise,
    compressed_sensing,
    espirit_maps,
    kt_compressed_sensing,
    tune_denoiser,
)
from .checks import (
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
from .data import (
    CINE_LABELS,
    CONTRASTS,
    Atlas,
    BratsVolumes,
    CineCrops,
    CineSubject,
    FastMRISlices,
    GANSlices,
    NiftiVolumes,
    NoisyCrops,
    RegistrationPairs,
    SliceData,
    SRPatches,
    Subject,
    VarNetTransform,
    brain_slices,
    cine_sequences,
    cine_subject,
    data_dir,
    ensure_dataset,
    load_atlas,
    load_cine,
    make_subject,
    multicoil_kspace,
    read_brats_case,
    read_fastmri,
    read_nifti,
    t1_slices,
    write_brats_case,
    write_fastmri,
    write_nifti,
)
from .data.fields import gaussian_blur
from .degrade import crop_to_multiple, degrade, factors, interpolate, kspace_truncate, sr_metrics
from .fft import fft2c, fft3c, fftnc, from_channels, ifft2c, ifft3c, ifftnc, to_channels
from .gan_eval import C2STResult, c2st, foreground_mask, intensity_histogram, ncc, nearest_neighbours, radial_profile
from .layers import ConvBlock, PatchDiscriminator, SpatialTransformer, UNet, VecInt, identity_grid, resize_flow, warp
from .losses import dice_loss, gradient_loss, mse, ncc_loss, one_hot
from .masks import (
    MaskFunc,
    acceleration,
    center_mask,
    equispaced_mask,
    kt_mask,
    poisson_disc_mask,
    random_mask,
    variable_density_mask,
)
from .metrics import (
    BRATS_REGIONS,
    brats_scores,
    dice,
    displacement_error,
    evaluate,
    folding,
    hd95,
    jacobian_determinant,
    nmse,
    psnr,
    ssim,
)
from .models.cascade import (
    CascadeConfig,
    CascadeNet,
    DataConsistency,
    SpaceTimeConv,
    cascade_step,
    data_consistency,
    data_sharing,
)
from .models.cyclegan import CycleGANConfig, ImagePool, ResnetGenerator, cyclegan_networks, cyclegan_step
from .models.dae import DAE, DAEConfig, add_gaussian_noise, dae_step
from .models.dcgan import (
    DCGANConfig,
    Discriminator,
    Generator,
    discriminator_loss,
    from_gan_range,
    gan_step,
    generator_loss,
    slerp,
    to_gan_range,
)
from .models.superres import (
    MultiScaleFusionConfig,
    MultiScaleFusionSR,
    SRGANConfig,
    SRGANDiscriminator,
    SRGANGenerator,
    Upsampler,
    gradient_difference_loss,
    icnr_,
    pixel_shuffle,
    pixel_unshuffle,
    srgan_step,
)
from .models.varnet import (
    NormUNet,
    SensitivityModel,
    VarNet,
    VarNetBlock,
    VarNetConfig,
    acs_mask,
    sens_expand,
    sens_reduce,
    state_dict_from_fastmri,
    varnet_step,
)
from .models.vox2vox import (
    Vox2VoxConfig,
    Vox2VoxGenerator,
    generalised_dice_loss,
    largest_component,
    vox2vox_networks,
    vox2vox_step,
)
from .models.voxelmorph import VoxelMorph, VoxelMorphConfig, VoxelMorphUNet, VxmOutput, voxelmorph_loss, voxelmorph_step
from .physics import (
    MultiCoilMRI,
    SingleCoilMRI,
    add_noise,
    adjointness_error,
    coil_maps,
    complex_noise,
    g_factor,
    rss,
    zero_filled,
)
from .profile import Profile, profile
from .registration import STRUCTURES, IterativeConfig, IterativeResult, elastix_available, iterative_register, score_registration
from .results import Stopwatch, load_results, results_dir, save_results
from .signal import (
    SEQUENCES,
    TISSUES,
    Tissue,
    bssfp,
    flair_ti,
    inversion_recovery,
    sequence_signal,
    spin_echo,
    spoiled_gre,
    t1_with_contrast,
    tissue,
)
from .training import recipes
from .training.fit import History, NonFiniteLoss, TrainConfig, fit, load_checkpoint, save_checkpoint, supervised_step
from .training.recipes import Recipe, recipe
from .training.schedules import ConstantSchedule, LinearDecaySchedule, OneCycleSchedule, Schedule, scheduled
from .utils import atomic_write, get_device, interactive_session, on_colab, seed_everything, show_source, to_device
from .viz import Table, compare_table, montage, plot_history, show, show_flow, show_kspace
