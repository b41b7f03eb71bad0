"""Iterative, intensity-based registration through SimpleITK (the classical baseline of chapter 8).

Reference: S. Klein, M. Staring, K. Murphy, M. A. Viergever, J. P. W. Pluim, "elastix: A Toolbox
for Intensity-Based Medical Image Registration", IEEE TMI 29(1):196-205, 2010.

Each pair is registered from scratch by optimisation: a linear stage (rigid or affine, regular
step gradient descent) then a cubic B-spline free-form deformation (L-BFGS-B), both over a
multi-resolution pyramid, with a Mattes mutual information, correlation or mean-squares metric.
The result is returned as a displacement field in voxels on the fixed grid, in the course's
convention ``warped(x) = moving(x + u(x))`` (arrays are z, y, x; SimpleITK vectors x, y, z), so
every method is scored with the same :func:`mricourse.spatial`. elastix itself (``itk-elastix``,
a large install) is optional: :func:`elastix_available` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
import torch

from .metrics import dice_per_label, displacement_error, folding
from .spatial import warp

__all__ = ["IterativeConfig", "IterativeResult", "iterative_register", "elastix_available", "score_registration", "STRUCTURES"]

#: label values of the digital brain's tissues, and their names
STRUCTURES = {1: "CSF", 2: "GM", 3: "WM"}


def elastix_available() -> bool:
    """True when ``itk-elastix`` (``pip install itk-elastix``) is installed."""
    return importlib.util.find_spec("itk") is not None and importlib.util.find_spec("itk.elastix") is not None


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
    field after each stage ("rigid"/"affine", "bspline"); ``seconds``: cumulative wall time after
    each stage; ``transform``: the SimpleITK transform (fixed -> moving points)."""

    flow: torch.Tensor
    flows: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    transform: sitk.Transform | None = None


def _to_sitk(a, name: str) -> sitk.Image:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    a = np.squeeze(a)
    if a.ndim not in (2, 3) or np.iscomplexobj(a):
        raise ValueError(f"iterative_register: expected a real 2D or 3D {name} image (after squeezing), got {a.dtype} {a.shape}")
    return sitk.GetImageFromArray(a.astype(np.float32))  # spacing 1: voxel units


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
    f, m = _to_sitk(fixed, "fixed"), _to_sitk(moving, "moving")
    if f.GetSize() != m.GetSize():
        raise ValueError(f"iterative_register: expected fixed and moving of the same size, got {f.GetSize()} and {m.GetSize()}")
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
