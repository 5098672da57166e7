# SPDX-License-Identifier: Apache-2.0
"""Safe reading of incoming mail: parsing, header text, subjects, bodies, auto-replies.

Job: give routing, commands and rules the few facts they need from a message without
ever raising, whatever bytes arrived.
Input: raw message bytes exactly as received (untrusted: garbage, NULs, broken MIME,
bogus charsets and RFC 2047 words are all expected) and the SMTP envelope sender.
Output: an :class:`~email.message.EmailMessage` (``policy.default``) and plain ``str``
/ ``list`` values read from it.
Trusts: the stdlib ``email`` package for MIME structure, but not to be exception-free:
header values are parsed lazily on access and decoding can fail, so every accessor
here catches and falls back. Pure: no I/O.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from email import errors as email_errors
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import BytesParser

from listserv.html_text import html_to_text
from listserv.mail_policy import POLICY

__all__ = [
    "ROBOT_LOCAL_PARTS",
    "auto_reply_reason",
    "from_addresses",
    "header_text",
    "is_robot_address",
    "message_id",
    "normalise_phrase",
    "normalised_subject",
    "parse_message",
    "part_text",
    "sender_address",
    "text_body_lines",
]


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw bytes with ``policy.default``; never raises.

    ``BytesParser`` records most problems as ``msg.defects`` instead of raising, but
    not all (and headers are only parsed on access, see :func:`header_text`). If it
    does raise, try headers only, and failing that return an empty message whose
    payload is the raw bytes decoded as Latin-1 (lossless) with a defect recorded, so
    callers can always store, hold or discard what arrived.
    """
    parser = BytesParser(_class=EmailMessage, policy=POLICY)
    try:
        return parser.parsebytes(raw)
    except Exception:
        pass
    try:
        return parser.parsebytes(raw, headersonly=True)
    except Exception:
        msg = EmailMessage(policy=POLICY)
        msg.set_payload(raw.decode("latin-1"))
        msg.defects.append(email_errors.MessageDefect("message could not be parsed"))
        return msg


def _clean(text: str) -> str:
    """Text that can be encoded as UTF-8 (stored, logged, compared).

    The parser keeps undecodable header bytes as lone surrogates (surrogateescape);
    turn them back into bytes and decode those as UTF-8 with U+FFFD replacement.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates outside the escape range
        return text.encode("utf-8", "replace").decode("utf-8")


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes as text: the declared charset, else UTF-8, else Latin-1 (never fails).

    A charset that is unknown, is not a text encoding (``base64``) or does not
    match the bytes falls through to the next; Latin-1 maps every byte, so the
    last step cannot fail.
    """
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            codecs.lookup(candidate)
            return data.decode(candidate)
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue
    return data.decode("latin-1", "replace")


def _raw_header(msg: Message, name: str) -> str | None:
    """The first raw (unparsed) value of a header, or None; bypasses the header factory."""
    wanted = name.lower()
    try:
        for key, value in msg.raw_items():
            if key.lower() == wanted:
                return str(value)
    except Exception:
        return None
    return None


def _decode_rfc2047(raw: str) -> str:
    """Best-effort RFC 2047 decoding of a raw header value, used when the policy's
    parser fails: each encoded word with its own charset, falling back like bodies."""
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", raw)
    try:
        pieces = decode_header(unfolded)
    except Exception:
        return _clean(unfolded)
    out: list[str] = []
    for piece, charset in pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif charset is None:  # decode_header encoded plain text with raw-unicode-escape
            out.append(piece.decode("raw-unicode-escape", "replace"))
        else:
            out.append(_decode_bytes(piece, charset))
    return _clean("".join(out))


def header_text(msg: EmailMessage, name: str) -> str:
    """The decoded text of the first ``name`` header, or ``''`` when absent; never raises.

    ``policy.default`` decodes RFC 2047 words (an unknown charset becomes a defect,
    not an error), but header parsing happens lazily on access and has raised on
    hostile input; then the raw value is decoded by hand. Undecodable bytes become
    U+FFFD so the result is always valid Unicode.

    Every stage asks for the same few headers, and the policy parses a header
    again on every access; the text is remembered on the message beside the raw
    value it came from, so a header changed since is parsed afresh.
    """
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    remembered: dict[str, tuple[str, str]] = msg.__dict__.setdefault("_listserv_texts", {})
    key = name.lower()
    hit = remembered.get(key)
    if hit is not None and hit[0] == raw:
        return hit[1]
    text = _header_text(msg, name, raw)
    remembered[key] = (raw, text)
    return text


def _header_text(msg: EmailMessage, name: str, raw: str) -> str:
    try:
        value = msg.get(name)
        return "" if value is None else _clean(str(value))
    except Exception:
        return _decode_rfc2047(raw)


# Reply and forward prefixes in the languages our members' mail clients use, after
# case folding: English, German (AW, WG), Scandinavian (SV, VS, VB), French (Réf, TR),
# Italian (RIF), Dutch (Antw, Doorst), Spanish/Portuguese (RV, ENC, RES), Polish
# (Odp, PD). Optional counters as in "Re[2]:" or "Re(3):".
_PREFIX_WORDS = "re|fwd|fw|aw|wg|sv|vs|vb|réf|ref|tr|rif|antw|doorst|rv|enc|res|odp|pd"
_LEADING_NOISE = re.compile(
    rf"^(?:(?:{_PREFIX_WORDS})\s*(?:\[\d*\]|\(\d*\))?\s*:\s*|\[[^\]]*\]\s*)+",
)
# Characters that carry no text: Unicode format characters (zero-width space, joiners,
# bidi marks, soft hyphen) are dropped; controls count as white space.
_INVISIBLE = {"Cf"}


def _fold(text: str) -> str:
    """NFKC, case-fold, drop invisible format characters, collapse white space."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    chars = []
    for ch in folded:
        category = unicodedata.category(ch)
        if category in _INVISIBLE:
            continue
        chars.append(" " if category == "Cc" else ch)
    return " ".join("".join(chars).split())


def normalise_phrase(text: str) -> str:
    """A subject or configured phrase in comparable form.

    Folds Unicode compatibility forms (full-width letters, ``Ｒｅ：``), case and white
    space, then drops any run of leading reply/forward prefixes and ``[list tags]``.
    Applying the same steps to configured phrases and to subjects is what makes
    "Re: [SM-COP] JOIN  the Social Media Community" equal "Join the Social Media
    Community".
    """
    return _LEADING_NOISE.sub("", _fold(text)).strip()


def normalised_subject(msg: EmailMessage) -> str:
    """The Subject, RFC 2047-decoded, in the form of :func:`normalise_phrase`."""
    return normalise_phrase(header_text(msg, "Subject"))


def from_addresses(msg: EmailMessage) -> list[tuple[str, str]]:
    """``(display name, addr-spec)`` for every address in every From header.

    Several From headers are all read, so a caller checking "exactly one sender"
    sees them all. Entries without an addr-spec are skipped; a header the parser
    cannot read contributes nothing. Never raises.
    """
    found: list[tuple[str, str]] = []
    try:
        raw_headers = [v for k, v in msg.raw_items() if k.lower() == "from"]
    except Exception:
        return []
    # Several stages ask; parsing the header is the costly part, so remember it.
    cache_key = tuple(raw_headers)
    cached = getattr(msg, "_listserv_from", None)
    if cached is not None and cached[0] == cache_key:
        return list(cached[1])
    for raw in raw_headers:
        try:  # parse each header on its own, so one hostile header cannot hide another
            addresses = msg.policy.header_fetch_parse("From", raw).addresses  # type: ignore[attr-defined]
        except Exception:
            continue
        for address in addresses:
            try:
                addr_spec = _clean(str(address.addr_spec)).strip()
                display = _clean(str(address.display_name or ""))
            except Exception:
                continue
            if addr_spec and addr_spec != "<>":
                found.append((display, addr_spec))
    try:
        msg._listserv_from = (cache_key, tuple(found))  # type: ignore[attr-defined]
    except Exception:
        pass
    return found


def _envelope_address(envelope_from: str) -> str:
    """The envelope sender without angle brackets or surrounding white space."""
    return envelope_from.strip().removeprefix("<").removesuffix(">").strip()


def sender_address(msg: EmailMessage, envelope_from: str) -> str | None:
    """Who sent the message, for replies: the first From addr-spec, else the envelope
    sender (``''`` and ``<>`` meaning none), else None."""
    addresses = from_addresses(msg)
    if addresses:
        return addresses[0][1]
    envelope = _envelope_address(envelope_from)
    return envelope or None


def _is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment"
    except Exception:
        return False


def _first_text_part(msg: Message) -> tuple[Message, bool] | None:
    """The first inline text/plain part, else the first inline text/html part.

    Returns the part and whether it is HTML.
    """
    html: Message | None = None
    try:
        for part in msg.walk():
            if part.is_multipart() or _is_attachment(part):
                continue
            content_type = part.get_content_type()
            if content_type == "text/plain":
                return part, False
            if content_type == "text/html" and html is None:
                html = part
    except Exception:
        pass
    return (html, True) if html is not None else None


def _part_text(part: Message) -> str:
    """A leaf part's decoded text (transfer encoding, then charset, with fallbacks)."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        try:
            raw = part.get_payload()
        except Exception:
            return ""
        return _clean(raw) if isinstance(raw, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return _clean(_decode_bytes(payload, charset))


def part_text(part: Message) -> str:
    """A leaf part's decoded text, NULs removed; never raises (the archive shows it)."""
    return _part_text(part).replace("\x00", "")


def text_body_lines(msg: EmailMessage, limit: int = 50) -> list[str]:
    """The first ``limit`` lines of the message's readable text; never raises.

    The first inline text/plain part, or the first text/html part with tags
    stripped when there is no plain part; decoded with the declared charset, then
    UTF-8, then Latin-1 (so wrong or unknown charsets still give text). Trailing
    white space is stripped from each line and NUL characters removed (PostgreSQL
    text cannot hold them).
    """
    if limit <= 0:
        return []
    try:
        found = _first_text_part(msg)
        if found is None:
            return []
        part, is_html = found
        text = _part_text(part)
        if is_html:
            text = html_to_text(text)
        text = text.replace("\x00", "")
        return [line.rstrip() for line in text.splitlines()[:limit]]
    except Exception:
        return []


# Headers set by vacation responders and similar robots that predate RFC 3834.
_AUTORESPONDER_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-Mail-Autoreply")

#: Local parts of the mail system's own senders: the MTA's MAILER-DAEMON in its usual
#: spellings and the RFC 5321 postmaster. Mail from them is a bounce or a robot's notice,
#: never a person to answer; bounce recognition and auto-reply checks share this list.
ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})


def _has_header(msg: Message, name: str) -> bool:
    """Presence only: ``in`` compares raw names and never parses the value."""
    try:
        return name in msg
    except Exception:
        return False


def _local_part(address: str) -> str:
    """The part before the last ``@`` (the whole text when there is none), lower case."""
    return (address.rpartition("@")[0] if "@" in address else address).lower()


def is_robot_address(address: str) -> bool:
    """Whether the address (or bare local part) is one of :data:`ROBOT_LOCAL_PARTS`."""
    return _local_part(address) in ROBOT_LOCAL_PARTS


def auto_reply_reason(msg: EmailMessage, envelope_from: str) -> str | None:
    """Why this message must never be answered (RFC 3834), or None if it may be.

    Answering a robot risks a mail loop: so no reply to a null reverse path (bounces),
    to a robot envelope sender (:data:`ROBOT_LOCAL_PARTS`) or a MAILER-DAEMON From, to any
    ``Auto-Submitted`` other than ``no``, to ``Precedence: bulk/junk/list``, or to
    the X-Autoreply family of vacation-responder headers. ``List-Id`` alone is not a
    reason: members legitimately reply from other lists' traffic.
    """
    envelope = _envelope_address(envelope_from)
    if not envelope:
        return "null reverse path"
    if is_robot_address(envelope):
        return "MAILER-DAEMON sender"
    if any(_local_part(a) == "mailer-daemon" for _, a in from_addresses(msg)):
        return "MAILER-DAEMON sender"
    if _has_header(msg, "Auto-Submitted"):
        value = header_text(msg, "Auto-Submitted").split(";", 1)[0].strip().lower()
        if value != "no":
            return f"Auto-Submitted: {value or '(empty)'}"
    precedence = header_text(msg, "Precedence").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for name in _AUTORESPONDER_HEADERS:
        if _has_header(msg, name):
            return f"{name} header"
    return None


def message_id(msg: EmailMessage) -> str | None:
    """The Message-ID with all white space removed (folding), or None if absent/empty."""
    value = "".join(header_text(msg, "Message-ID").split())
    return value or None
