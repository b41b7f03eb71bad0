"""The figure helpers the chapters share."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

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


def test_plot_history_names_a_loss_that_is_zero_throughout_instead_of_an_empty_entry():
    history = {"step": [1, 2, 3], "time": [0.1, 0.2, 0.3], "cycle": [1.0, 0.5, 0.2], "identity": [0.0, 0.0, 0.0]}
    ax = mc.plot_history(history)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["cycle"]
    assert legend.get_title().get_text() == "0 throughout: identity"
    ax = mc.plot_history(history, logy=False)  # a linear axis draws it
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cycle", "identity"]


def test_compare_table_heads_its_first_column_with_the_label():
    rows = {"as trained": {"NLM": 30.0, "RED-Net": 31.0}, "T2w": {"NLM": 26.0, "RED-Net": 27.5}}
    assert mc.compare_table(rows).header == ["method", "NLM", "RED-Net"]
    table = mc.compare_table(rows, "PSNR", label="condition")
    assert table.header == ["condition", "NLM", "RED-Net"]
    assert table.rows == [["as trained", 30.0, 31.0], ["T2w", 26.0, 27.5]]
    assert "<th" in table._repr_html_() and "condition" in table._repr_html_()


def test_show_labels_takes_colours_per_label():
    image, labels = torch.zeros(8, 8), torch.zeros(8, 8, dtype=torch.long)
    labels[:4] = 1
    ax = mc.show_labels(image, labels, {1: "missed"}, colours={1: "magenta"})
    overlay = ax.get_images()[-1].get_array()
    assert tuple(overlay[0, 0, :3]) == (1.0, 0.0, 1.0) and overlay[-1, -1, 3] == 0  # magenta where labelled, clear elsewhere
    assert ax.get_legend().get_texts()[0].get_text() == "missed"
    plt.close("all")


def test_orthogonal_slices_cut_through_the_centre_with_superior_up():
    d, h, w = np.meshgrid(np.arange(5), np.arange(6), np.arange(7), indexing="ij")
    vol = 100 * d + 10 * h + w  # each voxel's value names its place
    views = mc.orthogonal_slices(vol, centre=(1, 2, 3))
    assert views["axial"].shape == (6, 7) and (views["axial"] // 100 == 1).all()
    assert views["coronal"].shape == (5, 7) and (views["coronal"] // 10 % 10 == 2).all()
    assert views["sagittal"].shape == (5, 6) and (views["sagittal"] % 10 == 3).all()
    assert views["coronal"][0, 0] // 100 == 4 and views["sagittal"][-1, 0] // 100 == 0  # superior at the top
    tviews = mc.orthogonal_slices(torch.as_tensor(vol)[None])  # tensors stay tensors, a channel axis is kept
    assert tviews["sagittal"].shape == (1, 5, 6) and torch.equal(tviews["coronal"][0], torch.as_tensor(mc.orthogonal_slices(vol)["coronal"].copy()))
    with pytest.raises(ValueError, match="centre"):
        mc.orthogonal_slices(vol, centre=(5, 0, 0))
    with pytest.raises(ValueError, match="volume"):
        mc.orthogonal_slices(vol[0])
