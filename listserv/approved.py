# SPDX-License-Identifier: Apache-2.0
"""The `Approved:` password: found in a message, and removed from everything kept.

Owners and moderators may prove who they are by putting their password in an
`Approved:` header or on the first line of the body (Mailman's and
LISTSERV's habit), for commands and for pre-approved posts. The password
itself must never be kept: `take_password` reads it and, in the same
transaction as processing, rewrites the stored inbound row, any post made
from the same message and any outgoing copy of it, before anything commits.
It never reaches the audit log, a reply or a log line. Checking it is the
commands' business (`commands/proof.py`) and the posting stage's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage, Message

from sqlalchemy import select

from listserv.context import Context
from listserv.message import header_text, parse_message, text_body_lines
from listserv.models import (
    InboundMessage,
    OutboxJob,
    Post,
)

#: Header names Mailman and LISTSERV users write the password in.
APPROVED_HEADERS = ("Approved", "Approve", "X-Approved", "X-Approve")
_LABEL = r"(?:x-)?approved?[ \t]*:[ \t]*"
_APPROVED_LINE = re.compile(rf"^\s*{_LABEL}(\S.*?)\s*$", re.IGNORECASE)
_APPROVED_FIELD = re.compile(rb"^(?:x-)?approved?[ \t]*:", re.IGNORECASE)

#: Stands in for a body that still held the password after every other way
#: of removing it failed (an encoding we could not rewrite).
REMOVED_BODY = "[The body of this message was removed: it carried an owner password.]\r\n"


# --------------------------------------------------------------------------- the password


def _secrets_in(msg: EmailMessage) -> list[str]:
    """Every password the message carries: Approved-family headers, then the first body line."""
    found: list[str] = []
    for name in APPROVED_HEADERS:
        value = header_text(msg, name).strip()
        if value and value not in found:
            found.append(value)
    for line in text_body_lines(msg, limit=40):
        if not line.strip():
            continue
        match = _APPROVED_LINE.match(line)
        if match and match.group(1) not in found:
            found.append(match.group(1))
        break
    return found


def _label_pattern(secret: str) -> re.Pattern[bytes]:
    return re.compile(
        rb"(?:x-)?approved?[ \t]*:[ \t]*" + re.escape(secret.encode("utf-8", "replace")),
        re.IGNORECASE,
    )


def _text_label_pattern(secret: str) -> re.Pattern[str]:
    return re.compile(rf"{_LABEL}{re.escape(secret)}[ \t]*(\r?\n)?", re.IGNORECASE)


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """Header block, the blank line, body (byte-exact)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(sep)
        if found:
            return head, found, body
    return raw, b"", b""


def _drop_fields(head: bytes) -> bytes:
    """The header block without Approved-family fields (and their continuation lines)."""
    kept: list[bytes] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = _APPROVED_FIELD.match(line) is not None
        if not dropping:
            kept.append(line)
    out = b"".join(kept)
    # The last field loses its line ending if it was dropped; the separator adds one back.
    return out.rstrip(b"\r\n")


def _text_parts(msg: Message) -> list[EmailMessage]:
    parts: list[EmailMessage] = []
    try:
        for part in msg.walk():
            if isinstance(part, EmailMessage) and not part.is_multipart():
                if part.get_content_maintype() == "text":
                    parts.append(part)
    except Exception:
        return parts
    return parts


def _leaks(raw: bytes, secrets: Sequence[str]) -> bool:
    """Whether the password still shows, in the bytes or in any decoded text part."""
    for secret in secrets:
        if _label_pattern(secret).search(raw):
            return True
        if len(secret) >= 8 and secret.encode("utf-8", "replace") in raw:
            return True
    msg = parse_message(raw)
    for part in _text_parts(msg):
        try:
            text = part.get_content()
        except Exception:
            continue
        if not isinstance(text, str):
            continue
        for secret in secrets:
            if _text_label_pattern(secret).search(text):
                return True
            if len(secret) >= 8 and secret in text:
                return True
    return any(header_text(msg, name) for name in APPROVED_HEADERS)


def _rewrite_parts(msg: EmailMessage, secrets: Sequence[str]) -> bool:
    """Remove the password from every text part in place; True if any part changed."""
    changed = False
    for part in _text_parts(msg):
        try:
            text = part.get_content()
        except Exception:
            continue
        if not isinstance(text, str):
            continue
        new = text
        for secret in secrets:
            new = _text_label_pattern(secret).sub("", new)
            if len(secret) >= 8:
                new = new.replace(secret, "")
        if new != text:
            part.set_content(new, subtype=part.get_content_subtype(), charset="utf-8")
            changed = True
    return changed


def strip_password(raw: bytes, secrets: Sequence[str]) -> bytes:
    """`raw` without the Approved header/line, as close to byte-exact as the encoding allows.

    First the fields and the `Approved: …` text are cut from the bytes (plain
    7bit/8bit bodies stay identical otherwise); if the password still shows in
    a decoded part (quoted-printable, base64), the text parts are decoded,
    cleaned and re-encoded; if even that fails the body is replaced by a notice.
    """
    if not secrets:
        return raw
    head, sep, body = _split(raw)
    eol = b"\r\n" if b"\r\n" in head else b"\n"
    new_head = _drop_fields(head)
    for secret in secrets:
        label = _label_pattern(secret).pattern
        # A line of its own goes whole; inside a line (HTML) only the label and password.
        body = re.sub(rb"(?im)^[ \t]*" + label + rb"[ \t]*(?:\r?\n|\Z)", b"", body, count=1)
        body = _label_pattern(secret).sub(b"", body)
    candidate = new_head + (sep or eol + eol) + body
    if not _leaks(candidate, secrets):
        return candidate
    msg = parse_message(candidate)
    for name in APPROVED_HEADERS:
        del msg[name]
    _rewrite_parts(msg, secrets)
    try:
        rebuilt = msg.as_bytes(policy=policy.SMTP if eol == b"\r\n" else policy.default)
    except Exception:
        rebuilt = b""
    if rebuilt and not _leaks(rebuilt, secrets):
        return rebuilt
    return new_head + eol + eol + REMOVED_BODY.encode("ascii").replace(b"\r\n", eol)


def scrub_raw(raw: bytes) -> bytes:
    """`raw` without any `Approved:` password it carries, for any stage that keeps mail.

    The processing stage's failure path and the posting address (Mailman's
    pre-approved posts) keep raw bytes too; this is the one way to clean them.
    """
    secrets = _secrets_in(parse_message(raw))
    return strip_password(raw, secrets) if secrets else raw


def _scrub_message(msg: EmailMessage, secrets: Sequence[str]) -> None:
    """Remove the password from the parsed message the stages share, in place."""
    for name in APPROVED_HEADERS:
        del msg[name]
    _rewrite_parts(msg, secrets)


def take_password(ctx: Context, inbound: InboundMessage, msg: EmailMessage) -> str | None:
    """The message's `Approved:` password, removed from everything stored in this transaction.

    Rewrites the inbound row, posts made from it and outgoing copies of it
    already in the session, and the parsed message later stages read; called
    before any other handling, so even a message that is then ignored (an
    auto-reply, a sender over the rate) keeps no password.
    """
    secrets = _secrets_in(msg)
    if not secrets:
        return None
    old_raw = inbound.raw
    inbound.raw = strip_password(old_raw, secrets)
    inbound.size = len(inbound.raw)
    _scrub_message(msg, secrets)
    for post in ctx.session.scalars(select(Post).where(Post.inbound_id == inbound.id)):
        _scrub_post(post, secrets)
    needles = [s.encode("utf-8", "replace") for s in secrets]
    for obj in [*ctx.session.identity_map.values(), *ctx.session.new]:
        if isinstance(obj, Post) and obj.inbound_id in (None, inbound.id):
            if any(n in obj.raw for n in needles):
                _scrub_post(obj, secrets)
        elif isinstance(obj, OutboxJob) and any(n in obj.raw for n in needles):
            obj.raw = strip_password(obj.raw, secrets)
    return secrets[0]


def _scrub_post(post: Post, secrets: Sequence[str]) -> None:
    old = post.raw
    new = strip_password(old, secrets)
    if new == old:
        return
    if post.sha256 == hashlib.sha256(old).hexdigest():
        post.sha256 = hashlib.sha256(new).hexdigest()
    post.raw = new
