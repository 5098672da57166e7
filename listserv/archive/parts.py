# SPDX-License-Identifier: Apache-2.0
"""A post's parts as a reader sees them: the text to show and the files attached.

Input: the original bytes. Output: `Part`s in order: text parts (decoded),
HTML parts (decoded, still unsanitized: `render` cleans them), and
attachments (anything else, and anything marked as an attachment), each
with its position so a download can name it. Of a multipart/alternative
only the plain text is shown, or the HTML when there is no plain text.
Never raises on broken MIME.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from email.message import Message

from listserv.archive.headers import parse_raw
from listserv.html_text import html_to_text
from listserv.message import part_text

#: The most text one post contributes to the search index.
INDEX_LIMIT = 200_000


class Kind(enum.StrEnum):
    TEXT = "text"
    HTML = "html"
    ATTACHMENT = "attachment"


@dataclass(frozen=True)
class Part:
    number: int  # position among the message's leaf parts, from 0
    kind: Kind
    content_type: str
    text: str = ""
    filename: str = ""
    size: int = 0


def _children(msg: Message) -> list[Message]:
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _leaves(msg: Message) -> list[Message]:
    """Leaf parts in order; an attached message (message/rfc822) is one leaf."""
    if msg.is_multipart() and msg.get_content_maintype() == "multipart":
        return [leaf for child in _children(msg) for leaf in _leaves(child)]
    return [msg]


def _disposition(part: Message) -> str:
    try:
        return part.get_content_disposition() or ""
    except Exception:
        return "attachment"


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    return " ".join(str(name).replace("\x00", "").split())[:200]


def _size(part: Message) -> int:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return 0
    return len(payload) if isinstance(payload, bytes) else 0


def _shown_alternative(msg: Message) -> Message | None:
    """Of a multipart/alternative: the plain text, else the HTML, else None."""
    children = _children(msg)
    for wanted in ("text/plain", "text/html"):
        for child in children:
            if not child.is_multipart() and child.get_content_type() == wanted:
                return child
    return None


def _walk(msg: Message, skipped: set[int]) -> None:
    """Marks (by id) the leaves of alternatives that are not shown."""
    if not (msg.is_multipart() and msg.get_content_maintype() == "multipart"):
        return
    children = _children(msg)
    if msg.get_content_type() == "multipart/alternative":
        shown = _shown_alternative(msg)
        if shown is not None:
            for child in children:
                for leaf in _leaves(child):
                    if leaf is not shown:
                        skipped.add(id(leaf))
            return
    for child in children:
        _walk(child, skipped)


def parts_of(msg: Message) -> list[Part]:
    """Every leaf part: shown text and HTML, and the attachments (alternatives left out)."""
    try:
        leaves = _leaves(msg)
        skipped: set[int] = set()
        _walk(msg, skipped)
    except Exception:
        return []
    parts: list[Part] = []
    for number, leaf in enumerate(leaves):
        if id(leaf) in skipped:
            continue
        content_type = leaf.get_content_type()
        filename = _filename(leaf)
        attached = _disposition(leaf) == "attachment" or bool(filename)
        if content_type == "text/plain" and not attached:
            parts.append(Part(number, Kind.TEXT, content_type, part_text(leaf)))
        elif content_type == "text/html" and not attached:
            parts.append(Part(number, Kind.HTML, content_type, part_text(leaf)))
        else:
            parts.append(
                Part(number, Kind.ATTACHMENT, content_type, filename=filename, size=_size(leaf))
            )
    return parts


def leaf(raw: bytes, number: int) -> tuple[Message, str] | None:
    """The leaf part at `number` and its file name, for a download."""
    leaves = _leaves(parse_raw(raw))
    if not 0 <= number < len(leaves):
        return None
    return leaves[number], _filename(leaves[number])


def readable_text(msg: Message) -> str:
    """What search reads of a post: its shown text, HTML as text, and attachment names."""
    pieces: list[str] = []
    for part in parts_of(msg):
        if part.kind is Kind.TEXT:
            pieces.append(part.text)
        elif part.kind is Kind.HTML:
            pieces.append(html_to_text(part.text))
        elif part.filename:
            pieces.append(part.filename)
    return "\n".join(pieces)[:INDEX_LIMIT]
