"""The figure helpers the chapters share."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import mricourse as mc  # noqa: E402

CURVE = [{"step": 100, "ssim": 0.70}, {"step": 200, "ssim": 0.82}, {"step": 300, "ssim": 0.90}]


def test_learning_curve_says_where_the_model_passes_each_baseline():
    fig, ax = plt.subplots()
    passes = mc.plot_learning_curve(CURVE, "ssim", {"CG-SENSE": 0.80, "CS": 0.95}, own=(50, 0.6), ax=ax)
    assert passes == {"CG-SENSE": 200, "CS": None}
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["long run", "this chapter's run", "CG-SENSE", "CS"]
    plt.close(fig)


def test_learning_curve_lower_is_better_and_bad_input():
    fig, ax = plt.subplots()
    errors = [{"step": s, "mae": 1 - p["ssim"]} for s, p in zip((10, 20, 30), CURVE)]
    assert mc.plot_learning_curve(errors, "mae", {"mapping": 0.25}, ax=ax, higher_is_better=False) == {"mapping": 20}
    with pytest.raises(ValueError, match="'psnr'"):
        mc.plot_learning_curve(CURVE, "psnr", ax=ax)
    plt.close(fig)
