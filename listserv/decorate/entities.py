# SPDX-License-Identifier: Apache-2.0
"""A message's raw bytes as header fields and MIME parts, split by position.

Lossless: the pieces concatenate back to the input, so a part decoration does
not touch is carried over byte for byte. Also the line-ending rules (the first
line ending of the input decides) and the Content-* fields read from a part.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.message import Message
from typing import NamedTuple

_FIELD_RE = re.compile(rb"[!-9;-~]+[ \t]*:")


_UNFOLD_RE = re.compile(rb"\r?\n(?=[ \t])")


class Field(NamedTuple):
    """One header field exactly as received: name (lower-case) and raw bytes."""

    name: str
    raw: bytes  # "Name: value" with folded lines and line endings, as received

    @property
    def value(self) -> bytes:
        """The raw value after the colon, line endings removed and unfolded."""
        return _UNFOLD_RE.sub(b"", self.folded_value(b"\n")).strip()

    def folded_value(self, eol: bytes) -> bytes:
        """The raw value after the colon with its folding kept, line endings made ``eol``."""
        value = self.raw[self.raw.index(b":") + 1 :].rstrip(b"\r\n").replace(b"\r\n", b"\n")
        return value.replace(b"\n", eol) if eol != b"\n" else value


class Entity(NamedTuple):
    """A message or MIME part split losslessly: ``fields + sep + body`` is the input."""

    fields: list[Field]
    sep: bytes  # the blank line ending the header block, or b"" if there is none
    body: bytes

    def join(self, eol: bytes) -> bytes:
        sep = self.sep
        if not sep and self.body and self.fields:
            sep = eol
        fields = [f.raw for f in self.fields]
        if fields and not fields[-1].endswith(b"\n") and (sep or self.body):
            fields[-1] += eol
        return b"".join(fields) + sep + self.body


def split_entity(data: bytes) -> Entity:
    """Split header fields from the body by position, keeping every byte.

    The header block ends at the first empty line; a line that is neither a field nor a
    continuation also ends it (the body then starts there, as in the email package).
    """
    fields: list[Field] = []
    pos = 0
    n = len(data)
    start = -1
    name = ""
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        if data[pos:end] in (b"\n", b"\r\n"):
            if start >= 0:
                fields.append(Field(name, data[start:pos]))
            return Entity(fields, data[pos:end], data[end:])
        if data[pos : pos + 1] in (b" ", b"\t") and start >= 0:
            pos = end
            continue
        match = _FIELD_RE.match(data, pos)
        if match is None:
            break
        if start >= 0:
            fields.append(Field(name, data[start:pos]))
        start = pos
        name = data[pos : match.end() - 1].rstrip(b" \t").decode("ascii").lower()
        pos = end
    if start >= 0:
        fields.append(Field(name, data[start:pos]))
    return Entity(fields, b"", data[pos:])


class _Multipart(NamedTuple):
    parts: list[tuple[int, int]]  # (start, end) of each part's content within the body
    close: int  # offset of the close-delimiter line


def split_multipart(body: bytes, boundary: bytes) -> _Multipart | None:
    """Locate the parts of a multipart body; None unless well formed and closed.

    Each part's content excludes the line ending before the next delimiter, which RFC
    2046 assigns to the delimiter, so splicing a part never moves a delimiter.
    """
    pattern = re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.MULTILINE)
    parts: list[tuple[int, int]] = []
    current = -1
    for match in pattern.finditer(body):
        line = match.start()
        if current >= 0:
            end = line - 2 if body[line - 2 : line] == b"\r\n" else line - 1
            parts.append((current, max(end, current)))
        if match.group(1):
            return _Multipart(parts, line) if parts else None
        after = match.end()
        current = after + 1 if body[after : after + 1] == b"\n" else after
    return None


def detect_eol(data: bytes) -> bytes:
    nl = data.find(b"\n")
    return b"\r\n" if nl > 0 and data[nl - 1] == 13 else b"\n"


def norm_eol(raw: bytes, eol: bytes) -> bytes:
    """A top-level header field with every line ending made ``eol``.

    A lone CR becomes a space: some readers (the email package among them) take it as a
    line break, which would end the header block early or inject a header. Blanks before
    the colon (obsolete syntax that the email package does not accept as a field, and
    would end the header block on) are dropped for the same reason.
    """
    raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b" ")
    colon = raw.find(b":")
    if colon > 0 and raw[colon - 1] in (32, 9):
        raw = raw[:colon].rstrip(b" \t") + raw[colon:]
    if eol != b"\n":
        raw = raw.replace(b"\n", eol)
    return raw if raw.endswith(eol) else raw + eol


class Content(NamedTuple):
    ctype: str
    charset: str | None
    cte: str
    boundary: bytes | None
    disposition: str | None
    start: str | None
    flowed: bool
    content_id: str | None


def latin1(value: bytes) -> str:
    return value.decode("latin-1").strip()


def content_info(fields: Sequence[Field]) -> Content:
    """Read the Content-* fields with the lenient compat32 parser (first one wins)."""
    msg = Message()
    content_id = None
    for f in fields:
        if f.name in ("content-type", "content-transfer-encoding", "content-disposition"):
            if f.name not in msg:
                msg[f.name] = latin1(f.value)
        elif f.name == "content-id" and content_id is None:
            content_id = latin1(f.value).strip("<> \t")
    boundary = None
    raw_boundary = msg.get_boundary()
    if raw_boundary:
        try:
            boundary = raw_boundary.encode("latin-1")
        except UnicodeError:
            boundary = None
    start = msg.get_param("start")
    fmt = msg.get_param("format")
    return Content(
        ctype=msg.get_content_type(),
        charset=msg.get_content_charset(),
        cte=str(msg.get("content-transfer-encoding", "")).strip().lower(),
        boundary=boundary,
        disposition=msg.get_content_disposition(),
        start=start.strip("<> \t") if isinstance(start, str) else None,
        flowed=isinstance(fmt, str) and fmt.lower() == "flowed",
        content_id=content_id,
    )


def replace_field(fields: list[Field], name: str, raw: bytes) -> list[Field]:
    """Put ``raw`` in place of the first field called ``name`` (others dropped), or add it."""
    key = name.lower()
    out: list[Field] = []
    done = False
    for f in fields:
        if f.name == key:
            if not done:
                out.append(Field(key, raw))
                done = True
            continue
        out.append(f)
    if not done:
        out.append(Field(key, raw))
    return out


def with_charset(fields: list[Field], charset: str, eol: bytes) -> list[Field]:
    """The same Content-Type with a new charset parameter (other parameters kept)."""
    msg = Message()
    current = next((f for f in fields if f.name == "content-type"), None)
    msg["Content-Type"] = latin1(current.value) if current else "text/plain"
    msg.set_param("charset", charset)
    value = str(msg["Content-Type"]).encode("latin-1", "replace")
    return replace_field(fields, "content-type", b"Content-Type: " + value + eol)


def strip_unix_from(data: bytes) -> bytes:
    """Drop an mbox "From " envelope line: it is not part of the message."""
    if data.startswith(b"From ") and _FIELD_RE.match(data) is None:
        nl = data.find(b"\n")
        return b"" if nl < 0 else data[nl + 1 :]
    return data
