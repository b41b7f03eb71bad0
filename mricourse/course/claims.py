"""The claim check: a chapter's prose states no result it did not compute.

Numbers and comparisons of the models belong to the run on the page: printed by a code cell from
the chapter's results (or glued with MyST), or a paper's number cited as such. The check reads
the markdown cells of a notebook and flags, sentence by sentence:

- **typed metric**: a measured value written into the prose, e.g. "SSIM 0.92" or "+3 dB";
- **outcome as fact**: a comparison stated whatever the run shows, e.g. "it beats the 2D
  cascade", "the PCA samples score highest";
- **unreproducible**: a number or finding from runs the reader cannot repeat ("in our trials",
  "in a development run").

A sentence that cites (``{cite}``, "et al.", "the paper", "the authors", a year) or that asks or
hedges ("whether", "if", "can", "should", a question) is not flagged; neither is text in code
spans, maths or a ``{glue}`` role. ``python -m mricourse.course.exercises check`` runs it on every
notebook (``make test`` too, through ``tests/test_claims.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .notebooks import _source

__all__ = ["Claim", "claim_problems", "sentences"]

_UNREPRODUCIBLE = re.compile(
    r"\b(in our (trials|runs|experiments|tests)|(a|one|our) development runs?|we found|in our experience)\b", re.I
)
_METRIC = re.compile(
    r"(?<![\w.])[+-]?\d+(\.\d+)?\s?dB\b|\b(SSIM|PSNR|NMSE|Dice|MAE|HD95|NCC)\b[^.\d]{0,25}(?<![\w.])\d*\.\d{2,}",
)
_OUTCOME = re.compile(
    r"\b(beats?|beat) (the|a|an|its|all|both|every|classical|compressed|CG|k-t|zero|U-Net)\b"
    r"|\b(outperforms?|outperformed)\b|\b(is|are|does|do) (clearly )?(better|worse) than\b"
    r"|\bscores? (the )?(highest|lowest|best|worst)\b",
    re.I,
)
_HEDGE = re.compile(
    r"\?|\{cite|et al|\b(19|20)\d\d\b|\b(paper|papers|authors|study|work|literature|verdict|claims?|reports?|reported"
    r"|if|whether|should|must|can|could|may|might|expect|expected|aims?|try|tries)\b",
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
    """Markdown without what the check does not read: glue roles, code, maths, link targets."""
    text = re.sub(r"\{glue(:\w+)?\}`[^`]*`", " ", text)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$[^$\n]*\$", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def sentences(markdown: str) -> list[str]:
    """The sentences of a markdown text (list items and paragraphs split too), white space folded."""
    parts = re.split(r"(?<=[.!?;:])\s+(?=[A-Z*(])|\n\s*\n|\n\s*[-*] |\n\s*\d+\. ", _strip(markdown))
    parts = [re.sub(r"^\s*([-*]|\d+\.)\s+", "", p) for p in parts]
    return [" ".join(p.split()) for p in parts if p.strip()]


def claim_problems(nb) -> list[Claim]:
    """Every flagged sentence of the notebook's markdown cells (see the module docstring)."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "markdown":
            continue
        for s in sentences(_source(cell)):
            if _UNREPRODUCIBLE.search(s):
                out.append(Claim(i, "unreproducible", s))
            elif _HEDGE.search(s):
                continue
            elif _METRIC.search(s):
                out.append(Claim(i, "typed metric", s))
            elif _OUTCOME.search(s):
                out.append(Claim(i, "outcome as fact", s))
    return out
