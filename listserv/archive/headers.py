# SPDX-License-Identifier: Apache-2.0
"""The few headers the archive reads, parsed fast and without ever raising.

The stdlib's `policy.default` builds a structured object for every header it
is asked for, which costs more than everything else in archiving a post;
the archive needs only From, Subject, Date and the Message-IDs, so it parses
with `compat32` and decodes just those (RFC 2047 words, any charset, bytes
that are not UTF-8 replaced). Used for every post archived, live or imported.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

_PARSER = BytesParser(policy=policy.compat32)


def parse_raw(raw: bytes) -> Message:
    """The message for reading (compat32: headers are decoded only when asked)."""
    try:
        return _PARSER.parsebytes(raw)
    except Exception:
        msg = Message()
        msg.set_payload(raw.decode("latin-1"))
        return msg


def _clean(text: str) -> str:
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "")


def header(msg: Message, name: str) -> str:
    """A header's text, RFC 2047 words decoded, white space single; '' when absent."""
    try:
        value = msg.get(name)
    except Exception:
        return ""
    if value is None:
        return ""
    raw = str(value)
    try:
        text = str(make_header(decode_header(raw)))
    except Exception:
        text = raw
    return " ".join(_clean(text).split())


def sender(msg: Message) -> tuple[str, str]:
    """(display name, address) of the first From address; ('', '') when none."""
    raw = header(msg, "From")
    if not raw:
        return "", ""
    try:
        pairs = getaddresses([raw])
    except Exception:
        return "", ""
    for name, address in pairs:
        if "@" in address:
            return name.strip(), address.strip()
    return "", ""


def date(msg: Message) -> datetime | None:
    text = header(msg, "Date")
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
