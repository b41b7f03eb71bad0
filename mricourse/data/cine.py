"""Dynamic cardiac phantom: 2D+t short-axis cine sequences with exact labels, for chapter 2.

One "subject" is a mid-ventricular short-axis slice over one cardiac cycle (frame 0 = end
diastole), in the radiological orientation (anterior at the top, the patient's left on the image
right): chest wall (subcutaneous fat, muscle, sternum), lungs with vessels, mediastinal fat,
liver, spine (vertebral body, spinal canal, paraspinal muscles), descending aorta, and the heart:
a left ventricle (LV) whose myocardium keeps a constant area while it contracts (so the wall
thickens in systole), two papillary muscles that move and twist with the wall, a crescent right
ventricle (RV) wrapped around the septum, and epicardial fat. Heart rate, geometry, ejection
fractions and tissue parameters are random per subject; breathing and a small myocardial lesion
are optional. Contrast is balanced SSFP (:func:`mricourse.signal.bssfp`); images are complex with
a smooth random phase. Everything depends only on ``(seed, subject index)``.

Tissue parameters at 1.5 T: blood, myocardium, liver and skeletal muscle from Stanisz et al.,
T1, T2 relaxation and magnetization transfer in tissue at 3T, MRM 54 (2005) (their 1.5 T
values); fat and CSF from :data:`mricourse.signal.TISSUES`; lung, marrow and oedema are teaching
values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..fft import fft2c, ifft2c
from ..signal import Tissue, bssfp, tissue
from .fields import bias_field, rng_for, smooth_noise, torch_generator

__all__ = ["CARDIAC_TISSUES", "CINE_ACQUISITION", "CINE_LABELS", "FOV_MM", "CineSubject", "contraction", "cine_subject", "cine_sequences"]

CARDIAC_TISSUES: dict[str, Tissue] = {
    "blood": Tissue(1441, 290, 0.9),
    "myocardium": Tissue(1030, 40, 0.8),
    "liver": Tissue(576, 46, 0.8),
    "muscle": Tissue(1008, 44, 0.8),
    "fat": tissue("fat"),
    "csf": tissue("csf"),
    "lung": Tissue(1300, 40, 0.15),
    "marrow": Tissue(550, 50, 0.9),
    "bone": Tissue(1000, 10, 0.05),
    "oedema": Tissue(1200, 80, 0.9),
}

#: Label values; 1-3 follow the ACDC challenge (which counts papillary muscles as LV cavity).
CINE_LABELS: dict[str, int] = {
    "background": 0,
    "rv": 1,
    "myocardium": 2,
    "lv": 3,
    "soft_tissue": 4,
    "lung": 5,
    "liver": 6,
    "spine": 7,
    "aorta": 8,
    "papillary": 9,
    "lesion": 10,
}

BSSFP = dict(tr=3.0, flip=60.0)  # ms, degrees
#: how the course's ``cine`` data set is acquired (:func:`cine_subject`'s ``oversample`` and ``noise``):
#: k-space of an object rendered twice as finely, and complex noise of 1-3 % of the brightest
#: tissue (an SNR of about 30-100 in the blood pool, as bSSFP cine at 1.5 T)
CINE_ACQUISITION = dict(oversample=2, noise=[0.01, 0.03])
FOV_MM = 380.0  # field of view at fov = 1 (the normalised image spans [-1, 1], the chest about +-0.85)


def contraction(phase, systole: float = 0.38):
    """Contraction of the ventricles over the cardiac cycle, 0 at end diastole, 1 at end systole.

    ``phase`` in [0, 1) (fraction of the R-R interval, 0 = R wave), ``systole`` the fraction spent
    ejecting. Ejection (cosine ramp to 1), rapid filling (to 0.25), diastasis (slowly to 0.18),
    atrial kick (back to 0): the shape of a normal LV volume curve, inverted.
    """
    p = torch.as_tensor(phase, dtype=torch.float32) % 1.0
    es = float(systole)
    fill = es + 0.35 * (1 - es)  # end of rapid filling
    atrial = 1 - 0.15 * (1 - es)  # start of the atrial kick

    def ramp(t):  # 0 -> 1, smooth
        return 0.5 * (1 - torch.cos(math.pi * t.clamp(0, 1)))

    return torch.where(
        p < es,
        ramp(p / es),
        torch.where(
            p < fill,
            1 - 0.75 * ramp((p - es) / (fill - es)),
            torch.where(p < atrial, 0.25 - 0.07 * (p - fill) / (atrial - fill), 0.18 * (1 - ramp((p - atrial) / (1 - atrial)))),
        ),
    )


@dataclass
class CineSubject:
    """One cine sequence.

    Attributes:
        image: (T, H, W) complex64, magnitude with its 99.5th percentile at 1.
        labels: (T, H, W) int16, values of :data:`CINE_LABELS`.
        heart_rate: beats per minute; ``rr`` the R-R interval in ms (the frames span it).
        params: the random geometry (normalised units: the image spans [-1, 1]).
    """

    image: torch.Tensor
    labels: torch.Tensor
    heart_rate: float
    rr: float
    params: dict = field(default_factory=dict)


def _sdf_ellipse(x, y, cx, cy, a, b, angle=0.0):
    """Signed distance (negative inside, first order) to an ellipse of semi-axes (a, b) rotated by
    ``angle``; every argument broadcasts (e.g. (T, 1, 1) parameters against (1, H, W) grids)."""
    c, s = torch.cos(torch.as_tensor(angle)), torch.sin(torch.as_tensor(angle))
    dx, dy = x - cx, y - cy
    u, v = c * dx + s * dy, -s * dx + c * dy
    a, b = torch.as_tensor(a, dtype=x.dtype), torch.as_tensor(b, dtype=x.dtype)
    rho = torch.sqrt((u / a) ** 2 + (v / b) ** 2)
    grad = torch.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) / rho.clamp_min(1e-6)
    return torch.where(rho > 0.5, (rho - 1) / grad.clamp_min(1e-6), (rho - 1) * torch.minimum(a, b))


def _sdf_circle(x, y, cx, cy, r):
    return torch.sqrt((x - cx) ** 2 + (y - cy) ** 2) - r


def _geometry(rng: np.random.Generator) -> dict:
    """Random anatomy of one subject, in normalised units (half the field of view = 1)."""
    u = rng.uniform
    p = dict(
        heart_rate=u(50, 100),
        body_a=u(0.80, 0.92),
        body_b=u(0.56, 0.66),
        fat=u(0.03, 0.08),
        muscle=u(0.03, 0.05),
        heart_x=u(0.05, 0.16),
        heart_y=u(-0.10, 0.0),
        heart_angle=u(-0.25, 0.25),
        lv_radius=u(0.12, 0.16),  # end-diastolic endocardial radius
        lv_wall=u(0.045, 0.06),  # end-diastolic wall thickness
        lv_ellipticity=u(1.0, 1.12),
        lv_ef=u(0.50, 0.70),  # fraction of the cavity area ejected
        twist=u(0.10, 0.25),  # rotation at end systole (rad)
        shift=u(0.01, 0.03),  # systolic translation of the heart
        rv_angle=math.pi + u(0.15, 0.5),  # towards the image left and anterior
        rv_depth=u(0.5, 0.8),  # RV cavity depth in LV epicardial radii
        rv_ef=u(0.40, 0.60),
        rv_wall=u(0.012, 0.018),
        epi_fat=u(0.008, 0.025),
        pap_radius=u(0.022, 0.03),
        pap_angles=(-0.8 + u(-0.25, 0.25), 2.0 + u(-0.25, 0.25)),
        lesion_angle=u(-math.pi, math.pi),
        resp_period=u(3.5, 5.0),  # s
        resp_amp=u(0.03, 0.06),
        resp_phase=u(0, 2 * math.pi),
        jitter=rng.uniform(0.93, 1.07, size=(len(CARDIAC_TISSUES), 2)),  # T1, T2 factors
        vessels=rng.uniform(size=(14, 3)),  # lung vessels: position in the lung, size
        phase=rng.normal(0, 1, size=6),  # smooth background phase coefficients
        flow=u(0.05, 0.15),  # the blood pools darken by this fraction in systole (inflow, flow dephasing)
        trabeculae=rng.uniform(size=(10, 2)),  # small muscle bundles at the LV endocardium: angle, size
        noise_draw=u(0, 1),  # where this subject's noise level lies in an acquisition's range
    )
    p["systole"] = min(0.38 * math.sqrt(60 / p["heart_rate"]), 0.5)  # ~380 ms at 60 bpm
    return p


def _signals(p: dict) -> dict[str, float]:
    out = {}
    for (name, t), (j1, j2) in zip(CARDIAC_TISSUES.items(), p["jitter"]):
        out[name] = float(bssfp(t.pd, t.t1 * j1, t.t2 * j2, **BSSFP))
    out["mediastinum"] = 0.6 * out["fat"] + 0.4 * out["muscle"]
    return out


def _render(
    p: dict, frames: int, size: tuple[int, int], fov: float, breathing: bool, lesion: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnitude (T, H, W) float32 and labels (T, H, W) int16 of one subject."""
    h, w = size
    scale = max(h, w) / 2 / fov  # pixels per normalised unit: the longer side spans 2 fov
    centre = min(1.0, 2 * (1 - fov))  # fov 1: the chest in the middle; fov <= 0.5: the heart
    ys = p["heart_y"] * centre + (torch.arange(h, dtype=torch.float32) - (h - 1) / 2) / scale
    xs = p["heart_x"] * centre + (torch.arange(w, dtype=torch.float32) - (w - 1) / 2) / scale
    y, x = ys.view(1, h, 1), xs.view(1, 1, w)
    edge = 1.2 / scale  # partial volume: a linear ramp 1.2 pixels wide across every boundary
    rr = 60.0 / p["heart_rate"]  # s
    t = torch.arange(frames, dtype=torch.float32) * rr / frames  # (T,) seconds since the R wave
    c = contraction(t / rr, p["systole"]).view(-1, 1, 1)  # (T, 1, 1)
    resp = torch.sin(2 * math.pi * t / p["resp_period"] + p["resp_phase"]).view(-1, 1, 1) if breathing else torch.zeros(1, 1, 1)
    sig = _signals(p)
    img = torch.zeros(1, h, w)  # (1, H, W) while nothing moves, then (T, H, W) by broadcasting
    lab = torch.zeros(1, h, w, dtype=torch.int16)

    def paint(d, value, label, within=None):
        nonlocal img, lab
        m = (0.5 - d / edge).clamp(0, 1)
        if within is not None:
            m = m * within
        img = img * (1 - m) + m * value
        lab = torch.where(m > 0.5, torch.as_tensor(label, dtype=torch.int16), lab)
        return m

    L = CINE_LABELS
    # thorax: skin/fat, chest-wall muscle, the cavity (mediastinal fat between the lungs)
    bcy = 0.05 - 0.01 * resp
    ba, bb = p["body_a"], p["body_b"] * (1 + 0.015 * resp)
    paint(_sdf_ellipse(x, y, 0.0, bcy, ba, bb), sig["fat"], L["soft_tissue"])
    paint(_sdf_ellipse(x, y, 0.0, bcy, ba - p["fat"], bb - p["fat"]), sig["muscle"], L["soft_tissue"])
    ca, cb = ba - p["fat"] - p["muscle"], bb - p["fat"] - p["muscle"]
    cavity = paint(_sdf_ellipse(x, y, 0.0, bcy, ca, cb), sig["mediastinum"], L["soft_tissue"])
    paint(
        _sdf_ellipse(x, y, 0.0, bcy - bb + p["fat"] + 0.5 * p["muscle"], 0.07, 0.6 * p["muscle"]), sig["marrow"], L["soft_tissue"]
    )
    # lungs (with vessels), liver under the right hemidiaphragm
    lungs = []
    for sx in (-1, 1):
        lcx, lcy, la, lb = sx * 0.45 * ca, 0.02 - 0.01 * resp, 0.36 * ca, 0.82 * cb * (1 + 0.03 * resp)
        lungs.append(paint(_sdf_ellipse(x, y, lcx, lcy, la, lb, 0.1 * sx), sig["lung"], L["lung"], within=cavity))
        for vx, vy, vr in p["vessels"][(sx + 1) // 2 :: 2]:
            r = 0.006 + 0.012 * vr
            paint(
                _sdf_circle(x, y, lcx + (vx - 0.5) * 1.3 * la, lcy + (vy - 0.5) * 1.5 * lb, r),
                0.5 * sig["blood"],
                L["lung"],
                lungs[-1],
            )
    liver_y = 0.42 * cb + 0.05 + 0.04 * resp
    paint(_sdf_ellipse(x, y, -0.45 * ca, liver_y + 0.25, 0.55 * ca, 0.45, 0.3), sig["liver"], L["liver"], within=cavity)
    # spine and aorta at the back
    sy = bcy + bb - p["fat"] - p["muscle"] - 0.16
    for sx in (-1, 1):
        paint(_sdf_ellipse(x, y, sx * 0.13, sy + 0.1, 0.09, 0.07), sig["muscle"], L["soft_tissue"])
    paint(_sdf_circle(x, y, 0.0, sy, 0.1), sig["bone"], L["spine"])
    paint(_sdf_circle(x, y, 0.0, sy, 0.085), sig["marrow"], L["spine"])
    paint(_sdf_circle(x, y, 0.0, sy + 0.14, 0.035), sig["csf"], L["spine"])
    c_aorta = contraction(t / rr - 0.05, p["systole"]).view(-1, 1, 1)  # the pulse arrives a little later
    paint(_sdf_circle(x, y, 0.14, sy - 0.07, 0.05 * (1 + 0.08 * c_aorta)), sig["blood"], L["aorta"])

    # the heart, in its own frame: centre (hx, hy), rotated by ang, elliptic by e
    hx = p["heart_x"] + p["shift"] * c * math.cos(p["rv_angle"] + 2.2)
    hy = p["heart_y"] + p["shift"] * c * math.sin(p["rv_angle"] + 2.2) + 0.8 * p["resp_amp"] * resp
    ang = p["heart_angle"] + p["twist"] * c
    e = p["lv_ellipticity"]
    cs, sn = torch.cos(ang), torch.sin(ang)
    u = (cs * (x - hx) + sn * (y - hy)) / e  # (T, H, W)
    v = (-sn * (x - hx) + cs * (y - hy)) * e
    r_endo = p["lv_radius"] * torch.sqrt(1 - p["lv_ef"] * c)  # (T, 1, 1)
    area = (p["lv_radius"] + p["lv_wall"]) ** 2 - p["lv_radius"] ** 2  # myocardial area / pi: constant
    r_epi = torch.sqrt(r_endo**2 + area)
    depth = p["rv_depth"] * r_epi * (1 - p["rv_ef"] * c)
    off = 0.6 * r_epi  # RV outer ellipse: centre, radial and tangential semi-axes (spans ~150-200 degrees)
    ra, rb = r_epi - off + depth, 0.9 * r_epi + 0.5 * depth
    rcx, rcy = off * math.cos(p["rv_angle"]), off * math.sin(p["rv_angle"])
    zero = torch.zeros(())
    fat_w, wall = p["epi_fat"], p["rv_wall"]
    env = torch.minimum(
        _sdf_ellipse(u, v, rcx, rcy, ra + wall + fat_w, rb + wall + fat_w, p["rv_angle"]),
        _sdf_circle(u, v, zero, zero, r_epi + fat_w),
    )
    paint(env, sig["fat"], L["soft_tissue"])
    paint(_sdf_ellipse(u, v, rcx, rcy, ra + wall, rb + wall, p["rv_angle"]), sig["myocardium"], L["soft_tissue"])
    pool_signal = sig["blood"] * (1 - p["flow"] * c)  # (T, 1, 1)
    paint(_sdf_ellipse(u, v, rcx, rcy, ra, rb, p["rv_angle"]), pool_signal, L["rv"])
    myo = paint(_sdf_circle(u, v, zero, zero, r_epi), sig["myocardium"], L["myocardium"])
    pool = paint(_sdf_circle(u, v, zero, zero, r_endo), pool_signal, L["lv"])
    for a, size in p["trabeculae"]:  # trabeculae: sub-pixel to pixel-sized, on the endocardium
        rt = 0.004 + 0.008 * size
        a = 2 * math.pi * a
        paint(_sdf_circle(u, v, (r_endo - 0.5 * rt) * math.cos(a), (r_endo - 0.5 * rt) * math.sin(a), rt), sig["myocardium"], L["papillary"])
    for a in p["pap_angles"]:
        rp = p["pap_radius"]
        paint(
            _sdf_circle(u, v, (r_endo - 0.8 * rp) * math.cos(a), (r_endo - 0.8 * rp) * math.sin(a), rp),
            sig["myocardium"],
            L["papillary"],
        )
    if lesion:
        rm, th = 0.5 * (r_endo + r_epi), p["lesion_angle"]
        d = _sdf_circle(u, v, rm * math.cos(th), rm * math.sin(th), 0.55 * (r_epi - r_endo))
        paint(d, sig["oedema"], L["lesion"], within=myo * (1 - pool))
    return img.expand(frames, h, w).contiguous(), lab.expand(frames, h, w).contiguous()


def cine_subject(
    seed: int,
    index: int = 0,
    size: int | tuple[int, int] = 128,
    frames: int = 20,
    fov: float = 1.0,
    breathing: bool = False,
    lesion: bool = False,
    oversample: int = 1,
    noise: float | tuple[float, float] = 0.0,
) -> CineSubject:
    """Cine sequence of subject ``index`` drawn from ``seed`` (deterministic).

    Args:
        size: image size (H, W) or one int; the longer side spans the field of view, ``FOV_MM * fov``.
        frames: number of frames over one R-R interval (frame 0 = end diastole).
        fov: field of view relative to the whole chest (1); smaller values zoom in towards the
            heart (0.5 and below: centred on it), as cine images are often cropped.
        breathing: free breathing (heart, liver, lungs and chest wall move with respiration);
            otherwise a breath-hold.
        lesion: a small bright (oedematous) spot in the LV myocardium that moves with the wall.
        oversample: render the anatomy on a grid this many times finer and keep only the central
            ``size`` of its k-space, as a scanner samples the k-space of a continuous object: partial
            volume and truncation (Gibbs) ringing come from the acquisition, and the image is not
            the one a reconstruction's own forward model would make (no "inverse crime").
            1: the image is rendered on the output grid (a 1.2-pixel edge ramp).
        noise: complex Gaussian noise of this standard deviation per real and imaginary part
            (relative to the image's brightest tissue, about 1), added to the k-space (so the
            magnitude image is Rician), or a range ``(low, high)``: each subject's level drawn
            log-uniformly in it.
    :data:`CINE_ACQUISITION` holds the settings of the course's ``cine`` data set.
    """
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    lo, hi = (noise, noise) if isinstance(noise, (int, float)) else tuple(noise)
    if min(h, w) < 16 or frames < 1 or not 0.2 <= fov <= 2:
        raise ValueError(
            f"cine_subject: expected a size of at least 16 pixels, frames >= 1 and fov in [0.2, 2], got size {size!r}, "
            f"frames {frames!r}, fov {fov!r}"
        )
    if not isinstance(oversample, (int, np.integer)) or oversample < 1 or not 0 <= lo <= hi:
        raise ValueError(
            f"cine_subject: expected an integer oversample >= 1 and a noise level (or range low <= high) >= 0, "
            f"got oversample {oversample!r}, noise {noise!r}"
        )
    rng = rng_for(seed, index, 7)
    p = _geometry(rng)
    o = int(oversample)
    fh, fw = h * o, w * o
    mag, lab = _render(p, frames, (fh, fw), fov, breathing, lesion)
    gen = torch_generator(rng)
    coarse = smooth_noise((fh, fw), spacing=o * max(h, w) / 24 / fov, generator=gen)[0]  # (1, fH, fW)
    fine = smooth_noise((fh, fw), spacing=1.5 * o, generator=gen)[0] if o > 1 else 0.0  # tissue grain
    texture = 1 + 0.06 * coarse + 0.04 * fine
    shading = bias_field((fh, fw), 0.15, gen)[0]
    mag = mag * texture * shading
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, fh), torch.linspace(-1, 1, fw), indexing="ij")
    a = p["phase"]
    phase = 0.3 * a[0] + 0.8 * (a[1] * xx + a[2] * yy) + 0.5 * (a[3] * xx * yy + a[4] * xx**2 + a[5] * yy**2)
    image = mag * torch.exp(1j * phase.float())  # (T, fH, fW) complex64
    if o > 1:  # the central (h, w) of the fine image's k-space; centred FFT: fine index fH // 2 is coarse h // 2
        r0, c0 = fh // 2 - h // 2, fw // 2 - w // 2
        image = ifft2c(fft2c(image)[..., r0 : r0 + h, c0 : c0 + w]) / o  # same intensities
        lab = lab[..., fh // 2 - o * (h // 2) :: o, fw // 2 - o * (w // 2) :: o][..., :h, :w].contiguous()
    image = image / float(np.percentile(image.abs().numpy(), 99.5))
    if hi > 0:
        level = lo * (hi / lo) ** p["noise_draw"] if lo > 0 else lo + (hi - lo) * p["noise_draw"]
        n = torch.randn((2, *image.shape), generator=gen)
        image = image + level * torch.complex(n[0], n[1])
        p["noise"] = float(level)
    return CineSubject(image.to(torch.complex64), lab, p["heart_rate"], 60_000.0 / p["heart_rate"], p)


def cine_sequences(
    n_subjects: int,
    size: int | tuple[int, int] = 128,
    frames: int = 20,
    seed: int = 0,
    fov: float = 1.0,
    breathing: bool = False,
    lesion: bool = False,
    start: int = 0,
    oversample: int = 1,
    noise: float | tuple[float, float] = 0.0,
) -> dict[str, torch.Tensor]:
    """A batch of cine sequences from distinct subjects ``start .. start + n_subjects - 1``.

    Returns ``dict(images=(N, T, H, W) complex64, labels=(N, T, H, W) int16, subject=(N,) int64,
    heart_rate=(N,) float32)``. Subject ``i`` depends only on ``(seed, i)``: disjoint seeds or
    index ranges give train / validation / test splits by subject. ``oversample`` and ``noise``: the
    acquisition, as in :func:`cine_subject` (``**CINE_ACQUISITION``: the course's data set).
    """
    if n_subjects < 1:
        raise ValueError(f"cine_sequences: expected n_subjects >= 1, got {n_subjects}")
    subs = [cine_subject(seed, start + i, size, frames, fov, breathing, lesion, oversample, noise) for i in range(n_subjects)]
    return dict(
        images=torch.stack([s.image for s in subs]),
        labels=torch.stack([s.labels for s in subs]),
        subject=torch.arange(start, start + n_subjects, dtype=torch.int64),
        heart_rate=torch.tensor([s.heart_rate for s in subs], dtype=torch.float32),
    )
