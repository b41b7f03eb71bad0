"""Iterative, intensity-based registration: the classical baselines of chapter 8.

References: S. Klein, M. Staring, K. Murphy, M. A. Viergever, J. P. W. Pluim, "elastix: A Toolbox
for Intensity-Based Medical Image Registration", IEEE TMI 29(1):196-205, 2010; B. B. Avants,
C. L. Epstein, M. Grossman, J. C. Gee, "Symmetric diffeomorphic image registration with
cross-correlation", Medical Image Analysis 12(1):26-41, 2008 (SyN, the VoxelMorph paper's baseline).

Each pair is registered from scratch by optimisation, by three tools:

- :func:`iterative_register`, SimpleITK: a linear stage (rigid or affine, regular step gradient
  descent) then a cubic B-spline free-form deformation (L-BFGS-B), both over a multi-resolution
  pyramid, with a Mattes mutual information, correlation or mean-squares metric;
- :func:`elastix_register`, elastix itself (``itk-elastix``): affine then B-spline, with elastix's
  default parameter maps (:func:`elastix_parameter_maps`: adaptive stochastic gradient descent on
  randomly sampled voxels, a smoothing pyramid, a bending-energy penalty on the B-spline);
- :func:`ants_register`, ANTs (``antspyx``): affine then SyN, the symmetric diffeomorphic
  registration, with the cross-correlation metric of ANTs' brain script ``antsRegistrationSyN.sh``.

Every result is returned as a displacement field in voxels on the fixed grid, in the course's
convention ``warped(x) = moving(x + u(x))`` (arrays are z, y, x; ITK vectors x, y, z), so every
method is warped and scored by the same :func:`mricourse.warp` and :func:`score_registration`.
``itk`` (slow to import) and ``ants`` are imported on first use only.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from .metrics import dice_per_label, displacement_error, folding
from .spatial import warp

__all__ = [
    "IterativeConfig",
    "IterativeResult",
    "iterative_register",
    "ElastixConfig",
    "elastix_parameter_maps",
    "elastix_register",
    "AntsConfig",
    "ants_register",
    "elastix_available",
    "score_registration",
    "STRUCTURES",
]

#: label values of the digital brain's tissues, and their names
STRUCTURES = {1: "CSF", 2: "GM", 3: "WM"}


def elastix_available() -> bool:
    """True when ``itk-elastix`` (a dependency of the course, ``pip install itk-elastix``) is installed."""
    return importlib.util.find_spec("itk") is not None and importlib.util.find_spec("itk.ElastixPython") is not None


@dataclass
class IterativeConfig:
    """Settings of :func:`iterative_register`.

    Attributes:
        linear: "rigid" (rotation + translation) or "affine", the first stage.
        deformable: run the B-spline stage after the linear one.
        metric: "mattes" (mutual information, any contrasts), "ncc" (global correlation) or "mse".
        bins: histogram bins of Mattes MI.
        sampling: fraction of voxels sampled at random for the metric (None: all, deterministic).
        shrink, sigmas: the pyramid: shrink factor and smoothing (voxels) per level.
        linear_iterations, bspline_iterations: optimiser iterations per level.
        mesh_size: B-spline mesh intervals per axis (8 on a 128-pixel image: a control point
            every 16 pixels).
        seed: the sampler's seed.
    """

    linear: str = "affine"
    deformable: bool = True
    metric: str = "mattes"
    bins: int = 32
    sampling: float | None = None
    shrink: tuple[int, ...] = (4, 2, 1)
    sigmas: tuple[float, ...] = (2.0, 1.0, 0.0)
    linear_iterations: int = 100
    bspline_iterations: int = 30
    mesh_size: int = 8
    seed: int = 0

    def __post_init__(self):
        if self.linear not in ("rigid", "affine"):
            raise ValueError(f"IterativeConfig: expected linear 'rigid' or 'affine', got {self.linear!r}")
        if self.metric not in ("mattes", "ncc", "mse"):
            raise ValueError(f"IterativeConfig: expected metric 'mattes', 'ncc' or 'mse', got {self.metric!r}")
        if len(self.shrink) != len(self.sigmas):
            raise ValueError(f"IterativeConfig: shrink {self.shrink} and sigmas {self.sigmas} need one entry per level")


@dataclass
class IterativeResult:
    """``flow``: the final displacement (dims, *spatial) float32 tensor in voxels; ``flows``: the
    field after each stage ("rigid"/"affine", then "bspline" or "syn"); ``seconds``: cumulative
    wall time after each stage (elastix and ANTs run their stages in one call: the total only,
    under the last stage); ``transform``: the SimpleITK transform (fixed -> moving points), or
    elastix's result transform parameters (``itk.ParameterObject``; None for ANTs, whose transform
    files are temporary); ``warped``: the moving image resampled by the tool itself (elastix,
    ANTs; linear interpolation, 0 outside), to check the field against."""

    flow: torch.Tensor
    flows: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    transform: object | None = None
    warped: torch.Tensor | None = None


def _pair(fixed, moving, fn: str, min_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Check a fixed/moving pair: real 2D or 3D arrays or tensors (singleton dims squeezed), the
    same size, finite; returned as contiguous float32 arrays (z, y, x)."""
    out = []
    for a, name in ((fixed, "fixed"), (moving, "moving")):
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise TypeError(f"{fn}: expected a real {name} image (float, integer or bool), got dtype {a.dtype}")
        a = np.squeeze(a)
        if a.ndim not in (2, 3):
            raise ValueError(f"{fn}: expected a 2D or 3D {name} image, (H, W) or (D, H, W) after squeezing, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{fn}: expected finite values in the {name} image, got NaN or inf")
        out.append(np.ascontiguousarray(a, dtype=np.float32))
    if out[0].shape != out[1].shape:
        raise ValueError(f"{fn}: expected fixed and moving of the same size, got {out[0].shape} and {out[1].shape}")
    if min(out[0].shape) < min_size:
        raise ValueError(f"{fn}: expected at least {min_size} voxels along every axis for its pyramid, got {out[0].shape}")
    return out[0], out[1]


def _to_sitk(a: np.ndarray) -> sitk.Image:
    return sitk.GetImageFromArray(a)  # spacing 1: voxel units


def _method(cfg: IterativeConfig) -> sitk.ImageRegistrationMethod:
    R = sitk.ImageRegistrationMethod()
    if cfg.metric == "mattes":
        R.SetMetricAsMattesMutualInformation(numberOfHistogramBins=cfg.bins)
    elif cfg.metric == "ncc":
        R.SetMetricAsCorrelation()
    else:
        R.SetMetricAsMeanSquares()
    if cfg.sampling is None:
        R.SetMetricSamplingStrategy(R.NONE)
    else:
        R.SetMetricSamplingStrategy(R.RANDOM)
        R.SetMetricSamplingPercentage(cfg.sampling, cfg.seed)
    R.SetInterpolator(sitk.sitkLinear)
    R.SetShrinkFactorsPerLevel(list(cfg.shrink))
    R.SetSmoothingSigmasPerLevel(list(cfg.sigmas))
    return R


def _flow(transform: sitk.Transform, reference: sitk.Image) -> torch.Tensor:
    """The transform as a displacement (dims, *spatial) in voxels, axes in array order."""
    f = sitk.TransformToDisplacementFieldFilter()
    f.SetReferenceImage(reference)
    f.SetOutputPixelType(sitk.sitkVectorFloat64)
    disp = sitk.GetArrayFromImage(f.Execute(transform))  # (*spatial, dims), vectors x, y(, z)
    disp = np.moveaxis(disp[..., ::-1], -1, 0)  # (dims, *spatial), array axis order
    return torch.from_numpy(np.ascontiguousarray(disp, dtype=np.float32))


def iterative_register(fixed, moving, cfg: IterativeConfig | None = None) -> IterativeResult:
    """Register ``moving`` to ``fixed`` (2D or 3D arrays/tensors, squeezed) by optimisation.

    Returns an :class:`IterativeResult`; warp images with ``mc.warp(moving, result.flow[None])``.
    The wall time covers everything from the arrays to the displacement field.
    """
    cfg = cfg or IterativeConfig()
    t0 = time.perf_counter()
    f, m = map(_to_sitk, _pair(fixed, moving, "iterative_register"))
    dims = f.GetDimension()
    result = IterativeResult(flow=torch.zeros(0))

    # 1. linear: rigid (Euler) or affine, started by aligning the image centres
    linear = sitk.Euler2DTransform() if dims == 2 else sitk.Euler3DTransform()
    if cfg.linear == "affine":
        linear = sitk.AffineTransform(dims)
    linear = sitk.CenteredTransformInitializer(f, m, linear, sitk.CenteredTransformInitializerFilter.GEOMETRY)
    R = _method(cfg)
    R.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=cfg.linear_iterations, gradientMagnitudeTolerance=1e-8
    )
    R.SetOptimizerScalesFromPhysicalShift()
    R.SetInitialTransform(linear, inPlace=True)
    R.Execute(f, m)
    transform: sitk.Transform = linear
    result.flows[cfg.linear] = _flow(linear, f)
    result.seconds[cfg.linear] = time.perf_counter() - t0

    # 2. cubic B-spline free-form deformation on top of the linear transform (L-BFGS-B)
    if cfg.deformable:
        bspline = sitk.BSplineTransformInitializer(f, [cfg.mesh_size] * dims, order=3)
        R = _method(cfg)
        R.SetMovingInitialTransform(linear)
        R.SetInitialTransform(bspline, inPlace=True)
        R.SetOptimizerAsLBFGSB(
            gradientConvergenceTolerance=1e-5,
            numberOfIterations=cfg.bspline_iterations,
            maximumNumberOfCorrections=5,
            maximumNumberOfFunctionEvaluations=1000,
            costFunctionConvergenceFactor=1e7,
        )
        R.Execute(f, m)
        transform = sitk.CompositeTransform([linear, bspline])  # x -> linear(bspline(x))
        result.flows["bspline"] = _flow(transform, f)
        result.seconds["bspline"] = time.perf_counter() - t0

    result.flow = result.flows["bspline" if cfg.deformable else cfg.linear]
    result.transform = transform
    return result


@dataclass
class ElastixConfig:
    """Settings of :func:`elastix_register` (elastix's default affine and B-spline maps otherwise).

    Attributes:
        metric: "mattes" (AdvancedMattesMutualInformation, any contrasts) or "ncc"
            (AdvancedNormalizedCorrelation, one contrast).
        bins: histogram bins of Mattes MI.
        resolutions: levels of the smoothing pyramid (elastix smooths, it does not shrink).
        affine_iterations, bspline_iterations: optimiser iterations per level.
        samples: voxels drawn at random for each iteration's metric and gradient.
        grid_spacing: the final B-spline control-point spacing in voxels (coarser levels use 2 and
            sqrt(2) times this); the main regularisation: wider is smoother.
        bending: weight of the bending-energy penalty of the B-spline (0: off).
        seed: elastix's random seed (the sampler).
    """

    metric: str = "mattes"
    bins: int = 32
    resolutions: int = 3
    affine_iterations: int = 128
    bspline_iterations: int = 128
    samples: int = 2048
    grid_spacing: float = 16.0
    bending: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.metric not in ("mattes", "ncc"):
            raise ValueError(f"ElastixConfig: expected metric 'mattes' or 'ncc', got {self.metric!r}")
        if self.resolutions < 1 or self.grid_spacing <= 0 or self.bending < 0:
            raise ValueError(
                "ElastixConfig: expected resolutions >= 1, grid_spacing > 0 and bending >= 0, "
                f"got {self.resolutions}, {self.grid_spacing}, {self.bending}"
            )


def elastix_parameter_maps(cfg: ElastixConfig | None = None) -> list[dict[str, list[str]]]:
    """elastix's parameter maps for :func:`elastix_register`, affine then B-spline, as plain dicts.

    They are the maps of ``itk.ParameterObject.GetDefaultParameterMap("affine" | "bspline")``
    (adaptive stochastic gradient descent with automatic step sizes, random-coordinate sampling,
    a smoothing pyramid, Mattes MI with a bending-energy penalty on the B-spline) with the settings
    of ``cfg``, and a linear final interpolation, like :func:`mricourse.warp`.
    """
    cfg = cfg or ElastixConfig()
    metric = {"mattes": "AdvancedMattesMutualInformation", "ncc": "AdvancedNormalizedCorrelation"}[cfg.metric]
    common = {
        "FixedImagePyramid": ["FixedSmoothingImagePyramid"],
        "MovingImagePyramid": ["MovingSmoothingImagePyramid"],
        "NumberOfResolutions": [str(cfg.resolutions)],
        "Interpolator": ["LinearInterpolator"],
        "Optimizer": ["AdaptiveStochasticGradientDescent"],
        "AutomaticParameterEstimation": ["true"],
        "ImageSampler": ["RandomCoordinate"],
        "NumberOfSpatialSamples": [str(cfg.samples)],
        "NewSamplesEveryIteration": ["true"],
        "CheckNumberOfSamples": ["true"],
        "MaximumNumberOfSamplingAttempts": ["8"],
        "NumberOfSamplesForExactGradient": ["4096"],
        "NumberOfHistogramBins": [str(cfg.bins)],
        "RandomSeed": [str(cfg.seed)],
        "Resampler": ["DefaultResampler"],
        "ResampleInterpolator": ["FinalBSplineInterpolator"],
        "FinalBSplineInterpolationOrder": ["1"],
        "DefaultPixelValue": ["0"],
        "WriteResultImage": ["true"],
        "WriteIterationInfo": ["false"],
        "ResultImageFormat": ["nii"],
    }
    affine = {
        **common,
        "Registration": ["MultiResolutionRegistration"],
        "Metric": [metric],
        "Transform": ["AffineTransform"],
        "AutomaticScalesEstimation": ["true"],
        "MaximumNumberOfIterations": [str(cfg.affine_iterations)],
    }
    bspline = {
        **common,
        "Registration": ["MultiMetricMultiResolutionRegistration" if cfg.bending > 0 else "MultiResolutionRegistration"],
        "Metric": [metric, "TransformBendingEnergyPenalty"] if cfg.bending > 0 else [metric],
        "Transform": ["BSplineTransform"],
        "FinalGridSpacingInPhysicalUnits": [f"{cfg.grid_spacing:g}"],  # spacing 1: voxels
        "GridSpacingSchedule": [f"{2 ** ((cfg.resolutions - 1 - level) / 2):.6g}" for level in range(cfg.resolutions)],
        "MaximumNumberOfIterations": [str(cfg.bspline_iterations)],
    }
    if cfg.bending > 0:
        bspline.update({"Metric0Weight": ["1.0"], "Metric1Weight": [f"{cfg.bending:g}"]})
    return [affine, bspline]


def _itk_flow(field) -> torch.Tensor:
    """An ITK displacement field image (vectors x, y(, z)) as (dims, *spatial) in array axis order."""
    import itk

    disp = itk.array_from_image(field)  # (*spatial, dims), vectors x, y(, z)
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(disp[..., ::-1], -1, 0), dtype=np.float32))


def elastix_register(fixed, moving, cfg: ElastixConfig | None = None) -> IterativeResult:
    """Register ``moving`` to ``fixed`` (2D or 3D arrays/tensors, squeezed) with elastix: affine,
    then a cubic B-spline on top of it (:func:`elastix_parameter_maps`).

    Returns an :class:`IterativeResult`: ``flow`` from transformix's deformation field (fixed ->
    moving points, in voxels), ``flows`` "affine" and "bspline", the total wall time (arrays to
    field) under ``seconds["bspline"]``, elastix's result image as ``warped``.
    """
    import itk

    cfg = cfg or ElastixConfig()
    t0 = time.perf_counter()
    f, m = _pair(fixed, moving, "elastix_register", min_size=4)
    fi, mi = itk.image_from_array(f), itk.image_from_array(m)  # spacing 1, origin 0: voxel units
    params = itk.ParameterObject.New()
    for p in elastix_parameter_maps(cfg):
        params.AddParameterMap(p)
    warped, found = itk.elastix_registration_method(fi, mi, parameter_object=params, log_to_console=False)
    with tempfile.TemporaryDirectory() as out:  # transformix writes its field to a file too: not into the working folder
        flow = _itk_flow(itk.transformix_deformation_field(mi, found, output_directory=out))
        result = IterativeResult(flow=flow, transform=found, seconds={"bspline": time.perf_counter() - t0})
        result.warped = torch.from_numpy(np.array(itk.array_from_image(warped), dtype=np.float32))
        affine = itk.ParameterObject.New()
        affine.AddParameterMap(found.GetParameterMap(0))
        result.flows = {"affine": _itk_flow(itk.transformix_deformation_field(mi, affine, output_directory=out)), "bspline": flow}
    return result


@dataclass
class AntsConfig:
    """Settings of :func:`ants_register` (ANTs' affine stage of ``type_of_transform="SyN"``
    otherwise: Mattes MI, 4 levels).

    Attributes:
        metric: the SyN stage's metric: "cc" (local cross-correlation, the brain setting of
            ``antsRegistrationSyN.sh``), "mattes" (mutual information, any contrasts) or "meansquares".
        radius: the CC window radius in voxels (Mattes uses 32 bins, mean squares nothing).
        grad_step: SyN's gradient step.
        flow_sigma: smoothing (voxels) of each update field: the main regularisation.
        total_sigma: smoothing of the total field (0: none, as ANTs' default).
        iterations: SyN iterations per level, coarse to fine (shrink 2^(L-1) ... 1, smoothing
            L-1 ... 0 voxels).
        seed: ANTs' random seed, nonzero (ANTs seeds from the clock when it is 0): the affine stage
            samples voxels at random. With several threads, runs can still differ slightly.
    """

    metric: str = "cc"
    radius: int = 4
    grad_step: float = 0.2
    flow_sigma: float = 3.0
    total_sigma: float = 0.0
    iterations: tuple[int, ...] = (40, 20, 10)
    seed: int = 1

    def __post_init__(self):
        if self.metric not in ("cc", "mattes", "meansquares"):
            raise ValueError(f"AntsConfig: expected metric 'cc', 'mattes' or 'meansquares', got {self.metric!r}")
        if not self.iterations or self.grad_step <= 0 or self.flow_sigma < 0 or self.total_sigma < 0:
            raise ValueError(
                "AntsConfig: expected iterations for at least one level, grad_step > 0 and sigmas >= 0, "
                f"got {self.iterations}, {self.grad_step}, {self.flow_sigma}, {self.total_sigma}"
            )
        if self.seed < 1:
            raise ValueError(f"AntsConfig: expected a seed >= 1 (ANTs seeds from the clock when it is 0), got {self.seed}")


def ants_register(fixed, moving, cfg: AntsConfig | None = None) -> IterativeResult:
    """Register ``moving`` to ``fixed`` (2D or 3D arrays/tensors, squeezed) with ANTs: affine, then
    SyN (``ants.registration(..., type_of_transform="SyN")``).

    Returns an :class:`IterativeResult`: ``flow``, the composed forward transforms as one
    displacement field (fixed -> moving points, in voxels), ``flows`` "affine" and "syn", the
    total wall time (arrays to field) under ``seconds["syn"]``, ANTs' warped moving image as
    ``warped``. ANTs writes its transforms to a temporary folder, removed afterwards.
    """
    # ITK's threads split the metric's sums differently from run to run: one thread makes SyN
    # repeatable (read once, when ANTs' ITK first starts threads; a user's own setting is kept)
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
    import ants
    import ants.config

    cfg = cfg or AntsConfig()
    t0 = time.perf_counter()
    f, m = _pair(fixed, moving, "ants_register", min_size=2 ** (len(cfg.iterations) + 1))
    fi, mi = ants.from_numpy(f), ants.from_numpy(m)  # ANTs' axes are the array's: no reordering
    sampling = {"cc": cfg.radius, "mattes": 32, "meansquares": 0}[cfg.metric]
    metric = {"cc": "CC", "mattes": "mattes", "meansquares": "meansquares"}[cfg.metric]
    seed, ants.config._random_seed = ants.config._random_seed, cfg.seed  # where antspy reads its seed
    try:
        with tempfile.TemporaryDirectory(prefix="mricourse-ants-") as tmp:
            reg = ants.registration(
                fi, mi, type_of_transform="SyN", outprefix=str(Path(tmp) / "reg_"), grad_step=cfg.grad_step,
                flow_sigma=cfg.flow_sigma, total_sigma=cfg.total_sigma, syn_metric=metric, syn_sampling=sampling,
                reg_iterations=tuple(cfg.iterations),
            )  # fmt: skip
            fwd = reg["fwdtransforms"]  # [warp, affine]: applied right to left to the fixed points

            def composed(transforms, name):
                return ants.image_read(ants.apply_transforms(fi, mi, transforms, compose=str(Path(tmp) / name))).numpy()

            flow = torch.from_numpy(np.ascontiguousarray(np.moveaxis(composed(fwd, "all_"), -1, 0), dtype=np.float32))
            result = IterativeResult(flow=flow, seconds={"syn": time.perf_counter() - t0})
            affine = np.moveaxis(composed(fwd[-1:], "affine_"), -1, 0)
            result.flows = {"affine": torch.from_numpy(np.ascontiguousarray(affine, dtype=np.float32)), "syn": flow}
            result.warped = torch.from_numpy(np.array(reg["warpedmovout"].numpy(), dtype=np.float32))
    finally:
        ants.config._random_seed = seed
    return result


def score_registration(flow, moving_labels, fixed_labels, true_flow=None, structures: dict | None = None, ignore=None) -> dict:
    """Score displacements (B, dims, *spatial) of B pairs; the metrics are means over the pairs.

    Moving labels (B or 1, 1, *spatial) are warped with nearest-neighbour sampling and compared to
    the fixed labels: ``dice <name>`` per structure and their mean ``dice``; ``folding %`` of the
    voxels with det J <= 0 (whole image); with ``true_flow``, ``error px``, the mean end-point error
    inside the fixed brain (labels > 0). ``ignore`` (B, 1, *spatial) bool: voxels left out of the
    Dice and the error (e.g. a lesion).
    """
    structures = structures or STRUCTURES
    flow = torch.as_tensor(flow).float()
    n = flow.shape[0]
    fixed_labels = torch.as_tensor(fixed_labels)
    moving_labels = torch.as_tensor(moving_labels).expand(n, *fixed_labels.shape[1:])
    warped = warp(moving_labels.float(), flow, mode="nearest").long()  # (B, 1, *spatial)
    keep = torch.ones_like(fixed_labels, dtype=torch.bool) if ignore is None else ~torch.as_tensor(ignore).bool()
    per = np.array([list(dice_per_label(warped[i][keep[i]], fixed_labels[i][keep[i]], structures).values()) for i in range(n)])
    out = {f"dice {name}": float(v) for name, v in zip(structures.values(), per.mean(0))}
    out["dice"] = float(per.mean())
    out["folding %"] = float(np.mean([folding(flow[i : i + 1]) for i in range(n)]))
    if true_flow is not None:
        brain = (fixed_labels[:, 0] > 0) & keep[:, 0]
        out["error px"] = float(np.mean([displacement_error(flow[i : i + 1], true_flow[i : i + 1], brain[i]) for i in range(n)]))
    return out
