"""Classical parallel-imaging and compressed-sensing reconstructions: the baselines to beat.

All functions take torch tensors in the course's layout and return torch tensors:

- ``masked_kspace``: (B, coils, H, W) complex64, centred, zeros where not sampled;
- ``mask``: broadcastable (B|1, 1, 1, W) (Cartesian lines) or (B|1, 1, H, W) (2D), 1 = sampled;
- ``sens_maps``: (B, coils, H, W) complex64;
- images: (B, 1, H, W) complex64 (take ``.abs()`` for a magnitude image).

``espirit_maps`` estimates coil maps from the fully sampled centre of k-space, ``cg_sense``
solves the SENSE least-squares problem by conjugate gradients, ``compressed_sensing`` adds an
L1-wavelet or total-variation penalty; ``kt_compressed_sensing`` is compressed sensing for dynamic
(cine) data, (B, T, H, W) with a mask per frame (B|1, T, 1|H, W), whose penalty uses time. The solvers are sigpy's (``sigpy.mri.app.SenseRecon``,
``L1WaveletRecon``, ``TotalVariationRecon``), which run one slice at a time on NumPy arrays; k-t
compressed sensing's total-variation ADMM takes sigpy's steps in torch, every sequence at once. The
ESPIRiT calibration follows ``sigpy.mri.app.EspiritCalib`` but takes a *rectangular* calibration
region, because a fastMRI mask keeps only a few central columns (5 of 128 at 8x): the full
height of those columns calibrates far better than the small square sigpy would crop.

Reference: Uecker et al., ESPIRiT -- an eigenvalue approach to autocalibrating parallel MRI,
Magn. Reson. Med. 71 (2014); Pruessmann et al., Advances in sensitivity encoding with arbitrary
k-space trajectories, MRM 46 (2001); Lustig et al., Sparse MRI, MRM 58 (2007); Lustig et al.,
k-t SPARSE: high frame rate dynamic MRI exploiting spatio-temporal sparsity, ISMRM 2006.

Image-domain baselines: ``intensity_mapping`` (contrast translation by histogram matching) and
``classical_denoise`` / ``tune_denoiser`` (Gaussian smoothing, total variation and non-local means
from scikit-image, and BM3D from the ``bm3d`` package, ``bm3d_denoise``; each with its strength
tuned on validation images; Buades et al., A non-local algorithm for image denoising, CVPR 2005;
Dabov et al., Image denoising by sparse 3-D transform-domain collaborative filtering, IEEE
Trans. Image Process. 16 (2007)).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .fft import fft2c, ifft2c

__all__ = [
    "espirit_maps",
    "cg_sense",
    "compressed_sensing",
    "kt_compressed_sensing",
    "acs_width",
    "intensity_mapping",
    "DENOISERS",
    "bm3d_denoise",
    "classical_denoise",
    "tune_denoiser",
]


def _require_kspace(k, name: str = "masked_kspace") -> None:
    if not isinstance(k, torch.Tensor) or not k.is_complex() or k.ndim != 4:
        got = f"{k.dtype} {tuple(k.shape)}" if isinstance(k, torch.Tensor) else type(k).__name__
        raise TypeError(f"expected {name} as complex (B, coils, H, W), got {got}")


def _mask_2d(mask: torch.Tensor, kspace: torch.Tensor) -> torch.Tensor:
    """The mask broadcast to (B, H, W) float32 (sigpy's data-consistency weights)."""
    if not isinstance(mask, torch.Tensor) or mask.is_complex():
        raise TypeError(f"expected a real 0/1 mask tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    b, _, h, w = kspace.shape
    try:
        m = torch.broadcast_to(mask.float(), (b, 1, h, w))
    except RuntimeError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast against k-space {tuple(kspace.shape)}") from None
    return m[:, 0]


def _pad_centre(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Zero-pad the last two dims to ``shape``, centre to centre (index n // 2 stays the centre)."""
    h, w = x.shape[-2:]
    out = x.new_zeros(*x.shape[:-2], *shape)
    y0, x0 = shape[0] // 2 - h // 2, shape[1] // 2 - w // 2
    out[..., y0 : y0 + h, x0 : x0 + w] = x
    return out


def acs_width(mask: torch.Tensor) -> int:
    """Number of contiguous sampled columns around the centre column ``W // 2`` of a Cartesian mask
    (the auto-calibration signal, fastMRI's ``num_low_frequencies``)."""
    cols = mask.reshape(-1, mask.shape[-1]).amin(0) > 0  # a column counts if sampled in every row/batch
    c = mask.shape[-1] // 2
    if not cols[c]:
        return 0
    lo, hi = c, c
    while lo > 0 and cols[lo - 1]:
        lo -= 1
    while hi < len(cols) - 1 and cols[hi + 1]:
        hi += 1
    return int(hi - lo + 1)


def espirit_maps(
    masked_kspace: torch.Tensor,
    mask: torch.Tensor | None = None,
    calib_size: tuple[int, int] | None = None,
    kernel_size: int = 6,
    thresh: float = 0.02,
    crop: float = 0.8,
) -> torch.Tensor:
    """ESPIRiT coil sensitivities from the fully sampled centre of k-space.

    Every ``kh x kw`` patch of the calibration region (all coils) is a row of the calibration
    matrix; its right singular vectors above ``thresh * s_max`` span the patches that multi-coil
    data can produce. In image space this becomes, at every pixel ``r``, a coils x coils matrix
    ``G(r) = sum_j g_j(r) g_j(r)^H`` (``g_j`` the inverse FFT of kernel ``j``), whose eigenvector of
    eigenvalue 1 is the vector of coil sensitivities ``S(r)``. Pixels whose top eigenvalue is
    below ``crop`` (no signal) get zero maps. The phase is taken relative to coil 0.

    Args:
        masked_kspace: (B, coils, H, W) complex.
        mask: the sampling mask; its central run of sampled columns (:func:`acs_width`) sets the
            calibration width. Without it, the columns with any non-zero sample are used.
        calib_size: (rows, columns) of the calibration region, centred; default
            ``(min(H, 64), acs_width)``.
        kernel_size: the kernel size, clipped so that it fits at least 3 times across the
            calibration region (5 centre columns at 8x give 3-column kernels).
        thresh: keep singular vectors above ``thresh * s_max`` (sigpy's default).
        crop: zero the maps where the top eigenvalue is below ``crop``. sigpy's default 0.95 also
            crops the edge of the head where the field of view wraps, and CG-SENSE then turns the
            signal it cannot explain there into stripes; 0.8 keeps it.

    Returns:
        (B, coils, H, W) complex64 maps, sum over coils of ``|S|^2`` = 1 inside the object.
    """
    _require_kspace(masked_kspace)
    b, nc, h, w = masked_kspace.shape
    if calib_size is None:
        m = mask if mask is not None else (masked_kspace.abs().sum((0, 1, 2)) > 0).float()
        calib_size = (min(h, 64), acs_width(m.reshape(1, 1, -1, m.shape[-1]) if m.ndim < 4 else m))
    rh, rw = calib_size
    if rh < 2 or rw < 2:
        raise ValueError(f"espirit_maps: expected a fully sampled centre of at least 2 x 2, got {calib_size}")
    # at least 3 kernel positions across the (often narrow) calibration columns
    kh, kw = min(kernel_size, max(rh - 2, 2)), min(kernel_size, max(rw - 2, 2))
    y0, x0 = h // 2 - rh // 2, w // 2 - rw // 2
    out = torch.zeros(b, nc, h, w, dtype=torch.complex64, device=masked_kspace.device)
    for i in range(b):
        calib = masked_kspace[i, :, y0 : y0 + rh, x0 : x0 + rw].to(torch.complex64)  # (coils, rh, rw)
        blocks = calib.unfold(1, kh, 1).unfold(2, kw, 1)  # (coils, nh, nw, kh, kw)
        mat = blocks.permute(1, 2, 0, 3, 4).reshape(-1, nc * kh * kw)  # (patches, coils*kh*kw)
        # right singular vectors of mat = eigenvectors of mat^H mat (much cheaper than an SVD)
        evals, v = torch.linalg.eigh((mat.conj().T @ mat).to(torch.complex128))
        keep = evals.clamp_min(0).sqrt() > thresh * evals.max().clamp_min(0).sqrt()
        kernels = v[:, keep].T.conj().to(torch.complex64).reshape(-1, nc, kh, kw)  # (nk, coils, kh, kw)
        # G(r) = sum_j g_j(r) g_j(r)^H is a trigonometric polynomial with frequencies |q| < kernel size:
        # compute it on a (2 kh, 2 kw) grid, then interpolate it exactly by zero-padding its spectrum
        sh, sw = min(2 * kh, h), min(2 * kw, w)
        g = ifft2c(_pad_centre(kernels, (sh, sw))) * math.sqrt(sh * sw / (kh * kw))  # (nk, coils, sh, sw)
        g = g.permute(2, 3, 1, 0)  # (sh, sw, coils, nk)
        small = (g @ g.conj().transpose(-1, -2)).permute(2, 3, 0, 1)  # (coils, coils, sh, sw)
        gram = ifft2c(_pad_centre(fft2c(small), (h, w))) * math.sqrt(h * w / (sh * sw))  # (coils, coils, H, W)
        gram = gram.permute(2, 3, 0, 1)  # (H, W, coils, coils)
        evals, evecs = torch.linalg.eigh(gram)  # ascending eigenvalues
        maps = evecs[..., -1].permute(2, 0, 1)  # (coils, H, W)
        maps = maps * (maps[0].conj() / maps[0].abs().clamp_min(1e-12))
        out[i] = maps * (evals[..., -1] > crop)
    return out


def _sigpy_mri():
    try:
        import sigpy.mri
    except ImportError as e:  # a core dependency: only a hand-made environment lacks it
        raise ImportError("the classical reconstructions need sigpy, a dependency of mricourse: pip install sigpy") from e
    return sigpy.mri


def _run_sigpy(masked_kspace, sens_maps, mask, make_app) -> torch.Tensor:
    """Run a sigpy reconstruction app slice by slice on data scaled so ``max |A^H y| = 1``."""
    _require_kspace(masked_kspace)
    _require_kspace(sens_maps, "sens_maps")
    if sens_maps.shape[1:] != masked_kspace.shape[1:] or sens_maps.shape[0] not in (1, masked_kspace.shape[0]):
        raise ValueError(f"sens_maps {tuple(sens_maps.shape)} do not match k-space {tuple(masked_kspace.shape)}")
    weights = _mask_2d(mask, masked_kspace)
    out = []
    for i in range(masked_kspace.shape[0]):
        y = masked_kspace[i].detach().cpu().to(torch.complex64)
        s = sens_maps[min(i, len(sens_maps) - 1)].detach().cpu().to(torch.complex64)
        wt = weights[i].detach().cpu()
        scale = float((s.conj() * ifft2c(y * wt)).sum(0).abs().max()) or 1.0
        x = make_app(y.numpy() / scale, s.numpy(), wt.numpy()).run()
        out.append(torch.from_numpy(np.asarray(x, dtype=np.complex64)) * scale)
    return torch.stack(out)[:, None].to(masked_kspace.device)  # (B, 1, H, W)


def cg_sense(
    masked_kspace: torch.Tensor,
    sens_maps: torch.Tensor,
    mask: torch.Tensor,
    lamda: float = 0.0,
    max_iter: int = 30,
) -> torch.Tensor:
    """CG-SENSE: ``argmin_x ||M F S x - y||^2 + lamda ||x||^2`` by conjugate gradients.

    sigpy's ``SenseRecon``; ``lamda`` is relative to data scaled so that ``max |A^H y| = 1``,
    and ``max_iter`` (early stopping) regularises too. Returns (B, 1, H, W) complex64.
    """
    mr = _sigpy_mri()
    return _run_sigpy(
        masked_kspace,
        sens_maps,
        mask,
        lambda y, s, wt: mr.app.SenseRecon(y, s, lamda=lamda, weights=wt, max_iter=max_iter, show_pbar=False),
    )


def compressed_sensing(
    masked_kspace: torch.Tensor,
    sens_maps: torch.Tensor,
    mask: torch.Tensor,
    lamda: float = 0.005,
    reg: str = "wavelet",
    max_iter: int = 100,
    wave_name: str = "db4",
) -> torch.Tensor:
    """Compressed sensing with coil maps: ``argmin_x ||M F S x - y||^2 + lamda R(x)``.

    ``reg="wavelet"``: ``R(x) = ||Psi x||_1`` (Daubechies wavelets, sigpy's ``L1WaveletRecon``,
    accelerated proximal gradient); ``reg="tv"``: ``R(x) = ||grad x||_1`` (sigpy's
    ``TotalVariationRecon``, primal-dual). ``lamda`` is relative to data scaled so that
    ``max |A^H y| = 1``. Returns (B, 1, H, W) complex64.
    """
    mr = _sigpy_mri()
    if reg == "wavelet":

        def make(y, s, wt):
            return mr.app.L1WaveletRecon(y, s, lamda, weights=wt, wave_name=wave_name, max_iter=max_iter, show_pbar=False)

    elif reg == "tv":

        def make(y, s, wt):
            return mr.app.TotalVariationRecon(y, s, lamda, weights=wt, max_iter=max_iter, show_pbar=False)

    else:
        raise ValueError(f"compressed_sensing: expected reg='wavelet' or 'tv', got {reg!r}")
    return _run_sigpy(masked_kspace, sens_maps, mask, make)


def intensity_mapping(t1: torch.Tensor, reference: torch.Tensor, threshold: float = 0.02) -> torch.Tensor:
    """A T1 -> T2 translation without learning: invert the T1 intensities inside the head and give
    them the histogram of the reference T2 images' head intensities
    (``skimage.exposure.match_histograms``). Images (N, 1, H, W), background <= ``threshold``."""
    from skimage.exposure import match_histograms

    ref = reference[reference > threshold].numpy()
    out = torch.zeros_like(t1)
    for i in range(len(t1)):
        m = t1[i] > threshold
        out[i][m] = torch.from_numpy(match_histograms(-t1[i][m].numpy(), ref)).to(t1.dtype)
    return out


def _kt_tv_admm(y: torch.Tensor, m: torch.Tensor, lamda: float, spatial: float, max_iter: int,
                rho: float = 1.0, cg_iter: int = 5) -> torch.Tensor:
    """ADMM for ``argmin_x 1/2 ||M F x - y||^2 + lamda ||G x||_1`` with ``G`` the circular finite
    differences along time and ``spatial`` times those along rows and columns, for every sequence
    of the batch at once (y: (B, T, H, W) complex, already scaled; m: real weights of that shape).

    The steps of sigpy's ``LinearLeastSquares(..., solver="ADMM")``: from ``x = v = u = 0``, each
    iteration ``cg_iter`` conjugate-gradient steps on ``(A^H A + rho G^H G) x = A^H y + rho G^H (v - u)``
    warm-started at ``x``, then ``v = soft(G x + u, lamda / rho)`` and ``u += G x - v``. Circular
    differences and soft thresholding commute with circular shifts, so the iterations run on the
    image with its centre shifted to the corner (``ifftshift``), where ``F`` is a plain FFT, the
    spatial part of ``G^H G`` a multiplication in k-space (by ``2 - 2 cos(2 pi k / n)`` per axis), and
    the conjugate gradients run on ``F x`` (``F`` is unitary: the same iterates), without an FFT.
    Complex arrays are held as real ones with a last axis of 2 (``torch.view_as_real``).
    """
    dims, real = (-2, -1), torch.float32
    (h, w), n = y.shape[-2:], len(y)
    kernel = torch.zeros((), dtype=real)  # the spatial differences' G^H G in k-space
    if spatial > 0:  # in float64 on the CPU (some devices have no float64), then float32 on y's device
        ky = 2 - 2 * torch.cos(2 * math.pi * torch.arange(h, dtype=torch.float64) / h)
        kx = 2 - 2 * torch.cos(2 * math.pi * torch.arange(w, dtype=torch.float64) / w)
        kernel = spatial**2 * (ky[:, None] + kx[None, :])
    kernel = kernel.to(device=y.device, dtype=real)
    # F (A^H A + rho G^H G) F^H = A^H A's k-space weights, plus rho times the spatial kernel and the
    # time differences (which commute with each frame's 2D FFT): diagonal + 2 rho, minus rho times the neighbours in time
    shape = (*y.shape, 2)
    diagonal = (torch.fft.ifftshift(m * m, dim=dims) + rho * kernel + 2 * rho)[..., None].expand(shape).contiguous()
    wts = (1.0,) + ((spatial, spatial) if spatial > 0 else ())

    def fft(x):  # real view (B, T, H, W, 2) -> real view of its 2D FFT, and back
        return torch.view_as_real(torch.fft.fft2(torch.view_as_complex(x), norm="ortho"))

    def ifft(x):
        return torch.view_as_real(torch.fft.ifft2(torch.view_as_complex(x), norm="ortho"))

    def grad(x):  # G x: the differences x - x shifted by one, along time (and rows and columns)
        return [wt * (x - x.roll(1, axis)) for wt, axis in zip(wts, (1, 2, 3))]

    def grad_adjoint(v):  # G^H v
        return sum(wt * (d - d.roll(-1, axis)) for wt, d, axis in zip(wts, v, (1, 2, 3)))

    def normal(z):
        if z.shape[1] < 3:  # one or two frames: each frame's neighbours in time, as rolls
            out = z.roll(1, 1) + z.roll(-1, 1)
        else:  # the same sums in one pass
            out = torch.empty_like(z)
            torch.add(z[:, :-2], z[:, 2:], out=out[:, 1:-1])
            torch.add(z[:, -1], z[:, 1], out=out[:, 0])
            torch.add(z[:, -2], z[:, 0], out=out[:, -1])
        return out.mul_(-rho).addcmul_(diagonal, z)

    def dot(a, b):  # the real part of <a, b> per sequence, (B, 1, 1, 1, 1)
        return torch.linalg.vecdot(a.reshape(n, -1), b.reshape(n, -1)).reshape(n, 1, 1, 1, 1)

    ahy = torch.view_as_real(torch.fft.ifftshift(m * y, dim=dims)).contiguous()  # F A^H y
    xk = torch.zeros_like(ahy)
    v = grad(ifft(xk))
    u = [torch.zeros_like(d) for d in v]
    tiny = torch.finfo(real).tiny
    for _ in range(max_iter):
        # x: conjugate gradients, each sequence its own step sizes (a sequence whose residual is 0 stays put)
        r = ahy - normal(xk)
        r.add_(fft(grad_adjoint([a - b for a, b in zip(v, u)])), alpha=rho)
        p = r.clone()
        rz = dot(r, r)
        for it in range(cg_iter):
            ap = normal(p)
            pap = dot(p, ap)
            # p^H A p <= 0 only when p = 0 (A is positive definite): where sigpy's CG stops, the step is 0
            alpha = torch.where(pap > 0, rz / pap.clamp_min(tiny), 0.0)
            xk.addcmul_(alpha, p)
            if it < cg_iter - 1:
                r.addcmul_(alpha, ap, value=-1)
                rz_new = dot(r, r)
                p = torch.addcmul(r, torch.where(rz > 0, rz_new / rz.clamp_min(tiny), 0.0), p)
                rz = rz_new
        for i, (g, ui) in enumerate(zip(grad(ifft(xk)), u)):
            z = g.add_(ui)  # G x + u
            re, im = z[..., 0], z[..., 1]
            magnitude = torch.addcmul(re * re, im, im).sqrt_()[..., None]
            # the L1 norm's proximal step, soft thresholding: (|z| - lamda / rho)_+ z / |z|
            v[i] = z * (torch.relu(magnitude - lamda / rho) / magnitude.clamp_min(tiny))
            u[i] = z.sub_(v[i])  # u + G x - v
    return torch.fft.fftshift(torch.view_as_complex(ifft(xk)), dim=dims)


def kt_compressed_sensing(
    masked_kspace: torch.Tensor,
    mask: torch.Tensor,
    lamda: float = 0.01,
    reg: str = "tv",
    spatial: float = 0.1,
    max_iter: int = 30,
) -> torch.Tensor:
    """k-t compressed sensing of single-coil cine data: ``argmin_x 1/2 ||M F x - y||^2 + lamda R(x)``.

    ``reg="tv"``: ``R(x) = ||D_t x||_1 + spatial ||D_xy x||_1``, total variation along time (circular:
    a cine covers one periodic heart beat) plus ``spatial`` times spatial total variation, solved
    by ADMM (the steps of sigpy's ``LinearLeastSquares``: rho 1, 5 conjugate-gradient steps per
    iteration), in torch, every sequence at once on the data's device. ``reg="xf"``:
    ``R(x) = ||F_t x||_1``, sparsity in x-f space (the temporal Fourier transform, as k-t SPARSE),
    by sigpy's accelerated proximal gradient, one sequence at a time. ``lamda`` is relative to
    data scaled so that ``max |A^H y| = 1`` (per sequence).

    Args:
        masked_kspace: (B, T, H, W) complex, T frames.
        mask: (B|1, T, 1|H, W), a mask per frame.
        max_iter: ADMM (``"tv"``) or gradient (``"xf"``) iterations.

    Returns:
        (B, T, H, W) complex64.
    """
    if not isinstance(masked_kspace, torch.Tensor) or not masked_kspace.is_complex() or masked_kspace.ndim != 4:
        got = (
            f"{masked_kspace.dtype} {tuple(masked_kspace.shape)}"
            if isinstance(masked_kspace, torch.Tensor)
            else type(masked_kspace).__name__
        )
        raise TypeError(f"kt_compressed_sensing: expected complex k-space (B, T, H, W), got {got}")
    if reg not in ("tv", "xf"):
        raise ValueError(f"kt_compressed_sensing: expected reg='tv' or 'xf', got {reg!r}")
    try:
        weights = torch.broadcast_to(mask.float(), masked_kspace.shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast against k-space {tuple(masked_kspace.shape)}"
        ) from None
    if reg == "tv":
        with torch.no_grad():
            y = masked_kspace.detach().to(torch.complex64)
            m = weights.to(y.device)
            scale = ifft2c(m * y).abs().amax(dim=(1, 2, 3), keepdim=True)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            return _kt_tv_admm(y / scale, m, lamda, spatial, max_iter) * scale
    _sigpy_mri()  # a clear message if sigpy is missing
    import sigpy as sp

    out = []
    for y, m in zip(masked_kspace.detach().cpu().to(torch.complex64).numpy(), weights.cpu().numpy()):
        shape = y.shape  # (T, H, W)
        A = sp.linop.Multiply(shape, m) * sp.linop.FFT(shape, axes=(-2, -1))  # centred, orthonormal: mc.fft2c
        scale = float(np.abs(A.H(y)).max()) or 1.0
        xf = sp.prox.UnitaryTransform(sp.prox.L1Reg(shape, lamda), sp.linop.FFT(shape, axes=(0,)))
        app = sp.app.LinearLeastSquares(A, y / scale, proxg=xf, max_iter=max_iter, show_pbar=False)
        out.append(torch.from_numpy(np.asarray(app.run(), dtype=np.complex64)) * scale)
    return torch.stack(out).to(masked_kspace.device)


#: The classical denoisers of :func:`classical_denoise` and what their ``strength`` means.
DENOISERS = {
    "gaussian": "skimage.filters.gaussian, standard deviation = strength (pixels)",
    "tv": "skimage.restoration.denoise_tv_chambolle, weight = strength x sigma",
    "nlm": "skimage.restoration.denoise_nl_means (patch_size 5, patch_distance 6: a 13x13 search), h = strength x sigma",
    "bm3d": "bm3d.bm3d (profile 'np', both stages), sigma_psd = strength x sigma",
}

#: the settings besides ``strength`` that :func:`classical_denoise` passes on, per method
_OPTIONS = {"gaussian": (), "tv": (), "nlm": ("patch_size", "patch_distance"), "bm3d": ()}


def _require_images(x, name: str) -> None:
    """Real, finite images (N, 1, H, W) as a tensor, or a TypeError / ValueError naming them."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 1 or x.is_complex():
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{name}: expected real images (N, 1, H, W) as a tensor, got {got}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name}: expected finite images, got {bad} NaN or infinite pixels in {tuple(x.shape)}")


def _sigmas(sigma, n: int, name: str) -> np.ndarray:
    """``sigma`` (a float or one per image) as n positive floats, or a ValueError."""
    sig = np.asarray(sigma.detach().cpu() if isinstance(sigma, torch.Tensor) else sigma, dtype=np.float64).reshape(-1)
    if sig.size not in (1, n) or not np.all(np.isfinite(sig)) or not np.all(sig > 0):
        raise ValueError(f"{name}: expected a noise level sigma > 0, one float or one per image ({n}), got {sig.tolist()}")
    return np.broadcast_to(sig, (n,))


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def bm3d_denoise(noisy: torch.Tensor, sigma_psd, workers: int | None = None) -> torch.Tensor:
    """BM3D (Dabov et al. 2007) of real images (N, 1, H, W), one at a time (``bm3d.bm3d``).

    Each 8 x 8 block is stacked with the blocks of the image most like it (block matching); the
    3-D stack is transformed, its small coefficients set to zero (hard thresholding) and
    transformed back, and the overlapping estimates are averaged; a second pass repeats the
    grouping on that estimate and shrinks the noisy stacks by Wiener filtering instead. The
    library's default profile (``'np'``), each image on one thread (the library's own threads
    change the last bits of the result from run to run); the images are shared among ``workers``
    threads (default: one per core this process may use), as the library's compiled code runs
    without Python's lock: the same result, sooner.

    Args:
        noisy: (N, 1, H, W) real, finite, H and W at least 16.
        sigma_psd: the standard deviation of the additive white Gaussian noise BM3D assumes, a
            float or one per image. A magnitude image's noise is Rician, not Gaussian: tune it on
            validation images (:func:`tune_denoiser` with ``method="bm3d"`` searches
            ``sigma_psd = strength x sigma``).
        workers: threads denoising images side by side (default: the cores this process may use).

    Returns:
        (N, 1, H, W), the dtype and device of ``noisy``.
    """
    try:
        import bm3d
    except ImportError as e:  # a core dependency: only a hand-made environment lacks it
        raise ImportError("bm3d_denoise needs the bm3d package, a dependency of mricourse: pip install bm3d") from e

    _require_images(noisy, "bm3d_denoise")
    h, w = noisy.shape[-2:]
    if min(h, w) < 16:  # bm3d needs room for its 8 x 8 blocks (an 8 x 8 image crashes the library)
        raise ValueError(f"bm3d_denoise: expected images of at least 16 x 16 pixels (N, 1, H, W), got {tuple(noisy.shape)}")
    sig = _sigmas(sigma_psd, len(noisy), "bm3d_denoise")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"bm3d_denoise: expected workers a positive int or None, got {workers!r}")
    settings = bm3d.BM3DProfile()  # the default profile, 'np'
    settings.num_threads = 1  # the same input gives the same output

    def one(job):
        img, s = job
        return bm3d.bm3d(img, float(s), profile=settings)

    jobs = list(zip(noisy[:, 0].detach().cpu().double().numpy(), sig))
    workers = min(workers or _cores(), len(jobs))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            out = list(pool.map(one, jobs))  # in order
    else:
        out = [one(job) for job in jobs]
    return torch.from_numpy(np.stack(out))[:, None].to(noisy.dtype).to(noisy.device)


def classical_denoise(noisy: torch.Tensor, method: str = "nlm", strength: float = 1.0, sigma=None, **options) -> torch.Tensor:
    """Denoise real images (N, 1, H, W) one at a time with a classical filter (see :data:`DENOISERS`).

    ``sigma`` is the noise standard deviation (a float or one per image); total variation,
    non-local means and BM3D scale with it, so one ``strength`` suits every noise level roughly,
    and :func:`tune_denoiser` finds the best one per level. Non-local means is given ``sigma`` too
    (its fast mode then subtracts the expected patch distance of pure noise). ``options``:
    non-local means' ``patch_size`` and ``patch_distance`` (pixels).
    """
    from scipy import ndimage
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    if method not in DENOISERS:
        raise ValueError(f"classical_denoise: expected method one of {sorted(DENOISERS)}, got {method!r}")
    _require_images(noisy, "classical_denoise")
    unknown = set(options) - set(_OPTIONS[method])
    if unknown:
        raise ValueError(
            f"classical_denoise: method {method!r} takes the options {list(_OPTIONS[method]) or 'none'}, got {sorted(unknown)}"
        )
    if method != "gaussian" and sigma is None:
        raise ValueError(f"classical_denoise: method {method!r} needs the noise level sigma")
    n = len(noisy)
    sig = np.zeros(n) if sigma is None else _sigmas(sigma, n, "classical_denoise")
    if method == "bm3d":
        return bm3d_denoise(noisy, strength * sig)
    nlm = {"patch_size": 5, "patch_distance": 6, **options}
    out = []
    for img, s in zip(noisy[:, 0].detach().cpu().double().numpy(), sig):
        if method == "gaussian":
            den = ndimage.gaussian_filter(img, strength, mode="nearest")
        elif method == "tv":
            den = denoise_tv_chambolle(img, weight=strength * s)
        else:
            den = denoise_nl_means(img, h=strength * s, sigma=s, fast_mode=True, **nlm)
        out.append(torch.from_numpy(np.ascontiguousarray(den)))
    return torch.stack(out)[:, None].to(noisy.dtype).to(noisy.device)


def tune_denoiser(
    noisy: torch.Tensor, clean: torch.Tensor, method: str, strengths, sigma=None, masks=None, widen: int = 0, **options
) -> tuple[float, dict[float, float]]:
    """The ``strength`` of :func:`classical_denoise` with the best mean PSNR on validation images:
    ``(best, {strength: mean psnr})``, the scores in increasing strength. PSNR per image
    (``mc.psnr``, data range = the clean image's maximum), over the pixels of ``masks``
    (N, 1, H, W) bool if given. Tune on validation images, never on the test set.

    A best strength at the edge of the grid may not be the best there is: ``widen`` times at most,
    the grid then grows by one value beyond that edge (a geometric step, the ratio of the two
    outermost strengths there; positive strengths). If the best is still at an edge, the grid was
    too narrow. ``options`` (e.g. ``patch_size=7``) are passed on to :func:`classical_denoise`."""
    from .metrics import psnr

    if noisy.shape != clean.shape:
        raise ValueError(
            f"tune_denoiser: expected noisy and clean of one shape, got {tuple(noisy.shape)} and {tuple(clean.shape)}"
        )
    grid = sorted({float(s) for s in strengths})
    if not grid or (widen and (len(grid) < 2 or grid[0] <= 0)):
        raise ValueError(f"tune_denoiser: expected strengths (at least 2, all > 0 to widen), got {list(strengths)}")
    if masks is None:
        masks = torch.ones_like(clean, dtype=torch.bool)
    scores = {}

    def score(s: float) -> None:
        den = classical_denoise(noisy, method, s, sigma, **options)
        scores[s] = float(np.mean([psnr(c[m], d[m], data_range=float(c.max())) for c, d, m in zip(clean, den, masks)]))

    for s in grid:
        score(s)
    for _ in range(widen):
        best = max(scores, key=scores.get)
        if best == grid[0]:
            grid.insert(0, grid[0] * grid[0] / grid[1])
            score(grid[0])
        elif best == grid[-1]:
            grid.append(grid[-1] * grid[-1] / grid[-2])
            score(grid[-1])
        else:
            break
    scores = {s: scores[s] for s in grid}
    return max(scores, key=scores.get), scores
