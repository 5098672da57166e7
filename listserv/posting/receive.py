# SPDX-License-Identifier: Apache-2.0
"""The posting pipeline: mail to a list's posting address, from rules to fan-out.

Input: one `Delivery` for a list's posting address (the router's POST entry).
Output: a `Post` row for every message, whatever becomes of it — the raw bytes,
sender, subject, Message-ID, In-Reply-To, Date and SHA-256, with the status and the
rules' reasons — then one of: accepted (the archive, and a fan-out job in the
outbox), held (moderation.hold_post), rejected (the poster told why, unless the
message is automatic), discarded (audited; a command sent here by mistake is also
handed to the -request address's handling so the sender gets an answer).
Trusts: the rules (rules.py) for the verdict; nothing in the message itself.

Records law is why every message is stored before anything is decided: nothing a
member sent to a government list silently vanishes. All of it happens in the
processing stage's one transaction per message, so a crash leaves the inbound row
to be processed again rather than half a post.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from sqlalchemy import select

from listserv import audit, notices, roster
from listserv.actors import Auth, email_actor
from listserv.addresses import Recipient, parse_recipient
from listserv.approved import take_password
from listserv.context import Context
from listserv.message import auto_reply_reason, from_addresses, header_text
from listserv.models import MailingList, Member, Post, PostStatus, Role
from listserv.passwords import verify_password
from listserv.posting import fanout, moderation
from listserv.posting.rules import Action, Verdict, evaluate, post_context
from listserv.routing.delivery import Delivery
from listserv.sender_auth import sender_proof

#: Who decided a post the rules decided, for "already handled by …".
RULES_ACTOR = "the posting rules"

_STATUS = {
    Action.ACCEPT: PostStatus.ACCEPTED,
    Action.HOLD: PostStatus.HELD,
    Action.REJECT: PostStatus.REJECTED,
    Action.DISCARD: PostStatus.DISCARDED,
}


def _text(value: str, limit: int) -> str:
    """Header text fit for a column: no NULs (PostgreSQL refuses them), bounded."""
    return value.replace("\x00", "")[:limit]


def _compact(value: str, limit: int = 998) -> str:
    """Message-IDs and In-Reply-To without folding white space."""
    return _text("".join(value.split()), limit)


def _date(msg: EmailMessage) -> datetime | None:
    text = header_text(msg, "Date")
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def store_post(ctx: Context, mlist: MailingList, delivery: Delivery, status: str) -> Post:
    """The post's row, as received; status and reason are the caller's."""
    msg, raw = delivery.message, delivery.inbound.raw
    senders = from_addresses(msg)
    name, address = senders[0] if senders else ("", "")
    if not address:
        address = delivery.envelope_from.strip().strip("<>")
    post = Post(
        list_id=mlist.id,
        inbound_id=delivery.inbound.id,
        status=status,
        sender=_text(address, 320),
        sender_name=_text(name, 200),
        subject=_text(header_text(msg, "Subject"), 10_000),
        message_id=_compact(header_text(msg, "Message-ID")),
        in_reply_to=_compact(header_text(msg, "In-Reply-To")),
        date=_date(msg),
        raw=raw,
        sha256=hashlib.sha256(raw).hexdigest(),
        received_at=delivery.inbound.received_at or ctx.now,
    )
    ctx.session.add(post)
    ctx.session.flush()
    return post


def _pre_approval(ctx: Context, mlist: MailingList, delivery: Delivery) -> str | None:
    """The owner or moderator whose `Approved:` password the post carries, if valid.

    The password is removed from the stored bytes whether or not it is right;
    a wrong one is audited and the post goes through the rules as usual.
    """
    password = take_password(ctx, delivery.inbound, delivery.message)
    if password is None:
        return None
    staff = ctx.session.scalars(
        select(Member).where(
            Member.list_id == mlist.id,
            Member.role.in_((Role.OWNER, Role.MODERATOR)),
            Member.password_hash.is_not(None),
        )
    ).all()
    for member in staff:
        if verify_password(member.password_hash, password):
            return member.address
    audit.record_act(
        ctx.session,
        email_actor(delivery.envelope_from),
        "post-approval-refused",
        at=ctx.now,
        list_name=mlist.name,
        source=ctx.source,
        outcome="bad-password",
    )
    return None


#: Hands a message on to another address's stage (the router's `route`, passed in so
#: this stage need not import the router that imports it).
Forward = Callable[[Context, Delivery], str]


def receive_post(ctx: Context, delivery: Delivery, forward: Forward) -> str:
    """Store, judge and act on one message to a posting address; a note for the log.

    Administrivia sent to the posting address (a "subscribe" alone) is
    discarded as a post and `forward`ed to the -request address's stage.
    """
    mlist = delivery.mlist
    if mlist is None:
        return "ignored: no such list"
    # A pre-approved post (Mailman's `Approved: password`): the password is
    # removed from everything stored before the post itself is stored.
    approved_by = _pre_approval(ctx, mlist, delivery)
    post = store_post(ctx, mlist, delivery, PostStatus.HELD)
    ctx.sender_proof = sender_proof(delivery.message, post.sender, ctx.settings.site.authserv_id)
    verdict = evaluate(
        post_context(
            ctx,
            mlist,
            delivery.message,
            size=len(delivery.inbound.raw),
            envelope_from=delivery.envelope_from,
            post_id=post.id,
        )
    )
    if approved_by and verdict.action == Action.HOLD:
        # Only what a moderator could approve is approved; loops, auto-replies,
        # oversize and bans keep their verdict.
        verdict = replace(verdict, action=Action.ACCEPT)
    post.status = _STATUS[verdict.action]
    post.reason = "\n".join(
        [*verdict.all_reasons, *([f"pre-approved by {approved_by}"] if approved_by else [])]
    )
    if verdict.action == Action.HOLD:
        moderation.hold_post(ctx, mlist, post, verdict.reasons)
        return f"post {post.id} held: {'; '.join(verdict.reasons)}"[:2000]
    post.decided_at = ctx.now
    post.decided_by = RULES_ACTOR
    if verdict.action == Action.ACCEPT:
        job = fanout.accept_post(ctx, mlist, post)
        _record(ctx, mlist, post, "post-accepted", verdict, job=job.id)
        return f"post {post.id} accepted for {post.recipient_count} member(s)"
    if verdict.action == Action.REJECT:
        notified = _tell_rejected(ctx, mlist, post, delivery, verdict)
        _record(ctx, mlist, post, "post-rejected", verdict, notified=notified)
        return f"post {post.id} rejected: {'; '.join(verdict.reasons)}"[:2000]
    _record(ctx, mlist, post, "post-discarded", verdict)
    note = f"post {post.id} discarded: {'; '.join(verdict.reasons)}"
    decisive = verdict.decisive
    if decisive is not None and decisive.route_to is not None:
        recipient = Recipient(mlist.name, decisive.route_to)
        if _also_addressed_to(ctx, delivery, recipient):
            return f"{note}; also sent to {mlist.address('-' + recipient.destination.value)}"
        routed = Delivery(
            delivery.inbound, delivery.message, recipient, mlist, delivery.envelope_from
        )
        note += f"; as {mlist.address('-' + decisive.route_to.value)}: {forward(ctx, routed)}"
    return note[:2000]


def _also_addressed_to(ctx: Context, delivery: Delivery, recipient: Recipient) -> bool:
    """The envelope also names that address, whose own handling answers the sender."""
    for rcpt in delivery.inbound.rcpt_tos:
        other = parse_recipient(
            str(rcpt), ctx.settings.site.domains, ctx.settings.site.command_address
        )
        if other is not None and (other.list_name, other.destination) == (
            recipient.list_name,
            recipient.destination,
        ):
            return True
    return False


def _tell_rejected(
    ctx: Context, mlist: MailingList, post: Post, delivery: Delivery, verdict: Verdict
) -> bool:
    """The poster's notice, never to a robot (RFC 3834) and within the notice budget."""
    if auto_reply_reason(delivery.message, delivery.envelope_from) is not None:
        return False
    if not moderation.may_notify_poster(ctx, post.sender):
        return False
    notices.send_notice(
        ctx,
        "post_rejected.txt.j2",
        post.sender,
        mlist=mlist,
        in_reply_to=post.message_id,
        subject=post.subject,
        reasons=verdict.reasons,
        by_moderator=False,
        explain_membership=not roster.roles_of(ctx.session, mlist, post.sender),
    )
    return True


def _record(
    ctx: Context, mlist: MailingList, post: Post, action: str, verdict: Verdict, **detail: object
) -> None:
    audit.record_act(
        ctx.session,
        email_actor(post.sender, Auth.RULES),
        action,
        list_name=mlist.name,
        target=f"post:{post.id}",
        source=ctx.source,
        outcome=post.status,
        detail={"post": post.id, "reasons": verdict.all_reasons, **detail},
        at=ctx.now,
    )
