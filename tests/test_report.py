import json

import pytest

import mricourse as mc
from mricourse.course.report import ood_table, render_markdown, summary_table


def _fake(tmp_path, monkeypatch):
    monkeypatch.setenv("MRICOURSE_RESULTS", str(tmp_path))
    monkeypatch.setenv("MRICOURSE_PROFILE", "cpu")
    mc.save_results(
        "03_fastmri_varnet",
        {"4x": {"VarNet": {"ssim": 0.95, "psnr": 35.0}, "CG-SENSE": {"ssim": 0.85, "psnr": 30.0}}},
        {"data": 1.0, "training": 10.0, "evaluation": 2.0},
        headline={"metric": "ssim", "setting": "4x", "model": "VarNet", "baseline": "CG-SENSE", "higher_is_better": True},
    )
    mc.save_results(
        "08_registration",
        {"VoxelMorph": {"dice": 0.70, "seconds per pair": 0.01}, "SimpleITK": {"dice": 0.74, "seconds per pair": 1.5}},
        {"training": 5.0},
        headline={"metric": "dice", "model": "VoxelMorph", "baseline": "SimpleITK"},
    )
    return mc.load_results(tmp_path)


def test_summary_uses_the_files_numbers(tmp_path, monkeypatch):
    results = _fake(tmp_path, monkeypatch)
    rows = {r[0]: r for r in summary_table(results).rows}
    assert abs(rows["03_fastmri_varnet"][4] - 0.10) < 1e-9
    assert abs(rows["08_registration"][4] - (-0.04)) < 1e-9
    assert rows["03_fastmri_varnet"][6] == 13.0


def test_markdown_has_a_table_per_chapter_and_paper_figures(tmp_path, monkeypatch):
    md = render_markdown(_fake(tmp_path, monkeypatch))
    assert "### 03_fastmri_varnet" in md and "### 08_registration" in md
    assert "| 4x / VarNet | 0.95 | 35 |" in md
    assert "The paper's figure" in md
    assert json.loads((tmp_path / "08_registration.json").read_text())["profile"] == "cpu"


def test_the_machine_line_names_the_processor(tmp_path, monkeypatch):
    # the same seed gives the same weights only on the same processor with the same threads:
    # the page says which one each results file came from
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    results = _fake(tmp_path, monkeypatch)
    cpu = mc.utils.processor()
    assert results["03_fastmri_varnet"]["environment"]["cpu"] == cpu
    assert set(cpu) == {"name", "instructions", "l2_cache", "threads"} and cpu["threads"] >= 1
    line = next(x for x in render_markdown(results).splitlines() if x.startswith("Machine: "))
    assert f"{cpu['name']} ({cpu['instructions']}, L2 {cpu['l2_cache']}, {cpu['threads']} threads)" in line


@pytest.mark.parametrize("variable", ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"])  # oneDNN reads either
def test_a_cap_on_onednn_kernels_is_recorded_and_shown(tmp_path, monkeypatch, variable):
    # the cap changes the weights (other kernels), while torch's own capability does not show it
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv(variable, "AVX2")
    cpu = mc.utils.processor()
    assert cpu["onednn_max_cpu_isa"] == "AVX2"
    results = _fake(tmp_path, monkeypatch)
    line = next(x for x in render_markdown(results).splitlines() if x.startswith("Machine: "))
    assert f"({cpu['instructions']}, oneDNN capped at AVX2, L2 " in line


def test_no_results():
    assert "No results yet" in render_markdown({})


def test_the_training_table_shows_steps_stops_and_the_weights_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("MRICOURSE_RESULTS", str(tmp_path))
    r = mc.recipe("toy", "smoke", seed=1)
    history = r.fit(progress=False)
    mc.save_results("00_toy", {"model": {"mse": 0.1}}, training={"toy model": r.report(history)})
    md = render_markdown(mc.load_results(tmp_path))
    assert "| toy model | toy | 1 | 20 of 20 | no | " in md and f" | {r.weights_hash()[:16]} |" in md
    # its speed: steps per second, and shares of the step's time that add up to 100 %
    t = mc.load_results(tmp_path)["00_toy"]["training"]["toy model"]
    assert t["steps_per_s"] > 0 and abs(sum(t["time_split"].values()) - 1) < 1e-6
    assert t["time_split"]["forward"] > 0 and t["time_split"]["optimiser"] > 0
    row = next(line for line in md.splitlines() if line.startswith("| toy model"))
    assert f"| {t['steps_per_s']:.2f} |" in row


def test_speed_table_and_the_ratio_of_two_runs(tmp_path, monkeypatch):
    from mricourse.course.report import compare_speed, speed_table

    run = {"steps": 10, "seconds": 5.0, "steps_per_s": 2.0, "time_split": {"data": 0.1, "forward": 0.4, "backward and loss": 0.4, "optimiser": 0.1}}
    before = {"02_x": {"training": {"net": run}}}
    after = {"02_x": {"training": {"net": {**run, "steps_per_s": 3.0}, "new": {**run}}}}
    rows = {r[0]: r for r in speed_table(after).rows}
    assert rows["02_x / net"][3] == 3.0 and rows["02_x / net"][4:] == ["10 %", "40 %", "40 %", "10 %"]
    cmp = compare_speed(before, after).rows
    assert cmp == [["02_x / net", 2.0, 3.0, 1.5]]  # only models in both runs
    assert speed_table({"03_y": {"training": {"old": {"steps": 3}}}}).rows == []  # no speed recorded: no row


def test_a_metric_whose_name_holds_a_slash_stays_one_column():
    from mricourse.course.report import chapter_table

    table = chapter_table("06", {"metrics": {"shape": {"Vox2Vox": {"components": 2.0, "surface / volume": 0.3}}}})
    assert table.header == ["method", "components", "surface / volume"]
    assert table.rows == [["shape / Vox2Vox", 2.0, 0.3]]


def test_out_of_distribution_beside_in_distribution(tmp_path, monkeypatch):
    monkeypatch.setenv("MRICOURSE_RESULTS", str(tmp_path))
    monkeypatch.setenv("MRICOURSE_PROFILE", "cpu")
    mc.save_results(
        "03_fastmri_varnet",
        {"4x": {"VarNet": {"ssim": 0.95}, "CG-SENSE": {"ssim": 0.85}}},
        headline={"metric": "ssim", "setting": "4x", "model": "VarNet", "baseline": "CG-SENSE"},
        ood={"what": "the PDw contrast", "metrics": {"PDw": {"4x": {"VarNet": {"ssim": 0.80}, "CG-SENSE": {"ssim": 0.84}}}}},
    )
    results = mc.load_results(tmp_path)
    table = ood_table(results)
    gains = {row[2]: row[5] for row in table.rows if row[5] != ""}
    assert abs(gains["in distribution (the chapter's test)"] - 0.10) < 1e-9
    assert abs(gains["PDw"] - (-0.04)) < 1e-9  # the baseline wins out of distribution: a negative gain
    md = render_markdown(results)
    assert "In and out of distribution" in md and "never trained on: the PDw contrast" in md
    assert "| PDw / 4x / VarNet | 0.8 |" in md
    with pytest.raises(ValueError, match="ood"):
        mc.save_results("03_fastmri_varnet", {"m": {"x": 1.0}}, ood={"metrics": {"PDw": {}}})
    assert ood_table({"08": {"metrics": {"m": {"x": 1}}, "headline": {}}}) is None
