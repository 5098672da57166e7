# SPDX-License-Identifier: Apache-2.0
"""Digests: on the list's schedule, members on DIGEST get the posts since the last one.

A list sends daily or weekly at `digest_hour` (UTC), or early once its posts
reach `digest_size_kb`. Input is the accepted posts of a list since its last
digest; output is one outbox job per digest format to the enabled members in
digest mode who chose it, personalized like posts
(each copy carries its member's own one-click link, in List-Unsubscribe and
in the contents' footer) unless the list sends one bulk copy. The digest is a MIME
digest (RFC 2046 multipart/digest): a table of contents with the FOIA footer,
then every post as a message/rfc822 part holding its original bytes, so
nothing of a post is changed on the way; members who chose "plain" get the
RFC 1153 text digest instead (`digest_text.py`). `last_digest_at` on the list
records what was sent, and moves forward in the same transaction that
queues the digest, so a crash neither loses a day nor sends it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv import outbox
from listserv.context import Context
from listserv.decorate import ListMail, list_headers
from listserv.digest_text import digest_subject, plain_digest_body
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
from listserv.posting.fanout import bulk_unsubscribe_headers, personal_links, render_footers
from listserv.tokens import unsubscribe_token

#: How often a list's digest goes out, by its `digest_schedule`.
DIGEST_INTERVALS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
DIGEST_INTERVAL = DIGEST_INTERVALS["daily"]
DIGEST_FORMATS = ("mime", "plain")


def next_digest_at(mlist: MailingList) -> datetime | None:
    """When the scheduled digest is due: an interval after the last, at the list's hour."""
    if mlist.last_digest_at is None:
        return None  # never sent: due now
    interval = DIGEST_INTERVALS.get(mlist.digest_schedule, DIGEST_INTERVAL)
    due = mlist.last_digest_at + interval
    at_hour = due.replace(hour=mlist.digest_hour, minute=0, second=0, microsecond=0)
    return at_hour if at_hour >= mlist.last_digest_at else due


def digest_members(
    session: Session, mlist: MailingList, secret: str, digest_format: str = "mime"
) -> list[RecipientSpec]:
    """Enabled members on DIGEST in this format, with their one-click token if personal."""
    rows = session.execute(
        select(Member.id, Member.address, Member.unsubscribe_nonce)
        .where(
            Member.list_id == mlist.id,
            Member.role == Role.MEMBER,
            Member.delivery_mode == DeliveryMode.DIGEST,
            Member.delivery_status == DeliveryStatus.ENABLED,
            Member.digest_format == digest_format,
        )
        .order_by(Member.id)
    ).all()
    personal = personal_links(mlist)
    return [
        RecipientSpec(
            address,
            member_id,
            unsubscribe_token(secret, member_id, mlist.name, nonce) if personal else "",
        )
        for member_id, address, nonce in rows
    ]


def build_plain_digest(ctx: Context, mlist: MailingList, posts: list[Post]) -> bytes:
    """The RFC 1153 digest's bytes: one text/plain message."""
    identity = list_identity(mlist, ctx.settings.web.base_url)
    footer_text, _ = render_footers(ctx, mlist)
    body = plain_digest_body(mlist, posts, footer_text, ctx.now)
    head = [
        f'From: "{mlist.display_name} digest" <{identity.posting_address}>',
        f"To: {identity.posting_address}",
        f"Subject: {digest_subject(mlist, ctx.now)}",
        f"Date: {format_datetime(ctx.now)}",
        f"Message-ID: {make_msgid(domain=mlist.domain)}",
        *(f"{name}: {value}" for name, value in list_headers(identity, ListMail.DIGEST)),
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
        "",
        body.replace("\n", "\r\n"),
    ]
    out = "\r\n".join(head).encode("utf-8")
    if not personal_links(mlist):
        out = bulk_unsubscribe_headers(
            out, mlist, f"{ctx.settings.web.base_url}/lists/{mlist.name}"
        )
    return out


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
    contents += [
        "",
        f"You get {mlist.display_name} as a daily digest. To get each message as it is sent,",
        f"send SET {mlist.display_name} MAIL to {ctx.settings.site.site_address}; to stop mail",
        f"but stay a member, send SET {mlist.display_name} NOMAIL.",
        "",
        footer_text.strip(),
        "",
    ]
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
    if not personal_links(mlist):
        out = bulk_unsubscribe_headers(
            out, mlist, f"{ctx.settings.web.base_url}/lists/{mlist.name}"
        )
    return out


@dataclass(frozen=True)
class DigestRun:
    """What one list's digest run found and did."""

    list_name: str
    posts: int
    recipients: int
    queued: bool


def due_posts(ctx: Context, mlist: MailingList) -> list[Post]:
    """Accepted posts since the list's last digest (or the last interval, if none was sent)."""
    interval = DIGEST_INTERVALS.get(mlist.digest_schedule, DIGEST_INTERVAL)
    since = mlist.last_digest_at or ctx.now - interval
    return list(
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


def send_digest(
    ctx: Context, mlist: MailingList, *, on_demand: bool = False, dry_run: bool = False
) -> DigestRun:
    """Queue this list's digest if one is due (or now, `on_demand`); `dry_run` changes nothing.

    The period moves forward even when nothing is sent, so posts are never
    gathered twice; an on-demand digest starts the next period from now.
    """
    due = next_digest_at(mlist)
    scheduled = due is None or ctx.now >= due
    posts = due_posts(ctx, mlist)
    big = mlist.digest_size_kb > 0 and (
        sum(len(p.raw) for p in posts) >= mlist.digest_size_kb * 1024
    )
    if not (on_demand or scheduled or big):
        return DigestRun(mlist.name, 0, 0, queued=False)
    secret = ctx.settings.site.secret.get()
    by_format = {f: digest_members(ctx.session, mlist, secret, f) for f in DIGEST_FORMATS}
    count = sum(len(r) for r in by_format.values())
    queued = bool(posts and count)
    if dry_run:
        return DigestRun(mlist.name, len(posts), count, queued=False)
    mlist.last_digest_at = ctx.now
    builders = {"mime": build_digest, "plain": build_plain_digest}
    personal = personal_links(mlist)
    for digest_format, recipients in by_format.items():
        if not (posts and recipients):
            continue
        outbox.enqueue(
            ctx.session,
            mail_from=mlist.address("-bounces"),
            recipients=recipients,
            raw=builders[digest_format](ctx, mlist, posts),
            retry_for=timedelta(hours=ctx.settings.delivery.retry_for_hours),
            kind="digest",
            list_id=mlist.id,
            personalized=personal,
            verp=personal,
            now=ctx.now,
        )
    return DigestRun(mlist.name, len(posts), count, queued=queued)


def send_digests(ctx: Context) -> int:
    """The periodic job: every list's digest that is due; the number of recipients."""
    return sum(
        run.recipients
        for mlist in ctx.session.scalars(select(MailingList).order_by(MailingList.id))
        if (run := send_digest(ctx, mlist)).queued
    )
