"""The digital brain: random subjects, their images in any contrast, and fast 2D slices.

A subject is the atlas (:mod:`mricourse.data.atlas`) moved by a random diffeomorphism
(:func:`~mricourse.data.fields.random_deformation`), with jittered tissue parameters, a fine
tissue texture and a bias field; its images mix the tissue *signals* by partial volume,
``S(x) = b(x) sum_k f_k(x) S(PD_k, T1_k, T2_k)``, with the signal equations of
:mod:`mricourse.signal`, plus Rician noise. All of it is a function of the seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import field as dc_field

import numpy as np
import torch

from ..signal import TISSUES, Tissue, sequence_signal, t1_with_contrast
from ..spatial import gaussian_blur, warp
from .atlas import TISSUE_NAMES, load_atlas, tissue_labels
from .fields import bias_field, random_deformation, rng_for, torch_generator
from .tumour import LESION_NAMES, TUMOUR_TISSUES, add_tumour, brats_labels, concentrations, random_tumour

__all__ = ["CONTRASTS", "Subject", "make_subject", "tissue_parameters", "synthesize", "rician", "brain_percentile"]

CONTRASTS = ("T1w", "T2w", "PDw", "FLAIR", "T1w+c")
#: extra tissues of the head (teaching values): cortical bone has almost no MR signal.
EXTRA_TISSUES: dict[str, Tissue] = {"bone": Tissue(250.0, 5.0, 0.05)}
_TEXTURE = (0.025, 0.02)  # relative std of the fine T1 and PD texture
_JITTER = (0.05, 0.05, 0.03)  # relative std of the per-subject T1, T2, PD of each tissue


def tissue_parameters(names, field: float = 1.5) -> torch.Tensor:
    """(len(names), 3) tensor of (T1 ms, T2 ms, PD) from :data:`mricourse.signal.TISSUES`."""
    if field not in TISSUES:
        raise ValueError(f"expected a field strength in {sorted(TISSUES)} T, got {field!r}")
    table = {**TISSUES[field], **EXTRA_TISSUES}
    table.update(TUMOUR_TISSUES[field])
    return torch.tensor([[table[n].t1, table[n].t2, table[n].pd] for n in names], dtype=torch.float32)


def tissue_signals(params: torch.Tensor, contrast: str, field: float = 1.5, concentration: torch.Tensor | None = None):
    """Signal of each tissue and its sensitivity to T1, (B, K) each.

    Returns ``(S, dS)`` with ``S = S(PD, T1, T2)`` and ``dS = T1 dS/dT1`` (central difference),
    the change of the signal per relative change of T1 (contrast agent included for 'T1w+c').
    """
    if contrast not in CONTRASTS:
        raise ValueError(f"unknown contrast {contrast!r}; expected one of {CONTRASTS}")
    t1, t2, pd = params.double().unbind(-1)  # (B, K) each

    def signal(t1_scaled):
        if contrast == "T1w+c" and concentration is not None:
            t1_scaled = t1_with_contrast(t1_scaled, concentration.double())
        return sequence_signal(contrast, pd, t1_scaled, t2, field)

    eps = 1e-3
    return signal(t1).float(), ((signal(t1 * (1 + eps)) - signal(t1 * (1 - eps))) / (2 * eps)).float()


def synthesize(
    fractions: torch.Tensor,
    params: torch.Tensor,
    contrast: str,
    field: float = 1.5,
    texture: torch.Tensor | None = None,
    concentration: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noise-free image of a contrast by partial-volume mixing of tissue signals.

    ``S(x) = sum_k f_k(x) [S_k (1 + b n_PD(x)) + a n_T1(x) T1_k dS_k/dT1]``: each tissue's signal
    equation (:mod:`mricourse.signal`) with a fine texture of its PD and T1 (relative std b, a),
    to first order in the texture (exact to ~0.1 % for a few per cent of texture).

    Args:
        fractions: (B, K, *spatial) tissue fractions.
        params: (B, K, 3) per-tissue (T1, T2, PD).
        contrast: one of :data:`CONTRASTS`.
        texture: (B, 2, *spatial) unit fields that modulate T1 and PD voxel by voxel.
        concentration: (B, K) contrast-agent concentration (mM), used for 'T1w+c'.
    Returns:
        (B, *spatial) magnitude signal.
    """
    sig, dsig = tissue_signals(params, contrast, field, concentration)  # (B, K)
    out = torch.einsum("bk...,bk->b...", fractions, sig)
    if texture is not None:
        out = out * (1 + _TEXTURE[1] * texture[:, 1]) + _TEXTURE[0] * texture[:, 0] * torch.einsum(
            "bk...,bk->b...", fractions, dsig
        )
    return out


def rician(image: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Rician noise: ``|S + sigma (n1 + i n2)|`` with independent standard normal n1, n2."""
    if sigma <= 0:
        return image
    n = torch.randn(2, *image.shape, generator=generator) * sigma
    return torch.sqrt((image + n[0]) ** 2 + n[1] ** 2)


def brain_percentile(image: torch.Tensor, mask: torch.Tensor, q: float = 0.995) -> torch.Tensor:
    """The ``q`` quantile of ``image`` inside ``mask`` for each item of a batch (B, *spatial) -> (B,)
    (the order statistic ``round(q n)`` of the n masked values; all values if the mask is empty)."""
    flat, m = image.reshape(len(image), -1).float(), mask.reshape(len(mask), -1)
    m = m | ~m.any(1, keepdim=True)
    values = torch.where(m, flat, torch.tensor(float("-inf"))).sort(1).values  # masked-out values first
    n = m.sum(1)
    k = (flat.shape[1] - n) + (q * n).round().long().clamp(1) - 1
    return values.gather(1, k[:, None])[:, 0]


@dataclass(eq=False)
class Subject:
    """One digital subject on the atlas grid, arrays (D, H, W) unless noted.

    Attributes:
        fractions: (K, D, H, W) tissue fractions, channels ``tissues``.
        params: (K, 3) the subject's (T1 ms, T2 ms, PD) per tissue.
        labels: tissue labels 0 background, 1 CSF, 2 GM, 3 WM.
        displacement: (3, D, H, W) voxels, ``subject(x) = atlas(x + u(x))``.
        bias: multiplicative bias field. texture: (2, D, H, W) fine T1/PD texture.
        brats: BraTS labels (0, 1 necrotic core, 2 oedema, 4 enhancing) or None without tumour.
    """

    fractions: np.ndarray
    params: np.ndarray
    tissues: tuple[str, ...]
    concentration: np.ndarray
    texture: np.ndarray
    labels: np.ndarray
    displacement: np.ndarray
    bias: np.ndarray
    affine: np.ndarray
    field: float
    seed: int
    resolution: float
    brats: np.ndarray | None = None
    info: dict = dc_field(default_factory=dict)

    def _mean_param(self, j: int) -> np.ndarray:
        f = self.fractions
        w = f.sum(0)
        val = np.tensordot(self.params[:, j], f, axes=1)
        return np.where(w > 1e-3, val / np.maximum(w, 1e-3), 0).astype(np.float32)

    @property
    def t1(self) -> np.ndarray:
        """Partial-volume weighted T1 map (ms), 0 in air."""
        return self._mean_param(0)

    @property
    def t2(self) -> np.ndarray:
        """Partial-volume weighted T2 map (ms), 0 in air."""
        return self._mean_param(1)

    @property
    def pd(self) -> np.ndarray:
        """Proton density map (fraction-weighted, air 0)."""
        return np.tensordot(self.params[:, 2], self.fractions, axes=1).astype(np.float32)

    @property
    def mask(self) -> np.ndarray:
        """Brain mask (labels > 0, or inside a lesion)."""
        m = self.labels > 0
        return m | (self.brats > 0) if self.brats is not None else m

    def image(self, contrast: str = "T1w", noise: float = 0.0, bias: bool = True, seed: int | None = None) -> np.ndarray:
        """The subject's image, (D, H, W) float32 in signal units (PD scale).

        ``noise``: Rician noise with sigma = ``noise`` x the brain's 99.5th percentile (noise-free),
        drawn from ``seed`` (default: from the subject's seed and the contrast).
        """
        s = synthesize(
            torch.from_numpy(self.fractions)[None],
            torch.from_numpy(self.params)[None],
            contrast,
            self.field,
            torch.from_numpy(self.texture)[None],
            torch.from_numpy(self.concentration)[None],
        )[0]
        if bias:
            s = s * torch.from_numpy(self.bias)
        if noise > 0:
            ref = float(brain_percentile(s[None], torch.from_numpy(self.mask)[None])[0])
            key = CONTRASTS.index(contrast) if seed is None else 1000 + seed
            s = rician(s, noise * ref, torch_generator(rng_for(self.seed, 7, key)))
        return s.numpy().astype(np.float32, copy=False)


def subject_parameters(names, field: float, rng: np.random.Generator) -> torch.Tensor:
    """Tissue parameters (K, 3) with the per-subject jitter (Gaussian, clipped at 2.5 std)."""
    base = tissue_parameters(names, field)
    z = np.clip(rng.standard_normal(base.shape), -2.5, 2.5) * np.array(_JITTER)
    return base * torch.from_numpy(1 + z).float()


def make_subject(seed: int, resolution: float = 2.0, deform: float = 1.0, tumour: bool = False, field: float = 1.5) -> Subject:
    """A random digital subject; a deterministic function of its arguments.

    Args:
        seed: the subject's seed (distinct seeds give distinct subjects).
        resolution: voxel size in mm (2 mm: 88 x 112 x 96 voxels).
        deform: strength of the random affine + diffeomorphic deformation (0: the atlas's shape).
        tumour: add a BraTS-like tumour (``.brats`` labels 1/2/4) with mass effect.
        field: 1.5 or 3.0 T (tissue parameters).
    """
    if field not in TISSUES:
        raise ValueError(f"make_subject: expected field 1.5 or 3.0 T, got {field!r}")
    if deform < 0:
        raise ValueError(f"make_subject: expected deform >= 0, got {deform!r}")
    atlas = load_atlas(resolution)
    shape = atlas.shape
    fractions = torch.from_numpy(atlas.fractions)[None]  # (1, 6, D, H, W)
    names, spec = TISSUE_NAMES, None
    if tumour:  # grown in atlas space (with its mass effect m), then moved with the subject
        spec = random_tumour(fractions[0], resolution, rng_for(seed, 3))
        fractions, m = add_tumour(fractions, spec)
        names = names + LESION_NAMES
    u = random_deformation(shape, resolution, rng_for(seed, 1), strength=deform)
    warped = warp(fractions, u, padding_mode="zeros")
    labels = tissue_labels(warped[0])
    brats = brats_labels(warped[0, 6:]) if tumour else None
    if tumour:
        u = u + warp(m, u)  # subject(x) = atlas(x + u(x) + m(x + u(x)))
    rng = rng_for(seed, 2)
    gen = torch_generator(rng)
    params = subject_parameters(names, field, rng)
    texture = gaussian_blur(torch.randn(1, 2, *shape, generator=gen), 0.6 / resolution**0.5)
    texture = texture / texture.std(dim=tuple(range(2, 5)), keepdim=True)
    bias = bias_field(shape, 0.2, gen)[0, 0]
    conc = concentrations(tumour)
    return Subject(
        fractions=warped[0].numpy(),
        params=params.numpy(),
        tissues=tuple(names),
        concentration=conc.numpy(),
        texture=texture[0].numpy(),
        labels=labels.numpy(),
        displacement=u[0].numpy(),
        bias=bias.numpy(),
        affine=atlas.affine.copy(),
        field=float(field),
        seed=int(seed),
        resolution=float(resolution),
        brats=None if brats is None else brats.numpy(),
        info={} if spec is None else {"tumour": asdict(spec)},
    )
