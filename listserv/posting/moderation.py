# SPDX-License-Identifier: Apache-2.0
"""Held posts: holding one for the moderators, and settling it when they decide.

Input: a `Post` the rules held. Output: the post held, a `moderate-post`
`PendingRequest` (its token is the confirm address in the moderators'
notice), the notices to moderators (coalesced per list by `staff_notices`)
and poster, and an audit row. The
moderators' decisions are acts (`acts/held.py`) built on `settle`.

The first decision wins: `settle` is a conditional UPDATE (`… WHERE status =
'held'`), so two moderators acting at once — a reply and the CLI, or two
hosts on PostgreSQL — cannot both approve and send a post twice; the later
one is told who handled it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import defer

from listserv import audit, notices, ratelimit, roster, staff_notices
from listserv.actors import Auth, email_actor
from listserv.context import Context
from listserv.message import parse_message, text_body_lines
from listserv.models import (
    MailingList,
    PendingRequest,
    Post,
    PostStatus,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.tokens import hash_token, new_token

#: How long the reply-to-approve address in a hold notice works (the CLI always does).
HOLD_EXPIRY = timedelta(days=14)
#: Lines of the held message quoted in the moderators' notice.
EXCERPT_LINES = 25


def moderators_of(ctx: Context, mlist: MailingList) -> list[str]:
    """Every owner and moderator address, once each; the postmaster if there are none."""
    seen: dict[str, str] = {}
    for role in (Role.OWNER, Role.MODERATOR):
        for member in roster.members(ctx.session, mlist, role):
            seen.setdefault(member.address_key, member.address)
    return list(seen.values()) or [ctx.settings.site.postmaster]


def may_notify_poster(ctx: Context, address: str) -> bool:
    """A budget for held/rejected notices to one address, so forged From lines
    cannot turn the list into a backscatter source."""
    if not address or any(c in address for c in "\r\n"):
        return False
    return ratelimit.allow(
        ctx.session,
        f"post-notice-to:{roster.address_key(address)}",
        ctx.settings.limits.requests_per_sender_per_hour,
        timedelta(hours=1),
        ctx.now,
    )


def _excerpt(post: Post) -> list[str]:
    lines = text_body_lines(parse_message(post.raw), limit=EXCERPT_LINES + 1)
    if len(lines) > EXCERPT_LINES:
        lines = [*lines[:EXCERPT_LINES], "[…]"]
    return lines


def hold_post(
    ctx: Context,
    mlist: MailingList,
    post: Post,
    reasons: Sequence[str],
    *,
    tell_poster: bool = True,
) -> PendingRequest:
    """Hold a post: a moderate-post request, the moderators' notice, the poster's notice."""
    post.status = PostStatus.HELD
    post.reason = "\n".join(reasons)
    post.decided_at = None
    post.decided_by = ""
    token = new_token()
    request = PendingRequest(
        list_id=mlist.id,
        kind=RequestKind.MODERATE_POST,
        status=RequestStatus.PENDING,
        address=post.sender,
        address_key=roster.address_key(post.sender) if post.sender else "",
        payload={"post_id": post.id},
        token_hash=hash_token(token),
        created_at=ctx.now,
        expires_at=ctx.now + HOLD_EXPIRY,
    )
    ctx.session.add(request)
    ctx.session.flush()
    confirm_address = mlist.address(f"-confirm+{token}")

    def tell_moderators() -> None:
        excerpt = _excerpt(post)
        for address in moderators_of(ctx, mlist):
            notices.send_notice(
                ctx,
                "held_notice.txt.j2",
                address,
                mlist=mlist,
                reply_to=confirm_address,
                post_id=post.id,
                sender=post.sender,
                sender_name=post.sender_name,
                subject=post.subject,
                size=len(post.raw),
                reasons=list(reasons),
                token=token,
                confirm_address=confirm_address,
                expiry_days=HOLD_EXPIRY.days,
                excerpt=excerpt,
            )

    # At most one notice per list per window; the rest go in the next summary.
    staff_notices.announce(ctx, mlist, request, tell_moderators)
    if tell_poster and may_notify_poster(ctx, post.sender):
        notices.send_notice(
            ctx,
            "post_held.txt.j2",
            post.sender,
            mlist=mlist,
            in_reply_to=post.message_id,
            subject=post.subject,
            reasons=list(reasons),
        )
    audit.record_act(
        ctx.session,
        email_actor(post.sender, Auth.RULES),
        "post-held",
        list_name=mlist.name,
        target=f"post:{post.id}",
        source=ctx.source,
        outcome="held",
        detail={"post": post.id, "reasons": list(reasons), "request": request.id},
        at=ctx.now,
    )
    return request


def settle(ctx: Context, post: Post, status: PostStatus, actor: str) -> bool:
    """Move a held post to `status`, only if it is still held: the first decision wins."""
    result = ctx.session.execute(
        update(Post)
        .where(Post.id == post.id, Post.status == PostStatus.HELD)
        .values(status=status, decided_at=ctx.now, decided_by=actor[:320])
        .execution_options(synchronize_session=False)
    )
    ctx.session.refresh(post)
    return int(getattr(result, "rowcount", 0) or 0) == 1


def close_hold_request(ctx: Context, post: Post, actor: str, reason: str = "") -> None:
    """Close the post's moderate-post request, so its reply token stops working."""
    open_requests = ctx.session.scalars(
        select(PendingRequest).where(
            PendingRequest.list_id == post.list_id,
            PendingRequest.kind == RequestKind.MODERATE_POST,
            PendingRequest.address_key == (roster.address_key(post.sender) if post.sender else ""),
            PendingRequest.status.in_(
                (RequestStatus.PENDING, RequestStatus.AWAITING_APPROVAL, RequestStatus.EXPIRED)
            ),
        )
    )
    for request in open_requests:
        if (request.payload or {}).get("post_id") == post.id:
            request.status = RequestStatus.DONE
            request.resolved_at = ctx.now
            request.resolved_by = actor[:320]
            request.reason = reason


def held_posts(ctx: Context, mlist: MailingList) -> Sequence[Post]:
    """The posts awaiting a decision, oldest first."""
    return ctx.session.scalars(
        select(Post)
        .options(defer(Post.raw))
        .where(Post.list_id == mlist.id, Post.status == PostStatus.HELD)
        .order_by(Post.id)
    ).all()
