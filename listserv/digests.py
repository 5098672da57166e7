# SPDX-License-Identifier: Apache-2.0
"""Digests: once a day, members on DIGEST get the day's posts in one message.

Input is the accepted posts of a list since its last digest; output is one
outbox job to every enabled member in digest mode. The digest is a MIME
digest (RFC 2046 multipart/digest): a table of contents with the FOIA footer,
then every post as a message/rfc822 part holding its original bytes, so
nothing of a post is changed on the way. `last_digest_at` on the list
records what was sent, and moves forward in the same transaction that
queues the digest, so a crash neither loses a day nor sends it twice.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv import outbox
from listserv.context import Context
from listserv.decorate import ListMail, list_headers
from listserv.lists import list_identity
from listserv.message import header_text, parse_message
from listserv.models import (
    DeliveryMode,
    DeliveryStatus,
    MailingList,
    Member,
    Post,
    PostStatus,
    Role,
)
from listserv.outbox import RecipientSpec
from listserv.posting.fanout import render_footers

#: How often a list's digest goes out.
DIGEST_INTERVAL = timedelta(days=1)


def digest_members(session: Session, mlist: MailingList) -> list[RecipientSpec]:
    rows = session.execute(
        select(Member.id, Member.address)
        .where(
            Member.list_id == mlist.id,
            Member.role == Role.MEMBER,
            Member.delivery_mode == DeliveryMode.DIGEST,
            Member.delivery_status == DeliveryStatus.ENABLED,
        )
        .order_by(Member.id)
    ).all()
    return [RecipientSpec(address, member_id) for member_id, address in rows]


def build_digest(ctx: Context, mlist: MailingList, posts: list[Post]) -> bytes:
    """The digest's bytes: a contents part, then each post byte for byte."""
    identity = list_identity(mlist, ctx.settings.web.base_url)
    footer_text, _ = render_footers(ctx, mlist)
    day = ctx.now.strftime("%Y-%m-%d")
    contents = [f"{mlist.display_name} digest, {day}: {len(posts)} message(s)", ""]
    for number, post in enumerate(posts, 1):
        msg = parse_message(post.raw)
        sender = header_text(msg, "From") or post.sender
        contents.append(f"{number:>3}. {post.subject or '(no subject)'}")
        contents.append(f"     {sender}")
    contents += ["", footer_text.strip(), ""]
    boundary = f"=_digest_{ctx.now:%Y%m%d%H%M%S}_{mlist.id}"
    inner = f"{boundary}_posts"
    subject = f"{mlist.display_name} digest, {day}, {len(posts)} message(s)"
    head = [
        f'From: "{mlist.display_name} digest" <{identity.posting_address}>',
        f"To: {identity.posting_address}",
        f"Subject: {subject}",
        f"Date: {format_datetime(ctx.now)}",
        f"Message-ID: {make_msgid(domain=mlist.domain)}",
        *(f"{name}: {value}" for name, value in list_headers(identity, ListMail.DIGEST)),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"',
        "",
        f"--{boundary}",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
        "",
        "\r\n".join(contents),
        f"--{boundary}",
        f'Content-Type: multipart/digest; boundary="{inner}"',
        "",
    ]
    out = "\r\n".join(head).encode("utf-8") + b"\r\n"
    for post in posts:
        body = post.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out += f"--{inner}\r\n".encode() + b"Content-Type: message/rfc822\r\n\r\n"
        out += body + (b"" if body.endswith(b"\r\n") else b"\r\n")
    out += f"--{inner}--\r\n--{boundary}--\r\n".encode()
    return out


def send_digest(ctx: Context, mlist: MailingList) -> int:
    """Queue this list's digest if one is due; the number of recipients."""
    since = mlist.last_digest_at
    if since is not None and ctx.now - since < DIGEST_INTERVAL:
        return 0
    if since is None:
        since = ctx.now - DIGEST_INTERVAL
    posts = list(
        ctx.session.scalars(
            select(Post)
            .where(
                Post.list_id == mlist.id,
                Post.status == PostStatus.ACCEPTED,
                Post.decided_at > since,
                Post.decided_at <= ctx.now,
            )
            .order_by(Post.decided_at, Post.id)
        )
    )
    mlist.last_digest_at = ctx.now
    recipients = digest_members(ctx.session, mlist)
    if not posts or not recipients:
        return 0
    outbox.enqueue(
        ctx.session,
        mail_from=mlist.address("-bounces"),
        recipients=recipients,
        raw=build_digest(ctx, mlist, posts),
        retry_for=timedelta(hours=ctx.settings.delivery.retry_for_hours),
        kind="digest",
        list_id=mlist.id,
        now=ctx.now,
    )
    return len(recipients)


def send_digests(ctx: Context) -> int:
    """The periodic job: every list's digest that is due."""
    return sum(
        send_digest(ctx, mlist)
        for mlist in ctx.session.scalars(select(MailingList).order_by(MailingList.id))
    )
