"""Auto-checks for the exercises: ``mc.check_*`` test a student's answer by its properties.

Every check prints one line starting with a tick when the answer is right, and raises
:class:`CheckFailed` (an ``AssertionError``) whose message says *what* is wrong otherwise. An answer
that is still a stub (``None``, or a function that raises ``NotImplementedError``) makes the check
raise ``NotImplementedError`` too, so an unfinished student notebook fails only with those.

The checks use the package as the reference (``mc.fft2c``, ``mc.adjointness_error``, ``mc.warp``,
``mc.psnr`` ...): they never re-implement it.
"""

from __future__ import annotations

import math
import textwrap
from types import SimpleNamespace

import numpy as np
import torch

from .. import metrics as _metrics
from ..fft import fft2c, ifft2c
from ..masks import acceleration as _acceleration
from ..masks import center_mask
from ..physics import adjoint_inner_products
from ..signal import spin_echo as _spin_echo
from ..signal import tissue as _tissue
from ..spatial import warp as _warp

__all__ = [
    "CheckFailed",
    "check_fft2c",
    "check_mask",
    "check_adjoint",
    "check_data_consistency",
    "check_metric",
    "check_score",
    "check_warp",
    "check_close",
    "check_weighting",
]


class CheckFailed(AssertionError):
    """A wrong answer to an exercise; the message says what is wrong and how to find out why."""


def _require_done(value, what: str) -> None:
    if value is None:
        raise NotImplementedError(
            f"{what} is None: this exercise is not done yet (replace the `raise NotImplementedError` in the cell above with your code)"
        )


def _call(fn, *args, what: str):
    """Call the student's function; NotImplementedError passes through, other errors become a CheckFailed."""
    _require_done(fn, what)
    if not callable(fn):
        raise CheckFailed(f"{what}: expected a function, got {type(fn).__name__}")
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as e:
        shapes = ", ".join(f"{a.dtype} {tuple(a.shape)}" if isinstance(a, torch.Tensor) else type(a).__name__ for a in args)
        raise CheckFailed(f"{what} raised {type(e).__name__}: {e}\n  (called with {shapes})") from e


def _tensor(x, what: str, complex_: bool | None = None, shape=None) -> torch.Tensor:
    _require_done(x, what)
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if isinstance(x, (int, float, np.floating, np.integer)) and not isinstance(x, bool):
        x = torch.tensor(float(x))  # a number: compared as a 0-dim tensor
    if not isinstance(x, torch.Tensor):
        raise CheckFailed(f"{what}: expected a torch.Tensor, got {type(x).__name__}")
    if complex_ is True and not x.is_complex():
        raise CheckFailed(f"{what}: expected a complex tensor, got {x.dtype} (keep the data complex: no .abs() or .real)")
    if complex_ is False and x.is_complex():
        raise CheckFailed(f"{what}: expected a real tensor, got {x.dtype}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise CheckFailed(f"{what}: expected shape {tuple(shape)}, got {tuple(x.shape)}")
    return x


def _ok(message: str) -> None:
    print(textwrap.fill(f"\N{CHECK MARK} {message}", width=88, subsequent_indent="  "))


def _randc(*shape, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))


def _maxerr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.to(b.dtype) - b).abs().max() / b.abs().max().clamp_min(1e-12))


def check_fft2c(fn, inverse: bool = False) -> None:
    """Check a centred, orthonormal 2D FFT (or its inverse) over the last two dims.

    Properties tested, each with its own message: complex output of the input's shape;
    Parseval (orthonormal scaling); the DC of a constant image at index (H // 2, W // 2);
    independence of batch/coil entries; agreement with ``mc.fft2c``/``mc.ifft2c`` for even and
    odd sizes; the round trip with the package's inverse.
    """
    name = "your inverse FFT" if inverse else "your FFT"
    ref, back = (ifft2c, fft2c) if inverse else (fft2c, ifft2c)
    for shape in [(2, 3, 8, 6), (1, 1, 7, 9)]:
        h, w = shape[-2:]
        x = _randc(*shape)
        y = _tensor(_call(fn, x.clone(), what=name), f"{name} of a {shape} input", complex_=True, shape=shape)
        ratio = float(y.norm() / x.norm())
        if abs(ratio - 1) > 1e-4:
            hint = ""
            if abs(ratio - math.sqrt(h * w)) < 1e-2 * math.sqrt(h * w):
                hint = f" = sqrt(H*W) = sqrt({h}*{w}): the FFT is unnormalised; use norm='ortho'"
            elif abs(ratio * math.sqrt(h * w) - 1) < 1e-2:
                hint = f" = 1/sqrt(H*W): you divide by H*W ({'ifftn default' if inverse else 'norm=forward'}); use norm='ortho'"
            raise CheckFailed(f"{name} is not orthonormal: ||F x|| / ||x|| = {ratio:.4g} instead of 1{hint} (Parseval)")
        one = torch.zeros(1, 1, h, w, dtype=torch.complex64)
        if inverse:  # the DC sample at the centre of k-space is a constant image
            one[..., h // 2, w // 2] = 1
            img = _call(fn, one, what=name)[0, 0]
            if float((img - img.mean()).abs().max()) > 1e-4 * float(img.abs().max()):
                raise CheckFailed(
                    f"{name}: k-space with only the centre sample (H//2, W//2) = ({h // 2}, {w // 2}) should give a constant "
                    "image (it is the DC), but the result varies: shift with ifftshift before and fftshift after the inverse FFT"
                )
        else:
            one += 1
            k = _call(fn, one, what=name)[0, 0].abs()
            peak = divmod(int(k.argmax()), w)
            if peak != (h // 2, w // 2):
                hint = " (the corner: the output is not centred, apply fftshift after the FFT)" if peak == (0, 0) else ""
                raise CheckFailed(
                    f"{name}: the DC of a constant {h}x{w} image is at {peak}, expected the centre (H//2, W//2) = ({h // 2}, {w // 2}){hint}"
                )
        alone = _call(fn, x[:1, :1].clone(), what=name)
        if _maxerr(alone[0, 0], y[0, 0]) > 1e-4:
            raise CheckFailed(f"{name} mixes batch or coil entries: transform only over the last two dims, dim=(-2, -1)")
        expected = ref(x)
        err = _maxerr(y, expected)
        if err > 1e-4:
            same_mag = _maxerr(y.abs(), expected.abs()) < 1e-4
            odd = h % 2 or w % 2
            if same_mag:
                why = "the magnitudes agree but the phase does not: a shift is missing or in the wrong place"
                if odd:
                    why += " (for odd sizes ifftshift and fftshift differ: ifftshift before the transform, fftshift after)"
            else:
                why = "even the magnitudes differ: check which dims you transform and that you use the right direction (fftn vs ifftn)"
            raise CheckFailed(f"{name} differs from mc.{ref.__name__} on a {h}x{w} input (relative error {err:.2g}): {why}")
        if _maxerr(back(y), x) > 1e-4:
            raise CheckFailed(f"{name}: mc.{back.__name__} does not invert it")
    _ok(f"{name}: centred, orthonormal (Parseval holds), batch-safe, equals mc.{ref.__name__} for even and odd sizes")


def check_mask(
    mask, acceleration: float, center_fraction: float | None = None, num_cols: int | None = None, tol: float = 0.05
) -> None:
    """Check a Cartesian undersampling mask: shape (1, 1, 1, W), values 0/1, the acceleration
    ``W / sampled`` within ``tol`` (relative), and, with ``center_fraction``, the fastMRI centre block
    of ``round(W * center_fraction)`` columns starting at ``(W - n + 1) // 2`` fully sampled."""
    m = _tensor(mask, "mask", complex_=False)
    w = m.shape[-1]
    if m.ndim != 4 or tuple(m.shape[:3]) != (1, 1, 1):
        raise CheckFailed(
            f"mask: expected shape (1, 1, 1, W) so that it broadcasts over (B, coils, H, W) k-space, got {tuple(m.shape)}"
        )
    if num_cols is not None and w != num_cols:
        raise CheckFailed(f"mask: expected W = {num_cols} columns (the k-space width), got {w}")
    values = set(torch.unique(m.float()).tolist())
    if not values <= {0.0, 1.0}:
        raise CheckFailed(f"mask: expected only 0 (skipped) and 1 (sampled), got values {sorted(values)[:6]}")
    m = m.float().flatten()
    acc = _acceleration(m)
    if abs(acc - acceleration) > tol * acceleration:
        raise CheckFailed(
            f"mask: acceleration W / sampled = {w} / {int(m.sum())} = {acc:.3g}, expected {acceleration:g} "
            f"(sample about {round(w / acceleration)} of {w} columns, counting the centre block)"
        )
    msg = f"mask: shape (1, 1, 1, {w}), acceleration {acc:.3g}"
    if center_fraction is not None:
        n = round(w * center_fraction)
        centre = torch.from_numpy(center_mask(w, n)) > 0
        missing = torch.nonzero(centre & (m == 0)).flatten().tolist()
        if missing:
            start = (w - n + 1) // 2
            corners = bool(m[: n // 2].all() and m[w - n // 2 :].all()) and n > 1
            hint = " -- the low frequencies sit at the edges instead: masks are stored centred (DC at W // 2)" if corners else ""
            raise CheckFailed(
                f"mask: the centre block of n = round({w} * {center_fraction}) = {n} columns, {start}..{start + n - 1}, must be fully "
                f"sampled (it holds the image contrast); columns {missing[:8]} are not{hint}"
            )
        msg += f", centre block of {n} columns sampled"
    _ok(msg)


def check_adjoint(A, A_adjoint=None, x_shape=None, tol: float = 1e-4) -> None:
    """Check that ``A_adjoint`` is the adjoint of ``A`` by the dot-product test ``<A x, y> = <x, A^H y>``
    (``mc.adjointness_error``). ``A`` may be an operator with ``.A``/``.A_adjoint``; the k-space shape is
    taken from ``A(x)`` for a random complex x of ``x_shape``."""
    if A_adjoint is None and hasattr(A, "A") and hasattr(A, "A_adjoint"):
        A, A_adjoint = A.A, A.A_adjoint
    _require_done(A, "A")
    _require_done(A_adjoint, "A_adjoint")
    if x_shape is None:
        raise TypeError("check_adjoint: pass x_shape, the image shape, e.g. (1, 1, H, W)")
    x = _randc(*x_shape)
    k = _tensor(_call(A, x, what="A"), "A(x)", complex_=True)
    back = _tensor(_call(A_adjoint, k, what="A_adjoint"), "A_adjoint(y)", complex_=True)
    if tuple(back.shape) != tuple(x_shape):
        hint = " (sum over the coil dim with keepdim=True)" if back.ndim == len(x_shape) and back.shape[1] != x_shape[1] else ""
        raise CheckFailed(
            f"A_adjoint maps k-space {tuple(k.shape)} to shape {tuple(back.shape)}, expected the image shape {tuple(x_shape)}{hint}"
        )
    op = SimpleNamespace(A=A, A_adjoint=A_adjoint)
    lhs, rhs = adjoint_inner_products(op, tuple(x_shape), tuple(k.shape))
    err = abs(lhs - rhs) / max(abs(lhs), abs(rhs), 1e-30)
    if err > tol:
        ratio = rhs / lhs if abs(lhs) > 0 else complex("nan")
        if abs(ratio.imag) < 1e-3 * abs(ratio) and abs(ratio.real - 1) > 1e-3:
            why = f"A_adjoint is A's adjoint times {ratio.real:.4g}: a scaling is off (use norm='ortho' in both directions)"
        else:
            why = "typical causes: the mask missing in A_adjoint, fft2c where ifft2c belongs, coil maps not conjugated"
        raise CheckFailed(
            f"A_adjoint is not the adjoint of A: <A x, y> = {lhs:.4g} but <x, A^H y> = {rhs:.4g} (relative error {err:.2g}); {why}"
        )
    _ok(f"adjoint: <A x, y> = <x, A^H y> to a relative error of {err:.1e} (dot-product test)")


def check_data_consistency(fn, noise_lvl: float | None = None) -> None:
    """Check a data-consistency step ``fn(k_pred, k0, mask)`` (or ``fn(k_pred, k0, mask, noise_lvl)``).

    Hard (``noise_lvl=None``): sampled k-space must equal the measured ``k0`` exactly and unsampled
    k-space must keep the prediction. Soft (Schlemper 2017): sampled entries become
    ``(k_pred + v k0) / (1 + v)``; unsampled ones are unchanged.
    """
    w = 12
    k_pred, k_full = _randc(2, 3, 10, w, seed=1), _randc(2, 3, 10, w, seed=2)
    mask = torch.zeros(1, 1, 1, w)
    mask[..., [0, 3, 5, 6, 7, 10]] = 1
    k0 = mask * k_full
    args = (k_pred.clone(), k0.clone(), mask.clone()) + (() if noise_lvl is None else (noise_lvl,))
    out = _tensor(_call(fn, *args, what="your data consistency"), "data consistency output", complex_=True, shape=k_pred.shape)
    sampled = mask.expand_as(k_pred) > 0
    target = k0 if noise_lvl is None else (k_pred + noise_lvl * k0) / (1 + noise_lvl)
    err_s = float((out - target)[sampled].abs().max())
    err_u = float((out - k_pred)[~sampled].abs().max())
    if err_s > 1e-5 and err_u > 1e-5 and float((out - k0)[~sampled].abs().max()) < 1e-5:
        raise CheckFailed("data consistency: the mask is inverted -- measured data were put where mask == 0 (1 means sampled)")
    if err_s > 1e-5:
        want = "the measured k0" if noise_lvl is None else f"(k_pred + v k0) / (1 + v) with v = {noise_lvl}"
        kept = " -- they still hold the prediction: replace them" if float((out - k_pred)[sampled].abs().max()) < 1e-5 else ""
        raise CheckFailed(f"data consistency: sampled k-space (mask == 1) must become {want}; max error {err_s:.3g}{kept}")
    if err_u > 1e-5:
        raise CheckFailed(
            f"data consistency: unsampled k-space (mask == 0) must keep the prediction k_pred (nothing was measured there); max change {err_u:.3g}"
        )
    kind = "hard: sampled k-space equals the measurement" if noise_lvl is None else f"soft, v = {noise_lvl}"
    _ok(f"data consistency ({kind}; unsampled k-space keeps the prediction)")


def _metric_variants(metric: str, gt: torch.Tensor, pred: torch.Tensor) -> dict[str, float]:
    """Values that common mistakes give, to name the mistake."""
    mse = float(((gt - pred) ** 2).mean())
    out: dict[str, float] = {}
    if metric == "psnr" and mse > 0:
        out["data_range = 1 instead of gt.max()"] = 10 * math.log10(1 / mse)
        out["data_range = gt.max() - gt.min() instead of gt.max()"] = 10 * math.log10(float(gt.max() - gt.min()) ** 2 / mse)
        if float(pred.max()) > 0:
            out["the prediction's maximum as data_range"] = 10 * math.log10(float(pred.max()) ** 2 / mse)
        out["20 log10 of the MSE (use 10 log10, or 20 log10 of the RMSE)"] = 20 * math.log10(float(gt.max()) ** 2 / mse)
    if metric == "nmse":
        out["normalised by ||pred||^2 instead of ||gt||^2"] = float(((gt - pred) ** 2).sum() / (pred**2).sum())
        out["a norm instead of a squared norm"] = float((gt - pred).norm() / gt.norm())
        out["the mean squared error (not normalised)"] = mse
    if metric == "ssim":
        out["data_range = 1 instead of gt.max()"] = float(_metrics.ssim(gt, pred, data_range=1.0))
        out["gt and pred swapped (data_range from pred)"] = float(_metrics.ssim(pred, gt))
    return out


def check_metric(value, metric: str, gt, pred, tol: float = 1e-3) -> None:
    """Check a metric computed by hand against the package's definition (``mc.nmse``, ``mc.psnr``,
    ``mc.ssim``; fastMRI conventions) for the same ``gt`` and ``pred``, within ``tol`` (relative).
    A wrong value is matched against common mistakes (data range, normalisation) to name it."""
    _require_done(value, f"your {metric}")
    metric = metric.lower()
    funcs = {"nmse": _metrics.nmse, "psnr": _metrics.psnr, "ssim": _metrics.ssim}
    if metric not in funcs:
        raise ValueError(f"check_metric: expected metric one of {sorted(funcs)}, got {metric!r}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(
                f"your {metric}: expected one number, got a tensor of shape {tuple(value.shape)} (average over the image)"
            )
        value = value.item()
    if not isinstance(value, (int, float, np.floating)):
        raise CheckFailed(f"your {metric}: expected a number, got {type(value).__name__}")
    value = float(value)
    gt, pred = _metrics._t(gt).double(), _metrics._t(pred).double()
    expected = float(funcs[metric](gt, pred))
    if not math.isfinite(value) or abs(value - expected) > tol * max(abs(expected), 1e-12):
        why = next(
            (m for m, v in _metric_variants(metric, gt, pred).items() if abs(v - value) <= 1e-3 * max(abs(v), 1e-12)), None
        )
        hint = f": it looks like {why}" if why else ""
        raise CheckFailed(
            f"your {metric.upper()} is {value:.6g}, expected {expected:.6g} (mc.{metric}, relative tolerance {tol:g}){hint}"
        )
    _ok(f"{metric.upper()} = {value:.6g} agrees with mc.{metric} ({expected:.6g})")


def check_score(value, name: str, at_least: float | None = None, at_most: float | None = None) -> None:
    """Check that a result reaches a target, e.g. ``check_score(ssim, "SSIM", at_least=0.85)``."""
    _require_done(value, name)
    value = float(value.item() if isinstance(value, torch.Tensor) else value)
    if not math.isfinite(value):
        raise CheckFailed(f"{name} is {value}: the computation diverged or divided by zero")
    if at_least is not None and value < at_least:
        raise CheckFailed(f"{name} = {value:.4g}, below the target {at_least:g}: train longer, or revisit your choices above")
    if at_most is not None and value > at_most:
        raise CheckFailed(f"{name} = {value:.4g}, above the limit {at_most:g}")
    bounds = ([f">= {at_least:g}"] if at_least is not None else []) + ([f"<= {at_most:g}"] if at_most is not None else [])
    _ok(f"{name} = {value:.4g}" + (f" ({' and '.join(bounds)})" if bounds else ""))


def check_warp(fn, dims: int = 2) -> None:
    """Check a warp ``fn(src, flow)`` with ``out(x) = src(x + flow(x))``, flow (B, dims, *spatial) in
    voxels: a zero flow is the identity, and a flow of one voxel along each axis agrees with
    ``mc.warp`` (right axis, right direction)."""
    shape = (9, 11) if dims == 2 else (7, 8, 9)
    g = torch.Generator().manual_seed(0)
    src = torch.rand(1, 2, *shape, generator=g)
    zero = torch.zeros(1, dims, *shape)
    out = _tensor(_call(fn, src.clone(), zero, what="your warp"), "warp output", complex_=False, shape=src.shape)
    err = float((out - src).abs().max())
    if err > 1e-5:
        cube = torch.rand(1, 1, *[shape[0]] * dims, generator=g)
        reverse = (0, 1, *range(dims + 1, 1, -1))
        if (
            float((_call(fn, cube, torch.zeros(1, dims, *cube.shape[2:]), what="your warp") - cube.permute(reverse)).abs().max())
            < 1e-5
        ):
            raise CheckFailed(
                "a zero flow permutes the axes (on a square image it transposes it): grid_sample wants coordinates in "
                "(x, y[, z]) order, the reverse of the tensor's dims -- flip the last dim of the grid"
            )
        raise CheckFailed(
            f"a zero flow must leave the image unchanged, but it changed by up to {err:.3g}: with grid_sample use "
            "align_corners=True and the normalisation 2 x / (size - 1) - 1 (align_corners=False shifts by half a voxel)"
        )
    inner = (slice(None), slice(None)) + tuple(slice(2, s - 2) for s in shape)
    for axis in range(dims):
        flow = torch.zeros(1, dims, *shape)
        flow[:, axis] = 1.0
        got = _call(fn, src.clone(), flow, what="your warp")[inner]
        ref = _warp(src, flow)[inner]
        if float((got - ref).abs().max()) < 1e-4:
            continue
        for other in range(dims):
            f2 = torch.zeros_like(flow)
            f2[:, other] = 1.0
            for sign in (1.0, -1.0):
                if float((got - _warp(src, sign * f2)[inner]).abs().max()) < 1e-4:
                    if other != axis:
                        raise CheckFailed(
                            f"a flow along axis {axis} moved the image along axis {other}: grid_sample wants coordinates in "
                            "(x, y[, z]) order, the reverse of the tensor's dims -- flip the last dim of the grid"
                        )
                    raise CheckFailed(
                        f"a flow of +1 along axis {axis} moved the image the wrong way: out(x) = src(x + u(x)) samples at x + u"
                    )
        raise CheckFailed(
            f"a flow of +1 voxel along axis {axis} does not give src(x + 1): max difference {float((got - ref).abs().max()):.3g}"
        )
    _ok(f"warp ({dims}D): zero flow is the identity; a one-voxel flow along each axis samples src(x + u)")


def check_close(value, expected, name: str = "your result", rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Check a tensor against the expected one, naming what differs: type, shape, complex vs
    magnitude, a constant scale factor, a transpose, or the size of the error."""
    exp = _metrics._t(expected)
    got = _tensor(value, name)
    if tuple(got.shape) != tuple(exp.shape):
        hint = " (transposed?)" if tuple(got.shape) == tuple(exp.shape)[::-1] else ""
        raise CheckFailed(f"{name}: expected shape {tuple(exp.shape)}, got {tuple(got.shape)}{hint}")
    if exp.is_complex() != got.is_complex():
        raise CheckFailed(f"{name}: expected a {'complex' if exp.is_complex() else 'real'} tensor, got {got.dtype}")
    got, exp = (
        got.to(torch.complex128 if exp.is_complex() else torch.float64),
        exp.to(torch.complex128 if exp.is_complex() else torch.float64),
    )
    if torch.allclose(got, exp, rtol=rtol, atol=atol):
        _ok(f"{name} matches (shape {tuple(exp.shape)})")
        return
    err = float((got - exp).abs().max())
    hint = ""
    denom = float((exp.abs() ** 2).sum())
    if denom > 0:
        scale = complex((exp.conj() * got).sum()) / denom
        scale = scale if exp.is_complex() else scale.real  # a real result is compared with a real multiple
        if abs(scale - 1) > 1e-3 and torch.allclose(got, scale * exp, rtol=1e-3, atol=atol * 10):
            hint = (
                f": it is the expected result times {scale.real:.4g}"
                if abs(scale.imag) < 1e-6 * abs(scale)
                else f": off by a factor {scale:.3g}"
            )
    if (
        not hint
        and exp.ndim >= 2
        and exp.shape[-1] == exp.shape[-2]
        and torch.allclose(got, exp.transpose(-1, -2), rtol=rtol, atol=atol)
    ):
        hint = ": it is the transpose of the expected result (rows and columns swapped)"
    raise CheckFailed(
        f"{name} differs from the expected result by up to {err:.3g} (tolerance rtol={rtol:g}, atol={atol:g}){hint}"
    )


#: What each spin-echo weighting needs, and why: (TR range, TE range, tissue order), times in ms.
_WEIGHTINGS = {
    "T1w": dict(tr=(300, 800), te=(0, 30), order=("wm", "gm", "csf")),
    "T2w": dict(tr=(2000, float("inf")), te=(60, 200), order=("csf", "gm", "wm")),
    "PDw": dict(tr=(2000, float("inf")), te=(0, 30), order=("gm", "wm")),  # CSF recovers slowly: anywhere
}


def check_weighting(tr, te, weighting: str, field: float = 1.5) -> None:
    """Check a spin-echo TR and TE (ms) for a weighting ('T1w', 'T2w' or 'PDw') at ``field`` T.

    The brain tissues' signals (``mc.spin_echo`` with ``mc.tissue`` values) must come in the
    weighting's order (T1w: WM > GM > CSF; T2w: CSF > GM > WM; PDw: GM > WM), and TR and TE must lie in
    the ranges where the *other* relaxation time no longer matters (T1w: TR 300-800, TE <= 30;
    T2w: TR >= 2000, TE 60-200; PDw: TR >= 2000, TE <= 30). A wrong choice is told what it weights.
    """
    _require_done(tr, "TR")
    _require_done(te, "TE")
    if weighting not in _WEIGHTINGS:
        raise ValueError(f"check_weighting: expected weighting one of {sorted(_WEIGHTINGS)}, got {weighting!r}")
    try:
        tr, te = float(tr), float(te)
    except (TypeError, ValueError):
        raise CheckFailed(f"TR and TE: expected two numbers in ms, got {tr!r} and {te!r}") from None
    if not (0 < te < tr):
        raise CheckFailed(
            f"TR = {tr:g} ms, TE = {te:g} ms: the echo must come after the excitation and before the next one (0 < TE < TR)"
        )
    sig = {}
    for name in ("csf", "gm", "wm"):
        t = _tissue(name, field)
        sig[name] = float(_spin_echo(t.pd, t.t1, t.t2, tr, te))
    order = tuple(sorted(sig, key=sig.get, reverse=True))
    shown = ", ".join(f"{n.upper()} {sig[n]:.3f}" for n in order)
    want = _WEIGHTINGS[weighting]
    (tr_lo, tr_hi), (te_lo, te_hi) = want["tr"], want["te"]
    problems = []
    if tr < tr_lo:
        problems.append(
            f"TR = {tr:g} ms is short: tissues with a long T1 (CSF, T1 {_tissue('csf', field).t1:g} ms) have not recovered "
            f"before the next excitation, so T1 differences still show (T1 weighting); use TR >= {tr_lo:g} ms"
        )
    if tr > tr_hi:
        problems.append(
            f"TR = {tr:g} ms is long: every tissue recovers fully and the T1 contrast you want is gone; use TR <= {tr_hi:g} ms"
        )
    if te < te_lo:
        problems.append(
            f"TE = {te:g} ms is short: little T2 decay has happened yet, so T2 differences barely show; use TE >= {te_lo:g} ms"
        )
    if te > te_hi:
        what = "the T2 decay now dominates (T2 weighting)" if weighting != "T2w" else "almost all signal has decayed (poor SNR)"
        problems.append(f"TE = {te:g} ms is long: {what}; use TE <= {te_hi:g} ms")
    if any(sig[a] <= sig[b] for a, b in zip(want["order"], want["order"][1:])):
        problems.append(
            f"the tissues come out as {' > '.join(n.upper() for n in order)}, a {weighting} image has "
            f"{' > '.join(n.upper() for n in want['order'])}"
        )
    if problems:
        raise CheckFailed(
            f"TR {tr:g} ms, TE {te:g} ms is not {weighting} at {field:g} T (signals: {shown}):\n  - " + "\n  - ".join(problems)
        )
    _ok(f"TR {tr:g} ms, TE {te:g} ms gives a {weighting} spin echo at {field:g} T: {shown}")
