# SPDX-License-Identifier: Apache-2.0
"""Who a request says it is from: name and job title from the body, the From's name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import getaddresses

_LABELLED = re.compile(r"^\s*(name|full name|title|job title|position)\s*:\s*(.+)$", re.I)


def identity_from_lines(lines: Sequence[str], fallback_name: str = "") -> tuple[str, str]:
    """Name and job title from a request body: "Jane Doe, Digital Media Specialist".

    Also understands "Name: …" / "Title: …" lines. Quoted text, signatures and
    anything after the first paragraph are ignored.
    """
    name, title = "", ""
    seen_text = False
    for raw in lines[:10]:
        line = raw.strip()
        if not line:
            if seen_text:
                break
            continue
        if line.startswith((">", "--")):
            break
        seen_text = True
        labelled = _LABELLED.match(line)
        if labelled:
            if labelled.group(1).lower() in ("name", "full name"):
                name = labelled.group(2).strip()
            else:
                title = labelled.group(2).strip()
            continue
        if not name:
            first, _, rest = line.partition(",")
            name, title = first.strip(), (title or rest.strip())
    name = name or fallback_name
    return _clean(name), _clean(title)


def _clean(text: str) -> str:
    return " ".join("".join(c for c in text if c.isprintable()).split())[:200]


def display_name_of(from_header: str) -> str:
    """The display name of a single From address ("" for none, or several)."""
    pairs = getaddresses([from_header])
    return pairs[0][0] if len(pairs) == 1 else ""
