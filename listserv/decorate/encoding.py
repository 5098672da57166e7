# SPDX-License-Identifier: Apache-2.0
"""Transfer encodings and charsets of the text parts that receive the footer.

Only those parts are decoded and re-encoded; a part whose charset keeps
state between characters (ISO-2022, UTF-7) is re-encoded rather than
appended to, since spliced bytes would change its meaning.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.charset

from listserv.decorate.personalize import MEMBER_LINK

MEMBER_LINK_BYTES = MEMBER_LINK.encode("ascii")

_IDENTITY_CTES = frozenset({"7bit", "8bit", "binary", ""})


#: Codecs that keep state between characters: appending separately encoded bytes, or
#: searching their bytes for ASCII markup, is not safe, so such parts are re-encoded.
_STATEFUL = frozenset(
    {
        "iso2022_jp",
        "iso2022_jp_1",
        "iso2022_jp_2",
        "iso2022_jp_2004",
        "iso2022_jp_3",
        "iso2022_jp_ext",
        "iso2022_kr",
        "utf-7",
        "hz",
    }
)


#: Python codecs that are not mail charsets although codecs.lookup() knows them.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem"}
)


def qp_encode(data: bytes, eol: bytes) -> bytes:
    out = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    out = out.replace(b"\r\n", b"\n")
    return out.replace(b"\n", eol) if eol != b"\n" else out


def _b64_encode(data: bytes, eol: bytes) -> bytes:
    out = base64.encodebytes(data)  # 76-character lines
    return out.replace(b"\n", eol) if eol != b"\n" else out


def decode_cte(body: bytes, cte: str) -> bytes | None:
    if cte in _IDENTITY_CTES:
        return body
    if cte == "quoted-printable":
        return binascii.a2b_qp(body)
    if cte == "base64":
        try:
            return binascii.a2b_base64(body)
        except binascii.Error:
            return None
    return None


def encode_cte(
    new_raw: bytes, old_raw: bytes, old_body: bytes, cte: str, eol: bytes
) -> tuple[bytes, bytes | None]:
    """Encode the new content with the part's own CTE; second item: a new CTE, if any.

    Quoted-printable keeps the poster's encoded lines when the footer was only appended
    (checked by decoding); base64 is re-encoded whole (as quoted-printable when it
    holds the member-link marker, so each copy can splice its link in); 7bit that now holds 8-bit footer
    bytes is relabelled 8bit so the poster's bytes stay as they are.
    """
    if cte == "base64":
        if MEMBER_LINK_BYTES in new_raw:
            # Each copy's own link replaces the marker byte for byte, which base64 hides.
            return qp_encode(new_raw, eol), b"quoted-printable"
        return _b64_encode(new_raw, eol), None
    if cte == "quoted-printable":
        if new_raw.startswith(old_raw) and old_body.endswith(b"\n"):
            candidate = old_body + qp_encode(new_raw[len(old_raw) :], eol)
            if binascii.a2b_qp(candidate) == new_raw:
                return candidate, None
        return qp_encode(new_raw, eol), None
    if cte in ("7bit", "") and not new_raw.isascii():
        return new_raw, b"8bit"
    return new_raw, None


def mail_codec(charset: str) -> str | None:
    """The Python codec for a MIME charset, or None if unknown or not a text charset."""
    charset = email.charset.ALIASES.get(charset, charset)
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def splice_ok(codec: str) -> bool:
    """True if bytes in this charset can be searched for, and appended to, as ASCII."""
    if codec in _STATEFUL:
        return False
    try:
        return "\r\n</body>=".encode(codec) == b"\r\n</body>="
    except Exception:
        return False


def text_eol(text: str, default: str) -> str:
    nl = text.find("\n")
    if nl < 0:
        return default
    return "\r\n" if nl > 0 and text[nl - 1] == "\r" else "\n"
