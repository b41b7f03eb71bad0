"""The claim check (mricourse.course.claims): it flags typed results, outcomes stated as facts and
findings of unrepeatable runs, and every chapter passes it."""

from pathlib import Path

import nbformat
import pytest

from mricourse.course.claims import claim_problems, sentences

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
        "Sriram et al. report SSIM 0.930 at 4x.",  # a paper's number, cited
        "The paper's cascade beat two compressed-sensing methods {cite:p}`schlemper2017`.",
        "Does the 2D+t cascade beat the 2D cascade?",  # a question
        "Whether it beats the baseline is printed below, from this run.",
        "Set `lr=0.001` and `ssim >= 0.85` in the check.",  # code
        "The heart beats 60 times a minute; every beat fills a few lines.",  # not a comparison
        "A result glued from the run: {glue:text}`ssim_4x` SSIM.",
    ],
)
def test_passes_cited_hedged_computed_and_code_text(text):
    assert claim_problems(_nb(text)) == []


def test_sentences_split_paragraphs_and_list_items():
    assert sentences("One. Two!\n\n- three\n- four") == ["One.", "Two!", "three", "four"]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_chapter_passes_the_claim_check(path):
    problems = claim_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}: " + "; ".join(map(str, problems))
