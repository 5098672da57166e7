# SPDX-License-Identifier: Apache-2.0
"""Reading a bounce's parts and prose: decoded text, headers, statuses, addresses.

Every helper tolerates hostile input (broken MIME, bogus charsets, enormous
bodies) by returning something empty rather than raising, and the caps below
bound what one message can cost. The returned original message is never read:
a list post quoting a bounce must not be taken for one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr

# Caps that keep a hostile or enormous message from costing more than it is worth.
_MAX_DIAGNOSTIC = 1000
_MAX_TEXT_LINES = 3000
MAX_DEPTH = 20

DELIVERY_STATUS_TYPES = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "text/delivery-status"}
)

# The returned original: skipped when looking for explanations, and hidden from flufl.bounce,
# so that a list post which itself quotes a bounce is not taken for one.
RETURNED_MESSAGE_TYPES = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
    }
)

# An enhanced status code (RFC 3463) anywhere in text, not inside an IP address or version.
ENHANCED_ANYWHERE = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\d)(?!\.\d)")
_ENHANCED_AT_START = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?!\d)(?!\.\d)")
# A three-digit SMTP reply code as it appears in prose ("said: 550 ...", "'550 5.1.10 ...").
REPLY_CODE = re.compile(r"(?:^|(?<=[\s:'\"(<\[]))([245])\d\d(?=[ -]|$)")
# "550-5.1.1 " at the start of a (possibly multi-line) reply: the prefix repeated on each line.
_REPLY_PREFIX = re.compile(r"([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3})\s)?")
_DIAGNOSTIC_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


def parts(msg: Message, depth: int = 0) -> Iterator[Message]:
    """Every part outside the returned original; delivery-status parts are not descended into."""
    if depth > MAX_DEPTH:
        return
    ctype = msg.get_content_type()
    if depth > 0 and ctype in RETURNED_MESSAGE_TYPES:
        return
    yield msg
    if ctype in DELIVERY_STATUS_TYPES or not msg.is_multipart():
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from parts(sub, depth + 1)


def explanatory_lines(msg: Message) -> list[str]:
    """The human-readable notice's lines: text/plain parts, or de-tagged HTML if that is all."""
    plain: list[str] = []
    markup: list[str] = []
    for part in parts(msg):
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        text = part_text(part)
        if text is None:
            continue
        if ctype == "text/html":
            text = html.unescape(re.sub(r"<br\s*/?>|</(?:p|div|tr|li)>", "\n", text, flags=re.I))
            markup.extend(re.sub(r"<[^>]*>", " ", text).splitlines())
        else:
            plain.extend(text.splitlines())
    return (plain or markup)[:_MAX_TEXT_LINES]


def part_text(part: Message) -> str | None:
    """A leaf's body decoded by its charset, or as UTF-8 when that charset is unusable."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return None
    if not isinstance(data, bytes):
        return None
    try:
        return data.decode(part.get_content_charset() or "utf-8", errors="replace")
    except Exception:  # unknown charset, or one whose name holds a NUL
        return data.decode("utf-8", errors="replace")


def explain(lines: list[str], address: str) -> str:
    """The notice's explanation for one address: its paragraph, from the first reply code on.

    Bounce texts put the address first and the remote server's reply in the same paragraph
    (Postfix on one line, Exim and qmail on the following ones).
    """
    needle = address.lower()
    first = ""
    for index, line in enumerate(lines):
        if needle not in line.lower():
            continue
        paragraph = [line]
        for following in lines[index + 1 : index + 12]:
            if not following.strip():
                break
            paragraph.append(following)
        for offset, candidate in enumerate(paragraph):
            if ENHANCED_ANYWHERE.search(candidate) or REPLY_CODE.search(candidate.strip()):
                return truncate(squash(" ".join(paragraph[offset:])))
        if not first:
            first = squash(" ".join(paragraph))
    return truncate(first)


def clean_diagnostic(value: str) -> str:
    """A Diagnostic-Code without its type ("smtp;") or the repeated "550-5.1.1" line prefixes."""
    text = squash(value)
    diag_type, sep, rest = text.partition(";")
    if sep and _DIAGNOSTIC_TYPE.fullmatch(diag_type.strip()):
        text = rest.strip()
    match = _REPLY_PREFIX.match(text)
    if match:
        code, enhanced = match.groups()
        prefix = re.escape(code) + r"[ -]" + (re.escape(enhanced) + r"\s" if enhanced else "")
        body = re.sub(r"(?:^|(?<=\s))" + prefix, "", text)
        text = f"{code} {enhanced} {squash(body)}" if enhanced else f"{code} {squash(body)}"
    return truncate(text.strip())


def normalise(value: str) -> str | None:
    """An addr-spec with its domain lower-cased, or None if it is not one."""
    candidate = value.strip().strip("<>").strip()
    parsed = parseaddr(candidate)[1] or candidate
    local, at, domain = parsed.rpartition("@")
    domain = domain.rstrip(".").lower()
    if not at or not local or not domain or any(ch.isspace() for ch in parsed):
        return None
    return f"{local}@{domain}"


def status_at_start(value: str) -> str | None:
    match = _ENHANCED_AT_START.match(value)
    return match.group(1) if match else None


def status_anywhere(value: str) -> str | None:
    match = ENHANCED_ANYWHERE.search(value)
    return match.group(1) if match else None


def header(msg: Message, name: str) -> str:
    """A header's value unfolded to one line, '' when absent or unreadable."""
    try:
        value = msg.get(name)
        return "" if value is None else squash(str(value))
    except Exception:
        return ""


def subject(msg: Message) -> str:
    """The Subject with RFC 2047 words decoded, since responders localise and encode it."""
    try:
        value = msg.get("subject")
        return "" if value is None else squash(str(make_header(decode_header(value))))
    except Exception:
        return header(msg, "subject")


def squash(text: str) -> str:
    return " ".join(text.split())


def truncate(text: str) -> str:
    return text if len(text) <= _MAX_DIAGNOSTIC else text[: _MAX_DIAGNOSTIC - 1] + "…"
