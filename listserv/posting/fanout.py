# SPDX-License-Identifier: Apache-2.0
"""Fan-out: an accepted post becomes one outbox job addressed to every receiving member.

Input: an accepted `Post` (its original bytes) and its list.
Output: an `OutboxJob` whose `raw` is the shared decorated copy, built once, plus one
`outbox_recipients` row per member in regular delivery with delivery enabled, each
carrying the member's signed unsubscribe token; the post gets the copy's size and
SHA-256 and the recipient count.
Trusts: the roster (who receives) and the templates (the FOIA footer).

The roster is streamed in keyset batches straight into the outbox, so a 100,000-member
list never sits in memory. Everything happens in the caller's transaction: the post
is archived and its job exists together, or neither does. Personalized jobs get their
List-Unsubscribe headers per recipient from the delivery worker's personalizer
(`decorate.personalize`, with `{web.base_url}/unsubscribe/{list}/{token}`); a bulk job
has one copy for everyone, so it carries the -leave mailto and the list page here,
without a one-click header (there is no member token to click with).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from email.utils import format_datetime, make_msgid

from listserv import notices, outbox, roster
from listserv.archive import index as archive_index
from listserv.context import Context
from listserv.decorate import MEMBER_LINK, decorate_post
from listserv.lists import list_identity
from listserv.models import MailingList, OutboxJob, Post, PostStatus
from listserv.outbox import RecipientSpec
from listserv.tokens import unsubscribe_token
from listserv.webhooks import events as webhook_events

#: Members read from the roster and inserted into the outbox per round trip.
BATCH = 2000


def personal_links(mlist: MailingList) -> bool:
    """Whether each member's copy carries their own one-click link (not one bulk copy)."""
    return mlist.delivery_style == "personalized"


def render_footers(ctx: Context, mlist: MailingList) -> tuple[str, str]:
    """The FOIA footer as text and HTML, from templates/footer.{txt,html}.j2.

    `unsubscribe_url` is the marker each member's copy gets their own link in
    (`decorate.personalize`), or the list page, whose leave form works for anyone,
    when one copy goes to everyone.
    """
    view = notices.list_view(ctx, mlist)
    link = MEMBER_LINK if personal_links(mlist) else view["url"]
    text = ctx.templates.render("footer.txt.j2", list=view, unsubscribe_url=link)
    html = ctx.templates.render("footer.html.j2", list=view, unsubscribe_url=link)
    return text, html


def bulk_unsubscribe_headers(shared: bytes, mlist: MailingList, page_url: str) -> bytes:
    """Splice ``List-Unsubscribe: <mailto:LIST-leave@…>, <list page>`` into a bulk copy.

    Spliced at the end of the header block (the first empty line), as
    `decorate.personalize` does for member copies; no List-Unsubscribe-Post, because
    a one-click POST needs a member's own token.
    """
    nl = shared.find(b"\n")
    eol = b"\r\n" if nl > 0 and shared[nl - 1] == 13 else b"\n"
    end = shared.find(eol + eol)
    cut = len(shared) if end < 0 else end + len(eol)
    header = (
        f"List-Unsubscribe: <mailto:{mlist.address('-leave')}>,".encode()
        + eol
        + f" <{page_url}>".encode()
        + eol
    )
    return shared[:cut] + header + shared[cut:]


def with_required_headers(ctx: Context, post: Post) -> bytes:
    """The post with a Message-ID and Date added if it came without them.

    RFC 5322 requires a Date and every receiver expects a Message-ID; a bare
    client (a script, smtplib) may send neither. Like Postfix's cleanup, we
    add them to the copies we send; the archived original stays as received,
    and the post records the Message-ID its copies carry.
    """
    head_end = post.raw.find(b"\n\n")
    crlf_end = post.raw.find(b"\r\n\r\n")
    if crlf_end != -1 and (head_end == -1 or crlf_end < head_end):
        head_end = crlf_end
    head = (post.raw if head_end == -1 else post.raw[:head_end]).lower()
    eol = b"\r\n" if b"\r\n" in post.raw[:2000] else b"\n"
    added = b""
    if not head.startswith(b"message-id:") and b"\nmessage-id:" not in head:
        message_id = make_msgid(domain=ctx.settings.site.domain)
        added += f"Message-ID: {message_id}".encode() + eol
        if not post.message_id:
            post.message_id = message_id
    if not head.startswith(b"date:") and b"\ndate:" not in head:
        added += f"Date: {format_datetime(ctx.now)}".encode() + eol
    return added + post.raw


def build_shared_copy(ctx: Context, mlist: MailingList, post: Post) -> bytes:
    """The one decorated copy of a post every recipient's copy is made from."""
    footer_text, footer_html = render_footers(ctx, mlist)
    original = with_required_headers(ctx, post)
    shared = decorate_post(
        original, list_identity(mlist, ctx.settings.web.base_url), footer_text, footer_html
    )
    if not personal_links(mlist):
        page = f"{ctx.settings.web.base_url}/lists/{mlist.name}"
        shared = bulk_unsubscribe_headers(shared, mlist, page)
    return shared


def start_fanout(ctx: Context, mlist: MailingList, post: Post) -> OutboxJob:
    """Queue the post for every receiving member; returns the job."""
    personalized = personal_links(mlist)
    shared = build_shared_copy(ctx, mlist, post)
    post.decorated_size = len(shared)
    post.decorated_sha256 = hashlib.sha256(shared).hexdigest()
    job = outbox.enqueue(
        ctx.session,
        mail_from=mlist.address("-bounces"),
        recipients=[],
        raw=shared,
        retry_for=timedelta(hours=ctx.settings.delivery.retry_for_hours),
        kind="post",
        list_id=mlist.id,
        post_id=post.id,
        personalized=personalized,
        verp=personalized,
        now=ctx.now,
    )
    secret = ctx.settings.site.secret.get()
    total = 0
    for batch in roster.iter_receiving_members(ctx.session, mlist.id, batch=BATCH):
        specs = [
            RecipientSpec(
                address,
                member_id,
                unsubscribe_token(secret, member_id, mlist.name, nonce) if personalized else "",
            )
            for member_id, address, nonce in batch
        ]
        outbox.add_recipients(ctx.session, job, specs, ctx.now)
        total += len(specs)
    post.recipient_count = total
    return job


def accept_post(ctx: Context, mlist: MailingList, post: Post) -> OutboxJob:
    """Archive the post (status accepted) and queue it for every receiving member.

    The rules' accept and a moderator's approval both end here, so an approved
    post goes out exactly as an accepted one.
    """
    post.status = PostStatus.ACCEPTED
    if post.decided_at is None:
        post.decided_at = ctx.now
    archive_index.add_post(ctx.session, post)
    job = start_fanout(ctx, mlist, post)
    webhook_events.queue_event(
        ctx.session,
        webhook_events.POST_ACCEPTED,
        mlist.name,
        {"post": post.id, "sender": post.sender, "subject": post.subject},
        ctx.now,
    )
    return job
