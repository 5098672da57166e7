# SPDX-License-Identifier: Apache-2.0
"""Header words: decoding what the poster sent, encoding what we write.

`email` is trusted for what it does well here (RFC 2047 words, address
parsing); these helpers add the rules decoration needs: control characters
removed, display names quoted only when they must be.
"""

from __future__ import annotations

import re
import unicodedata
from email.header import Header, decode_header, make_header
from email.utils import formataddr, getaddresses

from listserv.mail_policy import POLICY

_ATOM_PHRASE_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-/^_`{|}~ ]+")  # no '=?': not RFC 2047


_HEADER_FACTORY = POLICY.header_factory


def clean(text: str) -> str:
    """Control and line-separator characters become spaces (no header injection)."""
    return "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text
    ).strip()


def header_text(value: bytes) -> str:
    """A raw header value as text: RFC 2047 words decoded, raw 8-bit taken as UTF-8."""
    text = value.decode("utf-8", "replace").strip()
    try:
        return str(_HEADER_FACTORY("subject", text))
    except Exception:
        pass
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


def decodes_losslessly(value: bytes) -> bool:
    """Whether every byte and every RFC 2047 word of a raw value decodes without loss.

    False for raw 8-bit that is not UTF-8 (Latin-1 sent unencoded) and for an
    encoded word in a charset Python does not know: text made from those would
    hold U+FFFD or miss the word, so such a value must be passed on as received.
    """
    try:
        text = value.decode("utf-8")
        for chunk, charset in decode_header(text):
            if isinstance(chunk, bytes):
                chunk.decode(charset or "ascii")
    except (UnicodeError, LookupError, ValueError):
        return False
    except Exception:  # email.errors.HeaderParseError and relatives
        return False
    return True


def display_phrase(display: str) -> str:
    """A display name as an RFC 5322 phrase: bare atoms, quoted string or RFC 2047."""
    if not display:
        return ""
    if _ATOM_PHRASE_RE.fullmatch(display):
        return display
    if display.isascii():
        return formataddr((display, "x@x"))[: -len(" <x@x>")]
    return Header(display, "utf-8").encode()


def encode_header(name: str, text: str, eol: bytes) -> bytes:
    """A new header field; non-ASCII (or encoded-word-like) text is RFC 2047 encoded whole."""
    if text.isascii() and "=?" not in text:
        value = Header(text, "us-ascii", header_name=name).encode(linesep=eol.decode())
    else:
        value = Header(text, "utf-8", header_name=name).encode(linesep=eol.decode())
    return f"{name}: {value}".encode("ascii", "replace") + eol


def parse_from(value: bytes) -> tuple[str, str] | None:
    """(display name, addr-spec) of the first From address, or None if there is none."""
    text = value.decode("utf-8", "replace").strip()
    try:
        addresses = _HEADER_FACTORY("from", text).addresses
        if addresses and addresses[0].username:
            return addresses[0].display_name, addresses[0].addr_spec
    except Exception:
        pass
    try:
        for display, addr in getaddresses([text]):
            if "@" in addr:
                try:
                    display = str(make_header(decode_header(display)))
                except Exception:
                    pass
                return display, addr
    except Exception:
        pass
    return None


def encoded_phrase(name: str, eol: bytes) -> str:
    """A display name (already cleaned) as a quoted string, or RFC 2047 words if non-ASCII."""
    if name.isascii():
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return Header(name, "utf-8", header_name="From").encode(linesep=eol.decode())
