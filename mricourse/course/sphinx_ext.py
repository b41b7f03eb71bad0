"""The book's Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``).

- chapters: every cell tagged ``solution`` folds behind a "Show solution" toggle
  (:func:`mricourse.course.exercises.book_view`);
- every page: the book's style sheet (``static/mricourse.css``: long printed lines wrap at the
  page's edge);
- API pages: docstrings here are written for readers of the code (shapes like
  ``(B, C, *spatial)``, products like ``x * y``, norms like ``|x|``), so bare asterisks and bars
  outside literals are escaped before reStructuredText reads them as emphasis.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .exercises import book_view

_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def _escape(line: str) -> str:
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else re.sub(r"(?<![\\*])\*(?!\*)", r"\\*", p).replace("|", "\\|") for i, p in enumerate(parts))


def _process(app, what, name, obj, options, lines) -> None:
    lines[:] = [_escape(line) for line in lines]


def _on_source_read(app, docname: str, source: list[str]) -> None:
    if str(app.env.doc2path(docname)).endswith(".ipynb"):
        try:
            nb = json.loads(source[0])
        except ValueError:
            return
        source[0] = json.dumps(book_view(nb), ensure_ascii=False)


#: the folder of the book's style sheet
STATIC = Path(__file__).parent / "static"


def _add_static(app):
    app.config.html_static_path = [*app.config.html_static_path, str(STATIC)]


def setup(app):
    app.connect("builder-inited", _add_static)
    app.add_css_file("mricourse.css")
    app.connect("autodoc-process-docstring", _process)
    app.connect("source-read", _on_source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
