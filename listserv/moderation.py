# SPDX-License-Identifier: Apache-2.0
"""Held posts: holding one for the moderators, and their decision on it.

Input: a `Post` the rules held, or a moderator's decision on one (from the CLI, and
later from a reply to the hold notice or the web).
Output: the post's new status with who decided and when, a `moderate-post`
`PendingRequest` (its token is the confirm address in the moderators' notice),
the notices to moderators and poster, and an audit row per step. An approved
post continues down the pipeline exactly as an accepted one (`posting.accept_post`).

The first decision wins: the status change is a conditional UPDATE (`… WHERE status
= 'held'`), so two moderators acting at once — a reply and the CLI, or two hosts on
PostgreSQL — cannot both approve and send a post twice; the later one is told who
handled it. Trusts its callers to have checked that `actor` may moderate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import defer

from listserv import audit, notices, ratelimit, roster
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
from listserv.outcomes import Outcome
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
    audit.record(
        ctx.session,
        "post-held",
        channel=ctx.channel,
        list_name=mlist.name,
        actor=post.sender,
        target=f"post:{post.id}",
        source=ctx.source,
        outcome="held",
        detail={"post": post.id, "reasons": list(reasons), "request": request.id},
        at=ctx.now,
    )
    return request


def _already_handled(post: Post) -> Outcome:
    by = post.decided_by or "another moderator"
    return Outcome.refused(f"Post {post.id} was already handled by {by}.")


def _decide(ctx: Context, post: Post, status: PostStatus, actor: str) -> bool:
    """Move a held post to `status`, only if it is still held: the first decision wins."""
    result = ctx.session.execute(
        update(Post)
        .where(Post.id == post.id, Post.status == PostStatus.HELD)
        .values(status=status, decided_at=ctx.now, decided_by=actor[:320])
        .execution_options(synchronize_session=False)
    )
    ctx.session.refresh(post)
    return int(getattr(result, "rowcount", 0) or 0) == 1


def _resolve_request(ctx: Context, post: Post, actor: str, reason: str = "") -> None:
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


def _mlist(ctx: Context, post: Post) -> MailingList:
    mlist = ctx.session.get(MailingList, post.list_id)
    assert mlist is not None  # posts are deleted with their list
    return mlist


def _record(
    ctx: Context,
    mlist: MailingList,
    post: Post,
    action: str,
    actor: str,
    auth: str,
    **detail: object,
) -> None:
    audit.record(
        ctx.session,
        action,
        channel=ctx.channel,
        list_name=mlist.name,
        actor=actor,
        target=f"post:{post.id}",
        source=ctx.source,
        auth=auth,
        detail={"post": post.id, "sender": post.sender, **detail},
        at=ctx.now,
    )


def approve_post(ctx: Context, post: Post, *, actor: str, auth: str) -> Outcome:
    """Approve a held post: archived and sent to the members as if accepted."""
    from listserv.posting import accept_post

    if not _decide(ctx, post, PostStatus.ACCEPTED, actor):
        return _already_handled(post)
    mlist = _mlist(ctx, post)
    job = accept_post(ctx, mlist, post)
    _resolve_request(ctx, post, actor)
    _record(ctx, mlist, post, "post-approved", actor, auth, job=job.id)
    return Outcome.done(
        f"Post {post.id} approved; it goes to {post.recipient_count} member(s) of "
        f"{mlist.display_name}."
    )


def reject_post(ctx: Context, post: Post, *, actor: str, auth: str, reason: str = "") -> Outcome:
    """Reject a held post; the poster is told, with the moderator's reason if given."""
    if not _decide(ctx, post, PostStatus.REJECTED, actor):
        return _already_handled(post)
    mlist = _mlist(ctx, post)
    reason = " ".join(reason.split())
    post.reason = "\n".join(
        filter(
            None,
            [
                post.reason,
                f"Rejected by a moderator: {reason}" if reason else "Rejected by a moderator.",
            ],
        )
    )
    _resolve_request(ctx, post, actor, reason)
    notified = False
    if may_notify_poster(ctx, post.sender):
        notices.send_notice(
            ctx,
            "post_rejected.txt.j2",
            post.sender,
            mlist=mlist,
            in_reply_to=post.message_id,
            subject=post.subject,
            reasons=[reason] if reason else [],
            by_moderator=True,
            explain_membership=False,
        )
        notified = True
    _record(ctx, mlist, post, "post-rejected", actor, auth, reason=reason)
    told = f"; {post.sender} was told" if notified else ""
    return Outcome.done(f"Post {post.id} rejected{told}.")


def discard_post(ctx: Context, post: Post, *, actor: str, auth: str) -> Outcome:
    """Discard a held post: nobody is told; the post stays on record as discarded."""
    if not _decide(ctx, post, PostStatus.DISCARDED, actor):
        return _already_handled(post)
    mlist = _mlist(ctx, post)
    post.reason = "\n".join(filter(None, [post.reason, "Discarded by a moderator."]))
    _resolve_request(ctx, post, actor)
    _record(ctx, mlist, post, "post-discarded", actor, auth)
    return Outcome.done(f"Post {post.id} discarded.")


def held_posts(ctx: Context, mlist: MailingList) -> Sequence[Post]:
    """The posts awaiting a decision, oldest first."""
    return ctx.session.scalars(
        select(Post)
        .options(defer(Post.raw))
        .where(Post.list_id == mlist.id, Post.status == PostStatus.HELD)
        .order_by(Post.id)
    ).all()
