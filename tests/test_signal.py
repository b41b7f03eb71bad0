import math

import numpy as np
import pytest

import mricourse as mc


def _signals(seq, field):
    return {
        t: float(mc.signal.sequence_signal(seq, *(lambda p: (p.pd, p.t1, p.t2))(mc.tissue(t, field)), field=field))
        for t in ("csf", "gm", "wm")
    }


@pytest.mark.parametrize("field", [1.5, 3.0])
def test_contrast_ordering(field):
    t1w, t2w, flair = _signals("T1w", field), _signals("T2w", field), _signals("FLAIR", field)
    assert t1w["wm"] > t1w["gm"] > t1w["csf"]
    assert t2w["csf"] > t2w["gm"] > t2w["wm"]
    assert flair["gm"] > flair["wm"] > flair["csf"]
    assert flair["csf"] < 1e-6  # CSF nulled
    pdw = _signals("PDw", field)
    assert pdw["gm"] > pdw["wm"]  # PD weighting: small contrast, following proton density
    assert max(pdw.values()) / min(pdw.values()) < 1.5 < max(t2w.values()) / min(t2w.values())


def test_flair_ti_nulls_longitudinal_magnetisation():
    t1, tr = 2569.0, 9000.0
    ti = mc.flair_ti(t1, tr)
    mz = 1 - 2 * math.exp(-ti / t1) + math.exp(-tr / t1)
    assert abs(mz) < 1e-12
    assert 1600 < ti < 1800


def test_equations_work_on_arrays_and_tensors():
    import torch

    t1 = np.array([500.0, 833.0])
    s_np = mc.spin_echo(1.0, t1, 80.0, 500.0, 15.0)
    s_t = mc.spin_echo(1.0, torch.tensor(t1), 80.0, 500.0, 15.0)
    np.testing.assert_allclose(s_np, s_t.numpy())
    assert mc.signal.bssfp(1.0, t1, 50.0, 3.0, 60.0).shape == (2,)
    assert mc.signal.spoiled_gre(1.0, t1, 40.0, 20.0, 5.0, 20.0).shape == (2,)


def test_spin_echo_limits():
    # very long TR, TE -> 0: signal equals proton density
    assert mc.spin_echo(0.8, 1000.0, 100.0, 1e6, 1e-9) == pytest.approx(0.8)


def test_contrast_agent_shortens_t1():
    assert mc.signal.t1_with_contrast(1000.0, 0.0) == pytest.approx(1000.0)
    assert mc.signal.t1_with_contrast(1000.0, 0.5) == pytest.approx(1 / (1 / 1000 + 4 * 0.5 / 1000))
    pd, t2 = 0.86, 83.0
    pre = mc.signal.sequence_signal("T1w", pd, 833.0, t2)
    post = mc.signal.sequence_signal("T1w+c", pd, mc.signal.t1_with_contrast(833.0, 0.3), t2)
    assert post > pre


def test_unknown_names():
    with pytest.raises(ValueError, match="expected one of"):
        mc.tissue("bone")
    with pytest.raises(ValueError, match="field strength"):
        mc.tissue("gm", 7.0)
    with pytest.raises(ValueError, match="unknown sequence"):
        mc.signal.sequence_signal("DWI", 1, 1, 1)
