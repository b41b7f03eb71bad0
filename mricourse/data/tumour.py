"""BraTS-like brain tumours: tissue parameters (teaching values) and lesion geometry."""

from __future__ import annotations

from ..signal import Tissue

__all__ = ["TUMOUR_TISSUES"]

#: Teaching values: oedema has long T1/T2, the necrotic core is almost fluid, the enhancing rim
#: takes up the contrast agent (see ``CONCENTRATION`` in :mod:`mricourse.data.tumour`).
TUMOUR_TISSUES: dict[float, dict[str, Tissue]] = {
    1.5: {"necrosis": Tissue(2300, 250, 0.95), "oedema": Tissue(1100, 130, 0.9), "enhancing": Tissue(1000, 100, 0.88)},
    3.0: {"necrosis": Tissue(3400, 300, 0.95), "oedema": Tissue(1700, 150, 0.9), "enhancing": Tissue(1550, 120, 0.88)},
}
