"""Random smooth fields for the digital brain: Gaussian blur, smooth noise, bias fields, and
random diffeomorphisms (affine + scaling and squaring of a stationary velocity field).

Everything works on batches in 2D (B, C, H, W) or 3D (B, C, D, H, W); displacements are in voxels
with the convention of :func:`mricourse.spatial.warp`: ``out(x) = src(x + u(x))``.
Randomness comes from explicit seeds so that a subject depends only on its seed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..spatial import VecInt, gaussian_blur, resize_flow

__all__ = ["rng_for", "torch_generator", "gaussian_blur", "smooth_noise", "bias_field", "random_affine", "random_deformation"]


def rng_for(*keys: int) -> np.random.Generator:
    """A NumPy generator determined only by the integer ``keys`` (e.g. ``(seed, subject, purpose)``)."""
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys])


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A torch CPU generator seeded from ``rng`` (deterministic)."""
    return torch.Generator().manual_seed(int(rng.integers(0, 2**62)))


def _randn(shape, generator) -> torch.Tensor:
    """Standard normal (B, *shape[1:]); ``generator`` is one generator or a list, one per item."""
    if isinstance(generator, (list, tuple)):
        return torch.cat([torch.randn(1, *shape[1:], generator=g) for g in generator])
    return torch.randn(*shape, generator=generator)


def smooth_noise(shape: tuple[int, ...], spacing: float, channels: int = 1, batch: int = 1, generator=None) -> torch.Tensor:
    """Smooth Gaussian random field of about unit standard deviation, (batch, channels, *shape).

    White noise on a coarse grid with one node every ``spacing`` voxels, blurred (sigma 0.8 node),
    renormalised, and upsampled (linear interpolation) to ``shape``: features of size ~``spacing``.
    ``generator``: a torch generator, or a list of them (one per batch item, batch = its length).
    """
    dims = len(shape)
    batch = len(generator) if isinstance(generator, (list, tuple)) else batch
    coarse = [max(2, int(math.ceil(s / spacing)) + 1) + 6 for s in shape]  # 3 nodes of margin
    w = _randn((batch, channels, *coarse), generator)
    w = gaussian_blur(w, 0.8) * math.sqrt(2 * math.sqrt(math.pi) * 0.8) ** dims  # keep std ~ 1
    w = w[(slice(None), slice(None)) + (slice(3, -3),) * dims]  # drop the zero-padded border
    mode = "bilinear" if dims == 2 else "trilinear"
    return F.interpolate(w, size=tuple(shape), mode=mode, align_corners=True)


def bias_field(shape: tuple[int, ...], strength: float, generator, batch: int = 1) -> torch.Tensor:
    """Multiplicative bias field ``exp(strength * n(x))`` with ``n`` a very smooth unit field,
    (batch, 1, *shape); ``strength`` 0.2 gives about +-20 % shading."""
    n = smooth_noise(shape, spacing=max(shape) / 2.0, batch=batch, generator=generator)
    return torch.exp(strength * n)


def random_affine(dims: int, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Random (dims, dims) matrix near the identity: rotation (up to ~8 degrees per plane),
    anisotropic scale (+-7 %) and shear (+-3 %), all multiplied by ``strength``."""
    if strength == 0:
        return np.eye(dims)
    scale = np.diag(1 + strength * rng.uniform(-0.07, 0.07, dims))
    shear = np.eye(dims) + np.triu(strength * rng.uniform(-0.03, 0.03, (dims, dims)), 1)
    rot = np.eye(dims)
    for i in range(dims):
        for j in range(i + 1, dims):
            a = math.radians(strength * rng.uniform(-8, 8))
            r = np.eye(dims)
            r[i, i] = r[j, j] = math.cos(a)
            r[i, j], r[j, i] = -math.sin(a), math.sin(a)
            rot = rot @ r
    return rot @ scale @ shear


def random_deformation(
    shape: tuple[int, ...],
    voxel_mm: float,
    rng,
    strength: float = 1.0,
    smoothness_mm: float = 24.0,
    amplitude_mm: float = 3.0,
    shift_mm: float = 4.0,
    velocity: torch.Tensor | None = None,
) -> torch.Tensor:
    """Random diffeomorphisms as displacements (B, dims, *shape) in voxels, ``phi(x) = x + u(x)``.

    ``phi(x) = c + M (x + w(x) - c) + t``: ``w = exp(v)`` integrates a smooth random velocity
    ``v`` (features of ``smoothness_mm``, about ``amplitude_mm`` per component) by scaling and
    squaring, ``M`` is :func:`random_affine`, ``t`` a shift (up to ``shift_mm``) and ``c`` the
    centre, so ``det J = det(M) det(I + dw) > 0``. ``rng``: one NumPy generator (B = 1) or a list
    (one per item). An extra ``velocity`` (B, dims, *shape) in voxels (e.g. a tumour's mass
    effect) is added to ``v`` before integration. ``strength`` scales everything.
    """
    rngs = list(rng) if isinstance(rng, (list, tuple)) else [rng]
    dims, b = len(shape), len(rngs)
    gens = [torch_generator(r) for r in rngs]
    m = torch.stack([torch.as_tensor(random_affine(dims, r, strength), dtype=torch.float32) for r in rngs])  # (B, dims, dims)
    t = torch.stack(
        [torch.as_tensor(strength * r.uniform(-shift_mm, shift_mm, dims) / voxel_mm, dtype=torch.float32) for r in rngs]
    )
    half = tuple(max(4, s // 2) for s in shape)  # integrate at half resolution (VoxelMorph)
    v = smooth_noise(half, spacing=smoothness_mm / (2 * voxel_mm), channels=dims, generator=gens)
    v = v * (strength * amplitude_mm / (2 * voxel_mm))
    if velocity is not None:
        v = v + resize_flow(velocity.float(), half)
    w = resize_flow(VecInt(half, nsteps=7)(v), shape)  # (B, dims, *shape)
    axes = [torch.arange(s, dtype=torch.float32) for s in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (dims, *shape)
    c = torch.tensor([(s - 1) / 2 for s in shape]).view(1, dims, *([1] * dims))
    p = (grid + w - c).reshape(b, dims, -1)  # (B, dims, n)
    phi = (m @ p).reshape(b, dims, *shape) + c + t.view(b, dims, *([1] * dims))
    return phi - grid
