"""Tissue parameters and MR signal equations (times in ms, flip angles in degrees).

Tissue values: 1.5 T from BrainWeb (Kwan et al. 1999); 3 T from Wansapura et al. 1999 for GM and
WM, and approximate literature values for CSF, fat and muscle. Proton density does not depend on
the field. BrainWeb's CSF T2 at 1.5 T (329 ms) is far shorter than measured values (about 1-2 s,
as the 3 T entry has): it is kept so that the 1.5 T images follow BrainWeb's simulator, and at the
TEs of the course's sequences CSF stays the brightest tissue of a T2-weighted image either way.
Every equation works elementwise on floats, numpy arrays or torch tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Tissue",
    "TISSUES",
    "SEQUENCES",
    "tissue",
    "spin_echo",
    "inversion_recovery",
    "flair_ti",
    "spoiled_gre",
    "bssfp",
    "t1_with_contrast",
    "sequence_signal",
]


@dataclass(frozen=True)
class Tissue:
    """Relaxation times (ms) and proton density (relative to water)."""

    t1: float
    t2: float
    pd: float


TISSUES: dict[float, dict[str, Tissue]] = {
    1.5: {
        "csf": Tissue(2569, 329, 1.0),  # BrainWeb's T2, shorter than measured (module docstring)
        "gm": Tissue(833, 83, 0.86),
        "wm": Tissue(500, 70, 0.77),
        "fat": Tissue(350, 70, 1.0),
        "muscle": Tissue(900, 47, 1.0),
    },
    3.0: {
        "csf": Tissue(4160, 1650, 1.0),
        "gm": Tissue(1331, 110, 0.86),
        "wm": Tissue(832, 80, 0.77),
        "fat": Tissue(370, 125, 1.0),
        "muscle": Tissue(1412, 50, 1.0),
    },
}

#: Standard clinical weightings (spin echo and inversion recovery); FLAIR's TI nulls CSF.
SEQUENCES: dict[str, dict] = {
    "T1w": dict(kind="spin_echo", tr=500.0, te=15.0),
    "T2w": dict(kind="spin_echo", tr=4000.0, te=100.0),
    "PDw": dict(kind="spin_echo", tr=3000.0, te=15.0),
    "FLAIR": dict(kind="inversion_recovery", tr=9000.0, te=120.0, ti="null_csf"),
    "T1w+c": dict(kind="spin_echo", tr=500.0, te=15.0),  # with a contrast agent in the T1 map
}


def tissue(name: str, field: float = 1.5) -> Tissue:
    """Parameters of ``name`` ('csf', 'gm', 'wm', 'fat', 'muscle') at 1.5 or 3 T."""
    if field not in TISSUES:
        raise ValueError(f"expected a field strength in {sorted(TISSUES)} T, got {field!r}")
    if name not in TISSUES[field]:
        raise ValueError(f"unknown tissue {name!r}; expected one of {sorted(TISSUES[field])}")
    return TISSUES[field][name]


def _exp(x):
    return np.exp(x) if not hasattr(x, "exp") else x.exp()


def spin_echo(pd, t1, t2, tr: float, te: float):
    """Spin echo: ``S = PD (1 - 2 exp(-(TR - TE/2)/T1) + exp(-TR/T1)) exp(-TE/T2)``."""
    return pd * (1 - 2 * _exp(-(tr - te / 2) / t1) + _exp(-tr / t1)) * _exp(-te / t2)


def inversion_recovery(pd, t1, t2, tr: float, te: float, ti: float, magnitude: bool = True):
    """Inversion recovery (TE << TR): ``S = PD (1 - 2 exp(-TI/T1) + exp(-TR/T1)) exp(-TE/T2)``.

    Magnitude images (the default) show ``|S|``: a tissue whose longitudinal magnetisation
    crosses zero at TI is nulled.
    """
    s = pd * (1 - 2 * _exp(-ti / t1) + _exp(-tr / t1)) * _exp(-te / t2)
    return abs(s) if magnitude else s


def flair_ti(t1_csf: float, tr: float) -> float:
    """Inversion time that nulls a tissue of longitudinal relaxation ``t1_csf``:
    ``TI = T1 ln(2 / (1 + exp(-TR/T1)))``."""
    return t1_csf * math.log(2 / (1 + math.exp(-tr / t1_csf)))


def spoiled_gre(pd, t1, t2star, tr: float, te: float, flip: float):
    """Spoiled gradient echo (FLASH): ``S = PD sin(a) (1 - E1) / (1 - cos(a) E1) exp(-TE/T2*)``."""
    a = math.radians(flip)
    e1 = _exp(-tr / t1)
    return pd * math.sin(a) * (1 - e1) / (1 - math.cos(a) * e1) * _exp(-te / t2star)


def bssfp(pd, t1, t2, tr: float, flip: float):
    """Balanced SSFP on resonance, TE = TR/2:
    ``S = PD sin(a) (1 - E1) sqrt(E2) / (1 - (E1 - E2) cos(a) - E1 E2)``."""
    a = math.radians(flip)
    e1, e2 = _exp(-tr / t1), _exp(-tr / t2)
    return pd * math.sin(a) * (1 - e1) * e2**0.5 / (1 - (e1 - e2) * math.cos(a) - e1 * e2)


def t1_with_contrast(t1, concentration, r1: float = 4.0):
    """T1 (ms) after a gadolinium agent: ``1/T1 = 1/T1_0 + r1 C`` with r1 in /s/mM, C in mM."""
    return 1.0 / (1.0 / t1 + r1 * concentration / 1000.0)


def sequence_signal(name: str, pd, t1, t2, field: float = 1.5, **overrides):
    """Signal of a named weighting from :data:`SEQUENCES` ('T1w', 'T2w', 'PDw', 'FLAIR', 'T1w+c').

    ``overrides`` replace the sequence's TR/TE/TI. FLAIR's TI nulls CSF at ``field``.
    For 'T1w+c' pass the post-contrast T1 map (see :func:`t1_with_contrast`).
    """
    if name not in SEQUENCES:
        raise ValueError(f"unknown sequence {name!r}; expected one of {sorted(SEQUENCES)}")
    p = {**SEQUENCES[name], **overrides}
    if p["kind"] == "spin_echo":
        return spin_echo(pd, t1, t2, p["tr"], p["te"])
    ti = p["ti"]
    if ti == "null_csf":
        ti = flair_ti(tissue("csf", field).t1, p["tr"])
    return inversion_recovery(pd, t1, t2, p["tr"], p["te"], ti)
