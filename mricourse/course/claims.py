"""The claim check: a chapter's prose states no result it did not compute.

Numbers and comparisons of the models belong to the run on the page: printed by a code cell from
the chapter's results (or glued with MyST), or a paper's number cited as such. The check reads
the markdown cells of a notebook and flags, sentence by sentence (a list item and a table row
count as a sentence):

- **typed metric**: a measured value written into the prose, e.g. "SSIM 0.92", "Dice 87.2 %",
  "0.05 SSIM" or "+3 dB". Only a citation excuses it: ``{cite}``, "et al." with a year, or a
  paper or its authors named as the source ("Sriram et al. report", "the paper's table"). Modal
  words, conditions and questions do not ("The VarNet reaches SSIM 0.92, which can be improved",
  "If trained longer, it scores 31.2 dB" are flagged). Not a measured value: a threshold or target
  ("an SSIM of at least 0.85"), a value that defines a scale ("an accuracy of 0.5 means ..."),
  and numbers that name no metric (settings such as a noise level or a learning rate);
- **outcome as fact**: a comparison stated whatever the run shows, e.g. "it beats the 2D
  cascade", "the PCA samples score highest", "the VarNet has the best SSIM", "a higher PSNR than
  CG-SENSE". A sentence that cites, asks, hedges ("whether", "if", "can", "should", a question) or
  defers to the run ("the lines below say which method has the best SSIM") is not flagged;
- **unreproducible**: a number or finding from runs the reader cannot repeat ("in our trials",
  "in a development run"), whatever else the sentence says.

Text in code spans and code blocks, maths, a ``{glue}`` role, link targets and double quotes (a
quoted message, name or verdict string) is not read; the body of an admonition (a folded answer,
a glossary) is. ``python -m mricourse.course.exercises check`` runs it on
every notebook (``make test`` too, through ``tests/test_claims.py``); :func:`markdown_problems`
checks a plain markdown page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .notebooks import _source

__all__ = ["Claim", "claim_problems", "markdown_problems", "sentences"]

_UNREPRODUCIBLE = re.compile(
    r"\b(in our (trials|runs|experiments|tests)|(a|one|our) development runs?|we found|in our experience)\b", re.I
)

# -- typed metrics ---------------------------------------------------------------------------------
_METRIC_NAME = r"(SSIM|PSNR|NMSE|RMSE|MSE|Dice|MAE|HD95|NCC|LPIPS|FID|C2ST accuracy|accuracy)"
# a measured value: a decimal ("0.92", ".92", "31.2") or a percentage or a distance in mm; not an
# ordinal ("99.5th") nor the "95 %" of a 95 % Hausdorff distance, percentile or interval
_VALUE = (
    r"(?<![\w.])[+-]?(\d*\.\d+(\s?(%|mm\b))?(?![a-zA-Z])"
    r"|\d+\s?(%|mm\b))(?!\s*(Hausdorff|percentile|interval|confidence|CI\b))"
)
_METRIC = re.compile(
    rf"(?P<db>(?<![\w.])[+-]?\d+(\.\d+)?\s?dB\b)"
    rf"|\b{_METRIC_NAME}\b(?P<gap>[^.\d\n]{{0,25}}){_VALUE}"
    rf"|(?<![\w.])[+-]?\d*\.\d+\s?{_METRIC_NAME}\b",
    re.I,
)
# a threshold or target in the gap between metric and value is a setting, not a result
_THRESHOLD = re.compile(r"\b(at least|at most|no less than|no more than|target|threshold|cut-?off)\b|[≥≤]|[<>]=?", re.I)
# "an accuracy of 0.5 means it cannot tell them apart": the value defines the scale; "MSE + 0.1 x
# adversarial": the value weights a loss
_DEFINES = re.compile(r"\s*(means|would mean|is chance|stands for\b|(x|×|\*)\s)", re.I)
# a paper's number cited as such
_CITED = re.compile(
    r"\{cite|\bet al\b\.?[^.]*?\b(19|20)\d\d\b"
    r"|\b(et al\b\.?|(the|its|their|this|that|these|both) (paper|papers|authors|study|studies|article)('s|')?)"
    r"\s+(\w+\s+)?(report|reports|reported|found|find|measured|measure|list|lists|listed|give|gives|gave"
    r"|table|tables|figure|figures|number|numbers|result|results)\b"
    r"|\b(according to|as reported by|reported by) (the|its|their) (paper|authors|study)\b",
    re.I,
)

# -- outcomes --------------------------------------------------------------------------------------
_OUTCOME = re.compile(
    r"\b(beats?|beat) (the|a|an|its|all|both|every|classical|compressed|CG|k-t|zero|U-Net)\b"
    r"|\b(outperforms?|outperformed)\b|\b(is|are|does|do) (clearly )?(better|worse) than\b"
    r"|\bscores? (the )?(highest|lowest|best|worst)\b"
    # a verdict in a metric: "the VarNet has the best SSIM", "a higher PSNR than CG-SENSE"
    rf"|\b(has|have|had|gets?|got|gives?|gave|reach(es|ed)?|achieves?|achieved) the (best|highest|lowest|worst)"
    rf" (\w+ )?{_METRIC_NAME}\b"
    rf"|\b(higher|lower|better|worse) (\w+ )?{_METRIC_NAME}\b[^.;:]{{0,40}}\bthan\b"
    rf"|\b{_METRIC_NAME}\b[^.;:]{{0,30}}\b(is|are|was|were) (\w+ )?(higher|lower|better|worse) than\b",
    re.I,
)
_HEDGE = re.compile(
    r"\?|\{cite|et al|\b(19|20)\d\d\b|\b(paper|papers|authors|study|work|literature|verdict|claims?|reports?|reported"
    r"|if|whether|should|must|can|could|may|might|expect|expected|aims?|try|tries)\b",
    re.I,
)
# the prose points at what the run prints: "the lines under the table say which method has the best SSIM"
_DEFERS = re.compile(
    r"\b(lines?|tables?|figures?|plots?|cells?|output|code|run|numbers)\b[^.;]{0,40}"
    r"\b(say|says|show|shows|name|names|print|prints|tell|tells|give|gives)\b[^.;]{0,60}\b(which|whether|where|how)\b",
    re.I,
)


@dataclass
class Claim:
    cell: int
    kind: str  # "typed metric", "outcome as fact", "unreproducible"
    sentence: str

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.kind}: {self.sentence[:160]}"


def _strip(text: str) -> str:
    """Markdown without what the check does not read: glue roles, code, maths, link targets, quotes."""
    text = re.sub(r"\{glue(:\w+)?\}`[^`]*`", " ", text)
    # MyST directives of prose (an admonition, a folded answer) are read, their options not; code blocks are not
    text = re.sub(r"```\{(admonition|note|tip|important|warning|hint|seealso|dropdown)\}[^\n]*\n((?:\s*:[\w-]+:[^\n]*\n)*)(.*?)```",
                  lambda m: "\n\n" + m.group(3) + "\n\n", text, flags=re.S)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]*\$", " ", text)
    text = re.sub(r"\"[^\"\n]{1,300}\"|“[^”\n]{1,300}”", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def sentences(markdown: str) -> list[str]:
    """The sentences of a markdown text (list items, table rows and paragraphs split too, not after
    "et al.", "e.g.", "i.e." or "cf."), white space folded."""
    parts = re.split(
        r"(?<=[.!?;:])(?<! al\.)(?<!e\.g\.)(?<!i\.e\.)(?<! cf\.)\s+(?=[A-Z*(])|\n\s*\n|\n\s*[-*] |\n\s*\d+\. |\n(?=\s*\|)",
        _strip(markdown),
    )
    parts = [re.sub(r"^\s*([-*]|\d+\.)\s+", "", p) for p in parts]
    return [" ".join(p.split()) for p in parts if p.strip()]


def typed_metric(sentence: str) -> bool:
    """Whether the sentence types a measured value of a metric that no citation accounts for."""
    if _CITED.search(sentence):
        return False
    for m in _METRIC.finditer(sentence):
        # the threshold word sits between metric and value, or before a gain in dB in its clause
        before = m.group("gap") if m.group("db") is None else re.split(r"[;:|]", sentence[max(0, m.start() - 80) : m.start()])[-1]
        if before is not None and _THRESHOLD.search(before):
            continue
        if _DEFINES.match(sentence, m.end()):
            continue
        return True
    return False


def outcome_as_fact(sentence: str) -> bool:
    """Whether the sentence states a comparison of methods as a fact, not hedged, cited or
    deferred to what the run prints."""
    return bool(_OUTCOME.search(sentence)) and not _HEDGE.search(sentence) and not _DEFERS.search(sentence)


def _problems(cell: int, markdown: str) -> list[Claim]:
    out = []
    for s in sentences(markdown):
        if _UNREPRODUCIBLE.search(s):
            out.append(Claim(cell, "unreproducible", s))
        elif typed_metric(s):
            out.append(Claim(cell, "typed metric", s))
        elif outcome_as_fact(s):
            out.append(Claim(cell, "outcome as fact", s))
    return out


def claim_problems(nb) -> list[Claim]:
    """Every flagged sentence of the notebook's markdown cells (see the module docstring)."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") == "markdown":
            out += _problems(i, _source(cell))
    return out


def markdown_problems(text: str) -> list[Claim]:
    """Every flagged sentence of a markdown page (``cell`` is 0)."""
    return _problems(0, text)
