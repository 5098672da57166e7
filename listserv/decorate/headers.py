# SPDX-License-Identifier: Apache-2.0
"""The shared copy's header block: the poster's fields kept, the list's changed or added.

Subject prefix once, DMARC From munging ("Name via List" with the poster in
Reply-To or Cc), the poster's List-* and approval headers removed, ours
added, and DKIM signatures our changes break dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from email.utils import getaddresses

from listserv.decorate.entities import Field, latin1, norm_eol
from listserv.decorate.footer import Ctx
from listserv.decorate.identity import ListIdentity, list_header_lines
from listserv.decorate.phrases import (
    clean,
    decodes_losslessly,
    encode_header,
    encoded_phrase,
    header_text,
    parse_from,
)

#: Poster headers dropped from the shared copy. List-* and Precedence are replaced by
#: ours (a poster must not choose where members unsubscribe); Sender is replaced by the
#: bounces address; Approved-style headers can carry the moderator password; read-receipt
#: requests would make every member's client mail the poster.
_REMOVE = frozenset(
    {
        "list-id",
        "list-post",
        "list-help",
        "list-subscribe",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-archive",
        "list-owner",
        "precedence",
        "sender",
        "approved",
        "approve",
        "x-approved",
        "x-approve",
        "disposition-notification-to",
        "return-receipt-to",
        "x-confirm-reading-to",
    }
)


#: Headers this module or personalize() adds; a DKIM signature covering any of them breaks.
_ADDED = frozenset(
    {
        "sender",
        "precedence",
        "x-loop",
        "list-id",
        "list-help",
        "list-owner",
        "list-subscribe",
        "list-archive",
        "list-post",
        "list-unsubscribe",
        "list-unsubscribe-post",
    }
)


_MAX_DISPLAY = 128


_REPLY_RE = re.compile(
    r"(?:re|fwd?|aw|sv|vs|wg|antw|ref|rif|tr)\s*(?:\[\d+\]|\(\d+\))?\s*:", re.IGNORECASE
)


_DKIM_H_RE = re.compile(r"(?:^|;)\s*h\s*=\s*([^;]*)")


#: Something shaped like an address, NFKC-folded first (a full-width ＠ is an @).
_ADDRESS_LIKE = re.compile(r"[^\s<>()\[\]\",;:@]*@[^\s<>()\[\]\",;:@]*")


def display_name(display: str) -> str:
    """The poster's name fit for "… via LIST": no address-like words, no angle brackets.

    A name such as ``Jane" <ceo@agency.gov>, "x`` would otherwise make the munged
    From read as if ceo@ had sent it.
    """
    folded = unicodedata.normalize("NFKC", clean(display))
    words = _ADDRESS_LIKE.sub(" ", folded)
    words = re.sub(r"[<>\uff1c\uff1e\u2039\u203a\u27e8\u27e9\u3008\u3009]", " ", words)
    return " ".join(words.split()).strip(" ,;:")


def munged_from(display: str, addr_spec: str, lst: ListIdentity, eol: bytes) -> bytes:
    """``"Jane Doe via SM-COP" <sm-cop@…>``; the poster's name is cleaned and bounded."""
    name = display_name(display)
    if not name:
        name = addr_spec.rpartition("@")[0] or addr_spec
        name = display_name(name)
    if len(name) > _MAX_DISPLAY:
        name = name[:_MAX_DISPLAY].rstrip() + "..."
    full = f"{name} via {lst.display_name}" if lst.display_name else name
    phrase = encoded_phrase(full, eol)
    line = f"From: {phrase} <{lst.posting_address}>"
    if "\n" in phrase or len(line) > 78:
        line = f"From: {phrase}{eol.decode()} <{lst.posting_address}>"
    return line.encode("ascii") + eol


def _has_prefix(subject: str, prefix: str) -> bool:
    """True if the prefix starts the subject, after any Re:/Fwd:-style markers."""
    target = " ".join(prefix.split()).casefold()
    rest = subject
    for _ in range(50):
        rest = rest.lstrip()
        if " ".join(rest[: len(target) * 2 + 8].split()).casefold().startswith(target):
            return True
        match = _REPLY_RE.match(rest)
        if match is None:
            return False
        rest = rest[match.end() :]
    return False


def prefixed_subject(fields: Sequence[Field], prefix: str, eol: bytes) -> bytes | None:
    """The prefixed Subject field, or None if the current one is to stay as it is."""
    if not prefix.strip():
        return None
    current = next((f for f in fields if f.name == "subject"), None)
    text = header_text(current.value) if current is not None else ""
    if _has_prefix(text, prefix):
        return None
    if current is None or decodes_losslessly(current.value):
        return encode_header("Subject", f"{prefix.strip()} {clean(text) or '(no subject)'}", eol)
    # The poster's bytes follow the prefix as received: an encoded word in a charset
    # we cannot read, or raw 8-bit text that is not UTF-8, is passed on, never dropped
    # or replaced by U+FFFD.
    label = encode_header("Subject", prefix.strip(), eol).rstrip(b"\r\n")
    value = current.folded_value(eol).strip(b" \t\r\n")
    if len(label) + 1 + len(value.split(eol, 1)[0]) > 998:
        return label + eol + b" " + value + eol
    return label + b" " + value + eol


def _dkim_signed(f: Field) -> set[str]:
    """The header names a DKIM-Signature's h= tag covers (lower-case)."""
    match = _DKIM_H_RE.search(latin1(f.value))
    if match is None:
        return set()
    return {name.strip().lower() for name in match.group(1).split(":")}


def _addresses_in(value: bytes) -> set[str]:
    try:
        pairs = getaddresses([value.decode("utf-8", "replace")])
    except Exception:
        return set()
    return {addr.lower() for _, addr in pairs if addr}


def _poster_value(from_field: Field, parsed: tuple[str, str], eol: bytes) -> bytes:
    """The poster's From value as sent (folding kept), or rebuilt if its name is unsafe.

    Copying keeps the poster's own encoding (RFC 2047 or SMTPUTF8); a display name that
    decodes to control characters (a CR/LF smuggled in an encoded word) is rebuilt clean.
    """
    display, addr_spec = parsed
    text = header_text(from_field.value)
    if display == clean(display) and text.strip() == clean(text):
        return from_field.folded_value(eol).strip()
    name = " ".join(clean(display).split())
    addr = addr_spec.encode("utf-8", "replace")
    if not name:
        return addr
    return encoded_phrase(name, eol).encode("ascii") + b" <" + addr + b">"


def sender_field(label: bytes, from_field: Field, parsed: tuple[str, str], eol: bytes) -> bytes:
    """``Reply-To:``/``Cc:`` carrying the poster's From."""
    return label + b" " + _poster_value(from_field, parsed, eol) + eol


def merge_cc(cc: Field, from_field: Field, parsed: tuple[str, str], eol: bytes) -> bytes:
    """The poster's Cc with the poster's From address added, unless it is already there."""
    if parsed[1].lower() in _addresses_in(cc.value):
        return cc.raw
    value = _poster_value(from_field, parsed, eol)
    return cc.raw.rstrip(b"\r\n") + b"," + eol + b" " + value + eol


def rewrite_headers(
    fields: list[Field], lst: ListIdentity, ctx: Ctx, body_changed: bool
) -> list[bytes]:
    """The shared copy's header block: poster fields kept in order, ours changed/added.

    DKIM-Signature fields are dropped when the body changed or when any header they
    sign was changed, removed or added (in practice always, since the footer changes
    the body); ARC-* and everything else the poster sent stays byte-identical apart
    from line endings.
    """
    eol = ctx.eol
    touched = set(_ADDED)
    if body_changed:
        touched |= {"content-type", "content-transfer-encoding", "mime-version"}
    new_subject = prefixed_subject(fields, lst.subject_prefix, eol)
    from_field = next((f for f in fields if f.name == "from"), None)
    parsed = parse_from(from_field.value) if from_field is not None else None
    munge = lst.dmarc_mitigation == "munge" and parsed is not None
    cc_mode = lst.original_sender_header == "cc"
    out: list[bytes | Field] = []
    seen: set[str] = set()
    for f in fields:
        name = f.name
        first = name not in seen
        seen.add(name)
        if name in _REMOVE:
            touched.add(name)
        elif name == "dkim-signature":
            out.append(f)
        elif name == "subject" and new_subject is not None:
            touched.add(name)
            if first:
                out.append(new_subject)
        elif name == "from" and munge:
            assert parsed is not None
            touched.add(name)
            if first:
                out.append(munged_from(parsed[0], parsed[1], lst, eol))
        elif name == "cc" and munge and cc_mode and first:
            assert parsed is not None and from_field is not None
            merged = merge_cc(f, from_field, parsed, eol)
            if merged != f.raw:
                touched.add(name)
            out.append(norm_eol(merged, eol))
        else:
            out.append(norm_eol(f.raw, eol))
    if new_subject is not None and "subject" not in seen:
        touched.add("subject")
        out.append(new_subject)
    if munge and from_field is not None:
        target = "cc" if cc_mode else "reply-to"
        if target not in seen:
            touched.add(target)
            label = b"Cc:" if cc_mode else b"Reply-To:"
            assert parsed is not None
            out.append(sender_field(label, from_field, parsed, eol))
    out.extend(list_header_lines(lst, eol))
    result: list[bytes] = []
    for item in out:
        if isinstance(item, Field):  # a DKIM-Signature, decided now that touched is known
            if not body_changed and not (_dkim_signed(item) & touched):
                result.append(norm_eol(item.raw, eol))
        else:
            result.append(item)
    return result
