"""The claim check (mricourse.course.claims): it flags typed results, outcomes stated as facts and
findings of unrepeatable runs, and every chapter and book page passes it."""

from pathlib import Path

import nbformat
import pytest

from mricourse.course.claims import claim_problems, markdown_problems, sentences

ROOT = Path(__file__).resolve().parents[1]


def _nb(*markdown):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(m) for m in markdown])


@pytest.mark.parametrize(
    "text, kind",
    [
        ("The VarNet reaches SSIM 0.921 at 4x.", "typed metric"),
        ("Its gain rose past +3 dB on the whole volume.", "typed metric"),
        ("The 2D+t cascade beats the 2D cascade of the same size.", "outcome as fact"),
        ("Here the PCA samples score highest.", "outcome as fact"),
        ("CycleGAN outperforms the intensity mapping.", "outcome as fact"),
        ("In our trials, bands of 16 rows trained better.", "unreproducible"),
        ("In a development run the PSNR rose by about 0.3 dB, whether or not it helps.", "unreproducible"),
    ],
)
def test_flags_results_not_computed_by_the_run(text, kind):
    assert [c.kind for c in claim_problems(_nb("Intro.", text))] == [kind]


@pytest.mark.parametrize(
    "text",
    [
        # a modal word, a condition, a question or an expectation does not excuse a typed number
        "The VarNet reaches SSIM 0.92, which can be improved.",
        "If trained longer, the model scores 31.2 dB.",
        "Does the VarNet reach SSIM 0.92 at 4x?",
        "The VarNet should reach an SSIM of about 0.9 at 4x, we expect.",
        "Whether it helps or not, the cascade may gain 0.05 SSIM over CG-SENSE.",
        "Vox2Vox could reach Dice 87.2 % on the whole tumour.",
        "An HD95 of 12 mm must be expected for such cases.",
        "In 2024 the network reached NCC 0.81 on the test pairs.",  # a year is not a citation
        # neither does a citation in another sentence: the number's own sentence names its source
        "On BraTS 2020 an ensemble of ten such models reached Dice 87.2 % (whole tumour).",
        # a number printed nowhere but quoted in a table row of the prose
        "| method | SSIM |\n|---|---|\n| VarNet | SSIM 0.92 |",
    ],
)
def test_flags_typed_metrics_whatever_the_hedge(text):
    assert [c.kind for c in claim_problems(_nb(text))] == ["typed metric"]


@pytest.mark.parametrize(
    "text",
    [
        "The VarNet has the best SSIM at 4x.",
        "The VarNet gives a higher PSNR than CG-SENSE at both accelerations.",
        "Vox2Vox's Dice is higher than its baseline's on every region.",
        "The VarNet gives the best SSIM, which shows how well it works.",  # not a pointer to the run's output
    ],
)
def test_flags_verdicts_in_a_metric_stated_as_fact(text):
    assert [c.kind for c in claim_problems(_nb(text))] == ["outcome as fact"]


@pytest.mark.parametrize(
    "text",
    [
        "Sriram et al. report SSIM 0.930 at 4x.",  # a paper's number, cited
        "Sriram et al. (2018) reached SSIM 0.930 at 4x on the knee data.",
        "On BraTS 2020 an ensemble reached Dice 87.2 % {cite:p}`cirillo2020`.",
        "The paper reports a mean Dice of 0.75 for VoxelMorph against 0.749 for ANTs SyN.",
        "{cite:t}`balakrishnan2019` report the same mean Dice as ANTs SyN (the paper's figure: 0.75 against 0.749).",
        "The paper's cascade beat two compressed-sensing methods {cite:p}`schlemper2017`.",
        "Does the 2D+t cascade beat the 2D cascade?",  # a question
        "Whether it beats the baseline is printed below, from this run.",
        "The lines under the evaluation table say, from this run's numbers, which method has the best SSIM.",
        "Set `lr=0.001` and `ssim >= 0.85` in the check.",  # code
        "Here `print(f'SSIM {ssim:.3f}')` prints the run's SSIM.",  # printed from the run
        "The heart beats 60 times a minute; every beat fills a few lines.",  # not a comparison
        "A result glued from the run: {glue:text}`ssim_4x` SSIM.",
        # settings and definitions, not measured results
        "Rician noise of 0.02 of the brain's bright end is added to the input.",
        "The noise is $\\sigma = 0.02$; the total-variation weight is lambda = 1e-3.",
        "The check accepts an SSIM of at least 0.85 on the test slices.",
        "An accuracy of 0.5 means it cannot tell them apart; 1.0 means it always can.",
        "The loss is MSE + gradient difference + 0.1 x adversarial.",
        "Evaluate like BraTS: Dice and 95 % Hausdorff distance per case.",
        "Intensities are scaled so that the brain's 99.5th percentile is 1.",
        "A bootstrap gives a 95 % interval for the mean difference in Dice.",
        '| `mc.check_score` | a result reaches a target | "SSIM = 0.71, below the target 0.8" |',  # a quoted message
    ],
)
def test_passes_cited_hedged_computed_and_code_text(text):
    assert claim_problems(_nb(text)) == []


def test_reads_folded_answers_but_not_code_blocks():
    folded = "**Think.** Which wins?\n\n```{admonition} What to look for\n:class: dropdown\nThe VarNet reaches SSIM 0.92.\n```"
    assert [c.kind for c in claim_problems(_nb(folded))] == ["typed metric"]
    code = "Run:\n\n```python\nprint('SSIM 0.92')\n```"
    assert claim_problems(_nb(code)) == []


def test_sentences_split_paragraphs_and_list_items():
    assert sentences("One. Two!\n\n- three\n- four") == ["One.", "Two!", "three", "four"]


def test_sentences_split_table_rows_and_keep_et_al_whole():
    assert sentences("| a | b |\n| 1 | 2 |") == ["| a | b |", "| 1 | 2 |"]
    assert sentences("Sriram et al. (2018) did it. Then") == ["Sriram et al. (2018) did it.", "Then"]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_chapter_passes_the_claim_check(path):
    problems = claim_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}: " + "; ".join(map(str, problems))


@pytest.mark.parametrize("path", sorted([*(ROOT / "book").glob("*.ipynb"), *(ROOT / "book").rglob("*.md")]), ids=lambda p: p.name)
def test_every_book_page_passes_the_claim_check(path):
    if path.suffix == ".md":
        problems = markdown_problems(path.read_text())
    else:
        problems = claim_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}: " + "; ".join(map(str, problems))
