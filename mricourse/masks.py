"""Undersampling masks. All masks are centred (DC in the middle), float32, 1 = sampled.

Cartesian masks act on the phase-encoding direction, the last image dim (W), and are returned
with shape (1, 1, 1, W) so they broadcast against (B, coils, H, W) k-space; k-t masks are
(1, T, 1, W) for dynamic data (B, T, H, W); Poisson-disc masks are 2D, (1, 1, H, W).

The fastMRI masks reproduce ``fastmri.data.subsample.RandomMaskFunc``, ``EquispacedMaskFunc``
and ``EquispacedMaskFractionFunc`` (0.3.0) draw for draw: same seed, same mask.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

__all__ = [
    "center_mask",
    "random_mask",
    "equispaced_mask",
    "variable_density_mask",
    "kt_mask",
    "poisson_disc_mask",
    "acceleration",
    "MaskFunc",
]


def _check(num_cols: int, accel: float, center_fraction: float | None = None) -> None:
    if int(num_cols) != num_cols or num_cols < 2:
        raise ValueError(f"expected an integer number of columns >= 2, got {num_cols!r}")
    if not (math.isfinite(accel) and accel >= 1):
        raise ValueError(f"expected an acceleration >= 1 (a finite number), got {accel!r}")
    if center_fraction is not None and not 0 < center_fraction <= 1:
        raise ValueError(f"expected a centre fraction in (0, 1], got {center_fraction!r}")


def _reachable(name: str, accel: float, num_cols: int, center: int, extra: str = "the centre fraction") -> None:
    """Refuse an acceleration above what ``center`` always-sampled columns of ``num_cols`` allow:
    the centre alone gives ``num_cols / center``."""
    top = num_cols / max(center, 1)
    if accel > top * (1 + 1e-9):
        raise ValueError(
            f"{name}: {accel}x is out of reach with {center} always-sampled centre columns of {num_cols} "
            f"(the centre alone is {top:.3g}x); achievable range 1 to {top:.3g}x: lower the acceleration or {extra}"
        )


def _as_mask(m: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)).reshape(1, 1, 1, -1)


def center_mask(num_cols: int, num_low_frequencies: int) -> np.ndarray:
    """The fastMRI centre block: ``n`` columns starting at ``(W - n + 1) // 2``."""
    m = np.zeros(num_cols, dtype=np.float32)
    pad = (num_cols - num_low_frequencies + 1) // 2
    m[pad : pad + num_low_frequencies] = 1
    return m


def _rng(seed) -> np.random.RandomState:
    # fastMRI's legacy stream; a RandomState passed in continues the caller's stream
    return seed if isinstance(seed, np.random.RandomState) else np.random.RandomState(seed)


def random_mask(
    num_cols: int, accel: float, center_fraction: float, seed: int | np.random.RandomState | None = None
) -> torch.Tensor:
    """fastMRI random mask: the centre block plus each other column with probability
    ``p = (W / accel - n) / (W - n)``, where ``n = round(W * center_fraction)``.

    ``seed``: an int (or tuple of ints), or a ``np.random.RandomState`` to draw from. Returns a
    (1, 1, 1, W) float32 mask.
    """
    _check(num_cols, accel, center_fraction)
    rng = _rng(seed)
    rng.randint(1)  # fastMRI draws the (centre fraction, acceleration) pair first
    n = round(num_cols * center_fraction)
    _reachable("random_mask", accel, num_cols, n)
    prob = (num_cols / accel - n) / (num_cols - n) if num_cols > n else 0.0
    accel_mask = rng.uniform(size=num_cols) < prob
    return _as_mask(np.maximum(center_mask(num_cols, n), accel_mask))


def equispaced_mask(
    num_cols: int,
    accel: float,
    center_fraction: float,
    seed: int | np.random.RandomState | None = None,
    offset: int | None = None,
    exact: bool = False,
) -> torch.Tensor:
    """fastMRI equispaced mask: the centre block plus every ``accel``-th column from a random
    offset in ``[0, accel)`` (``EquispacedMaskFunc``). Because the centre block comes on top, the
    overall acceleration is lower than ``accel``; ``exact=True`` spaces the other columns by
    ``accel (n - W) / (n accel - W)`` so the total matches ``accel``
    (``EquispacedMaskFractionFunc``). Returns a (1, 1, 1, W) float32 mask."""
    _check(num_cols, accel, center_fraction)
    rng = _rng(seed)
    rng.randint(1)
    n = round(num_cols * center_fraction)
    _reachable("equispaced_mask", accel, num_cols, n)
    m = np.zeros(num_cols, dtype=np.float32)
    if exact and n * accel >= num_cols * (1 - 1e-9):
        pass  # the centre alone reaches the acceleration
    elif exact:
        spacing = accel * (n - num_cols) / (n * accel - num_cols)
        if offset is None:
            offset = rng.randint(0, high=round(spacing))
        m[np.around(np.arange(offset, num_cols - 1, spacing)).astype(np.uint)] = 1
    else:
        if int(accel) != accel:
            raise ValueError(f"equispaced_mask: expected an integer acceleration (or exact=True), got {accel!r}")
        if offset is None:
            offset = rng.randint(0, high=round(accel))
        m[offset :: int(accel)] = 1
    return _as_mask(np.maximum(center_mask(num_cols, n), m))


class MaskFunc:
    """fastMRI's mask functions (``RandomMaskFunc``, ``EquiSpacedMaskFunc``,
    ``EquispacedMaskFractionFunc``): each call picks one (centre fraction, acceleration) pair
    uniformly at random, then draws the mask from the same random stream, so the same seed gives
    the same mask as fastMRI's function with the same arguments.

    Args:
        kind: ``"random"``, ``"equispaced"`` or ``"equispaced_fraction"`` (exact acceleration).
        center_fractions, accelerations: the pairs, e.g. ``(0.08, 0.04)`` and ``(4, 8)``.
        seed: seed of the function's own stream, used by calls without a seed (default 0: the
            same masks in every run; no mask is drawn from the operating system's entropy).

    ``mask, num_low_frequencies = mask_func(num_cols, seed=None)``: a (1, 1, 1, W) mask.
    """

    KINDS = ("random", "equispaced", "equispaced_fraction")

    def __init__(self, kind: str = "random", center_fractions=(0.08,), accelerations=(4,), seed: int = 0):
        if kind not in self.KINDS:
            raise ValueError(f"MaskFunc: expected kind one of {self.KINDS}, got {kind!r}")
        if len(center_fractions) != len(accelerations) or not len(accelerations):
            raise ValueError(
                f"MaskFunc: expected as many centre fractions as accelerations, got {center_fractions} and {accelerations}"
            )
        self.kind, self.center_fractions, self.accelerations = kind, tuple(center_fractions), tuple(accelerations)
        self.rng = np.random.RandomState(seed)

    def __call__(self, num_cols: int, seed=None) -> tuple[torch.Tensor, int]:
        rng = self.rng if seed is None else np.random.RandomState(seed)
        i = rng.randint(len(self.accelerations))
        cf, accel = self.center_fractions[i], self.accelerations[i]
        if self.kind == "random":
            mask = random_mask(num_cols, accel, cf, seed=rng)
        else:
            mask = equispaced_mask(num_cols, accel, cf, seed=rng, exact=self.kind == "equispaced_fraction")
        return mask, round(num_cols * cf)

    def __repr__(self) -> str:
        return f"MaskFunc({self.kind!r}, center_fractions={self.center_fractions}, accelerations={self.accelerations})"


def variable_density_mask(
    num_cols: int,
    accel: float,
    center_lines: int = 8,
    sigma: float | None = None,
    seed: int | np.random.Generator | None = None,
) -> torch.Tensor:
    """Gaussian variable-density Cartesian lines (Schlemper et al. 2017).

    ``center_lines`` central columns are always sampled; the remaining ``round(W / accel) -
    center_lines`` columns are drawn without replacement with probability proportional to a
    Gaussian of width ``sigma`` (default ``W / 6``) plus a uniform floor. Returns (1, 1, 1, W).
    """
    _check(num_cols, accel)
    _reachable("variable_density_mask", accel, num_cols, center_lines, "center_lines")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n_total = max(round(num_cols / accel), 1)
    center_lines = min(center_lines, n_total)  # rounding only: accel <= num_cols / center_lines
    m = center_mask(num_cols, center_lines)
    k = np.arange(num_cols) - num_cols // 2
    sigma = num_cols / 6 if sigma is None else sigma
    pdf = np.exp(-0.5 * (k / sigma) ** 2) + 1.0 / num_cols
    pdf[m > 0] = 0
    pdf /= pdf.sum()
    extra = n_total - center_lines
    if extra > 0:
        m[rng.choice(num_cols, size=extra, replace=False, p=pdf)] = 1
    return _as_mask(m)


def kt_mask(
    num_frames: int,
    num_cols: int,
    accel: float,
    center_lines: int = 8,
    sigma: float | None = None,
    seed: int | None = None,
) -> torch.Tensor:
    """k-t undersampling: a new variable-density Cartesian mask per frame. Returns (1, T, 1, W)."""
    if num_frames < 1:
        raise ValueError(f"kt_mask: expected num_frames >= 1, got {num_frames}")
    rng = np.random.default_rng(seed)
    frames = [variable_density_mask(num_cols, accel, center_lines, sigma, rng) for _ in range(num_frames)]
    return torch.cat(frames, dim=1)  # (1, T, 1, W)


def poisson_disc_mask(
    shape: tuple[int, int],
    accel: float,
    calib: int = 12,
    seed: int | None = None,
    max_iter: int = 30,
) -> torch.Tensor:
    """2D variable-density Poisson-disc mask (for 3D Cartesian or 2D non-Cartesian-like sampling).

    Points are accepted by dart throwing in random order when no accepted point lies within
    ``r(k) = r0 * (1 + 2 |k|)`` (|k| normalised to [0, 1] at the edge), so samples are dense at the
    centre and sparse at the edge but never clump; ``r0`` is found by bisection so that the
    acceleration matches. A ``calib x calib`` centre is always sampled. Returns (1, 1, H, W).
    """
    h, w = shape
    if h < 4 or w < 4:
        raise ValueError(f"poisson_disc_mask: expected a shape of at least 4x4, got {shape}")
    _check(w, accel)
    ky, kx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    kr = np.sqrt(kx**2 + ky**2) / math.sqrt(2)
    order = np.random.default_rng(seed).permutation(h * w)
    calib_box = (np.abs(np.arange(h) - h // 2)[:, None] < calib / 2) & (np.abs(np.arange(w) - w // 2)[None, :] < calib / 2)
    top = h * w / max(int(calib_box.sum()), 1)
    if accel > top:
        raise ValueError(
            f"poisson_disc_mask: {accel}x is out of reach with a {calib}x{calib} calibration centre in {h}x{w} "
            f"(the centre alone is {top:.3g}x); achievable range 1 to about {top:.3g}x: lower the acceleration or calib"
        )

    def draw(r0: float) -> np.ndarray:
        radius = r0 * (1 + 2 * kr)
        m = calib_box.copy()
        for idx in order:
            y, x = divmod(int(idx), w)
            if m[y, x]:
                continue
            r = radius[y, x]
            ri = int(math.ceil(r))
            y0, y1, x0, x1 = max(y - ri, 0), min(y + ri + 1, h), max(x - ri, 0), min(x + ri + 1, w)
            yy, xx = np.nonzero(m[y0:y1, x0:x1])
            if yy.size and ((yy + y0 - y) ** 2 + (xx + x0 - x) ** 2 < r * r).any():
                continue
            m[y, x] = True
        return m

    lo, hi = 0.1, math.sqrt(accel) * 2
    best = draw(hi)
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        m = draw(mid)
        if abs(m.size / m.sum() - accel) < abs(best.size / best.sum() - accel):
            best = m
        if m.size / m.sum() > accel:
            hi = mid
        else:
            lo = mid
        if abs(best.size / best.sum() - accel) / accel < 0.02:
            break
    got = best.size / best.sum()
    if abs(got - accel) / accel > 0.1:
        warnings.warn(
            f"poisson_disc_mask: asked for {accel}x, reached {got:.3g}x in {h}x{w} (too few points for a closer match); "
            "use a larger shape or check mc.acceleration(mask)",
            RuntimeWarning,
            stacklevel=2,
        )
    return torch.from_numpy(best.astype(np.float32)).reshape(1, 1, h, w)


def acceleration(mask: torch.Tensor) -> float:
    """Acceleration factor of a mask: number of entries over number sampled."""
    return float(mask.numel() / mask.sum())
