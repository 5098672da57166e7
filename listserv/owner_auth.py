# SPDX-License-Identifier: Apache-2.0
"""Proof of ownership for owner and moderator commands sent by email.

The From line proves nothing: anyone can write an owner's address there. A
command from an owner's or moderator's address therefore runs only

- after the owner confirms it: the commands are stored in an
  `owner-commands` request and a confirmation goes to the owner's address
  on the roster (LISTSERV's "OK" round trip); holding its token is the proof
  (audited with auth `confirmed-reply`); or
- when the message carries that owner's `Approved: password` (a header, or
  the first line of the body), checked against the Argon2 hash on the
  owner's roster row of that list (auth `password`).

Failed password attempts are audited (`bad-password`) and limited per list
and sender address; past the limit even the right password is refused for an
hour, so a guesser forging an owner's From gets a handful of tries.

The password itself must never be kept: `take_password` reads it and, in the
same transaction as processing, rewrites the stored inbound row, any post
made from the same message and any outgoing copy of it, before anything
commits. It never reaches the audit log, a reply or a log line.

Input is the processed message and a command's list; output is a `Grant`
(who acts, and how that was proved) or the `Outcome` to answer with.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from email.message import EmailMessage, Message
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv import audit, notices, ratelimit, roster
from listserv.context import Context
from listserv.message import header_text, parse_message, text_body_lines
from listserv.models import (
    InboundMessage,
    MailingList,
    Member,
    OutboxJob,
    PendingRequest,
    Post,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.outcomes import Outcome
from listserv.passwords import verify_password
from listserv.tokens import hash_token, new_token

if TYPE_CHECKING:
    from listserv.commands import CommandRequest

#: Header names Mailman and LISTSERV users write the password in.
APPROVED_HEADERS = ("Approved", "Approve", "X-Approved", "X-Approve")
_LABEL = r"(?:x-)?approved?[ \t]*:[ \t]*"
_APPROVED_LINE = re.compile(rf"^\s*{_LABEL}(\S.*?)\s*$", re.IGNORECASE)
_APPROVED_FIELD = re.compile(rb"^(?:x-)?approved?[ \t]*:", re.IGNORECASE)

#: Wrong passwords one sender may try on one list in PASSWORD_WINDOW.
PASSWORD_FAILURES = 5
PASSWORD_WINDOW = timedelta(hours=1)

#: What a moderator may do; owners may do everything.
MODERATOR_COMMANDS = frozenset({"approve", "reject", "discard", "review"})

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


# --------------------------------------------------------------------------- who may act


@dataclass(frozen=True)
class Grant:
    """Permission to run one command: who acts, and how that was proved (for the audit)."""

    actor: str
    auth: str
    role: str


@dataclass
class Credentials:
    """What one message proves, gathered as its commands run.

    `confirmed` is set only while replaying a confirmed `owner-commands`
    request: (list id, the owner address the confirmation went to).
    """

    password: str | None = None
    confirmed: tuple[int, str] | None = None
    verdicts: dict[int, Grant | Outcome] = field(default_factory=dict)
    deferred: dict[int, list[str]] = field(default_factory=dict)
    deferred_to: dict[int, str] = field(default_factory=dict)
    refusals_audited: set[int] = field(default_factory=set)


def credentials(request: CommandRequest) -> Credentials:
    if request.credentials is None:
        request.credentials = Credentials()
    return request.credentials


def staff_row(session: Session, mlist: MailingList, address: str) -> Member | None:
    """The owner row for `address` on the list, else its moderator row, else None."""
    for role in (Role.OWNER, Role.MODERATOR):
        member = roster.find_member(session, mlist, address, role)
        if member is not None:
            return member
    return None


def may(role: str | None, word: str) -> bool:
    """Whether a role may run a command word (owners: all; moderators: the moderation ones)."""
    if role == Role.OWNER:
        return True
    return role == Role.MODERATOR and word in MODERATOR_COMMANDS


def hidden(request: CommandRequest, mlist: MailingList | None) -> bool:
    """Whether the sender must be answered as if the list did not exist.

    A non-public list is invisible to anyone not on its roster in some role,
    so a refusal about it reads exactly like one about a list that is not there.
    """
    if mlist is None:
        return True
    if mlist.public:
        return False
    return not roster.roles_of(request.ctx.session, mlist, request.sender)


def no_such_list(word: str, name: str) -> Outcome:
    """The one refusal for a list that does not exist or may not be seen."""
    return Outcome.refused(
        f"{word.upper()} {name.upper()}: there is no such list here, or you may not use "
        f"{word.upper()} on it."
    )


def _password_key(mlist: MailingList, sender: str) -> str:
    return f"approved-fail:{mlist.name}:{roster.address_key(sender)}"


def check_password(request: CommandRequest, mlist: MailingList) -> Grant | Outcome:
    """The message's password against the sender's owner (or moderator) hash on this list.

    Checked once per list per message; every failure is audited and counted.
    """
    creds = credentials(request)
    if mlist.id in creds.verdicts:
        return creds.verdicts[mlist.id]
    ctx = request.ctx
    key = _password_key(mlist, request.sender)
    verdict: Grant | Outcome
    if ratelimit.count(ctx.session, key, PASSWORD_WINDOW, ctx.now) >= PASSWORD_FAILURES:
        _audit_password(request, mlist, "password-locked", "too many wrong passwords")
        verdict = Outcome.refused(
            f"Too many wrong Approved: passwords for {mlist.display_name} from "
            f"{request.sender}; commands with a password are refused for an hour."
        )
    else:
        rows = [
            m
            for m in (
                roster.find_member(ctx.session, mlist, request.sender, role)
                for role in (Role.OWNER, Role.MODERATOR)
            )
            if m is not None
        ]
        matched = next(
            (m for m in rows if verify_password(m.password_hash, creds.password or "")), None
        )
        if matched is not None:
            verdict = Grant(actor=matched.address, auth="password", role=matched.role)
        else:
            ratelimit.allow(ctx.session, key, PASSWORD_FAILURES, PASSWORD_WINDOW, ctx.now)
            why = (
                "sender is not an owner or moderator"
                if not rows
                else "wrong password"
                if any(m.password_hash for m in rows)
                else "no password is set"
            )
            _audit_password(request, mlist, "bad-password", why)
            verdict = Outcome.refused(
                f"The Approved: password was not accepted for {mlist.display_name}; "
                "nothing was done."
            )
    creds.verdicts[mlist.id] = verdict
    return verdict


def _audit_password(request: CommandRequest, mlist: MailingList, outcome: str, why: str) -> None:
    audit.record(
        request.ctx.session,
        "owner-password",
        channel=request.ctx.channel,
        list_name=mlist.name,
        actor=request.sender,
        source=request.ctx.source,
        outcome=outcome,
        auth="password",
        detail={"reason": why},
        at=request.ctx.now,
    )


def authorize(request: CommandRequest, mlist: MailingList, word: str, line: str) -> Grant | Outcome:
    """May this message run `line` (an owner command, in site syntax) on this list now?

    Returns a Grant, or the Outcome to answer: refused, or pending when a
    confirmation will go to the owner's roster address (`send_confirmations`).
    """
    creds = credentials(request)
    session = request.ctx.session
    if creds.confirmed is not None:
        list_id, address = creds.confirmed
        if list_id != mlist.id:
            return Outcome.refused("That command was not part of the request you confirmed.")
        row = staff_row(session, mlist, address)
        if row is None or not may(row.role, word):
            return Outcome.refused(
                f"{address} may no longer use {word.upper()} on {mlist.display_name}."
            )
        return Grant(actor=row.address, auth="confirmed-reply", role=row.role)
    if creds.password is not None:
        verdict = check_password(request, mlist)
        if isinstance(verdict, Grant) and not may(verdict.role, word):
            return _moderator_refusal(mlist, word)
        return verdict
    row = staff_row(session, mlist, request.sender)
    if row is None:
        return not_staff(request, mlist, word)
    if not may(row.role, word):
        return _moderator_refusal(mlist, word)
    creds.deferred.setdefault(mlist.id, []).append(line)
    creds.deferred_to[mlist.id] = row.address
    return Outcome.pending(
        f"Confirmation sent to {row.address}; reply to it to carry this out.", notified=True
    )


def _moderator_refusal(mlist: MailingList, word: str) -> Outcome:
    return Outcome.refused(
        f"Only the owners of {mlist.display_name} may use {word.upper()}; moderators may "
        "APPROVE, REJECT, DISCARD and REVIEW."
    )


def not_staff(request: CommandRequest, mlist: MailingList, word: str) -> Outcome:
    """The refusal for a sender who is neither owner nor moderator (audited once per list)."""
    creds = credentials(request)
    if mlist.id not in creds.refusals_audited:
        creds.refusals_audited.add(mlist.id)
        audit.record(
            request.ctx.session,
            "owner-command-refused",
            channel=request.ctx.channel,
            list_name=mlist.name,
            actor=request.sender,
            source=request.ctx.source,
            outcome="not-authorized",
            detail={"command": word.upper()},
            at=request.ctx.now,
        )
    if not mlist.public:
        return no_such_list(word, mlist.name)
    return Outcome.refused(
        f"Only the owners of {mlist.display_name} may use {word.upper()}"
        + (" (and its moderators)." if word in MODERATOR_COMMANDS else ".")
    )


# --------------------------------------------------------------------------- the OK round trip


def send_confirmations(request: CommandRequest) -> list[PendingRequest]:
    """One `owner-commands` request per list whose commands wait, each mailed to its owner."""
    creds = credentials(request)
    ctx = request.ctx
    made: list[PendingRequest] = []
    for list_id, lines in creds.deferred.items():
        mlist = ctx.session.get(MailingList, list_id)
        if mlist is None:
            continue
        owner = creds.deferred_to[list_id]
        token = new_token()
        pending = PendingRequest(
            list_id=mlist.id,
            kind=RequestKind.OWNER_COMMANDS,
            status=RequestStatus.PENDING,
            address=owner,
            address_key=roster.address_key(owner),
            payload={"commands": list(lines), "list": mlist.name},
            token_hash=hash_token(token),
            created_at=ctx.now,
            expires_at=ctx.now + timedelta(hours=mlist.confirm_expiry_hours),
        )
        ctx.session.add(pending)
        ctx.session.flush()
        confirm_address = mlist.address(f"-confirm+{token}")
        notices.send_notice(
            ctx,
            "owner_confirm.txt.j2",
            owner,
            mlist=mlist,
            reply_to=confirm_address,
            commands=list(lines),
            token=token,
            confirm_address=confirm_address,
            expiry_hours=mlist.confirm_expiry_hours,
            asked_at=request.mlist.address("-request")
            if request.mlist is not None and not request.site
            else ctx.settings.site.site_address,
        )
        audit.record(
            ctx.session,
            "owner-commands-requested",
            channel=ctx.channel,
            list_name=mlist.name,
            actor=request.sender,
            target=owner,
            source=ctx.source,
            outcome="pending",
            detail={"request": pending.id, "commands": list(lines)},
            at=ctx.now,
        )
        made.append(pending)
    creds.deferred.clear()
    creds.deferred_to.clear()
    return made
