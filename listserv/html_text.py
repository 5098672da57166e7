# SPDX-License-Identifier: Apache-2.0
"""The visible text of an HTML mail body, for mail that has no text/plain part.

Commands, owner replies and held-message summaries read a body line by line;
when a client sent only HTML, this gives them its text with a line break at
every block element and nothing from scripts, styles or the document head.
Never raises: a page the parser gives up on is crudely de-tagged instead.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]


class _TextExtractor(HTMLParser):
    """Text content of HTML, with line breaks at block elements and no scripts/styles."""

    _BREAKS = frozenset(
        {"br", "p", "div", "li", "tr", "table", "ul", "ol", "blockquote", "pre", "hr"}
        | {"section", "article", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML body; a crude tag strip if the parser gives up."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:
        return re.sub(r"<[^>]*>", " ", html)
    text = "".join(extractor.parts)
    # HTML source line breaks are not visible line breaks; block tags made ours. An
    # opening and a closing tag each break, so collapse runs of blank lines to one.
    lines = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", lines).strip("\n")
