# SPDX-License-Identifier: Apache-2.0
"""Held posts: a moderator approves, rejects or discards one.

Whatever the channel — a reply to the hold notice, `APPROVE 12` by mail,
`listserv held approve`, the console, the API — the decision is one of these
acts: it checks the actor may moderate the list, settles the post with the
first-decision-wins update (`posting.moderation.settle`), closes the notice's
reply token, sends what the decision sends (the post to the members, or the
poster's notice) and audits it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from listserv import audit, notices
from listserv.actors import Actor
from listserv.acts.errors import Conflict, NotFound
from listserv.acts.permissions import Need, require
from listserv.context import Context
from listserv.models import MailingList, Post, PostStatus
from listserv.posting import fanout, moderation

T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    """A held post decided: its new status and the sentence that reports it."""

    post: Post
    status: PostStatus
    text: str
    poster_told: bool = False


def find_post(ctx: Context, mlist: MailingList, post_id: int) -> Post:
    post = ctx.session.get(Post, post_id)
    if post is None or post.list_id != mlist.id:
        raise NotFound(f"There is no post {post_id} on {mlist.display_name}.", field="id")
    return post


def _settle(ctx: Context, actor: Actor, mlist: MailingList, post: Post, status: PostStatus) -> None:
    require(ctx.session, actor, mlist, Need.MODERATE)
    if not moderation.settle(ctx, post, status, actor.address):
        by = post.decided_by or "another moderator"
        raise Conflict(f"Post {post.id} was already handled by {by}.", code="already-handled")


def _record(
    ctx: Context, actor: Actor, mlist: MailingList, post: Post, action: str, **detail: object
) -> None:
    audit.record_act(
        ctx.session,
        actor,
        action,
        list_name=mlist.name,
        target=f"post:{post.id}",
        source=ctx.source,
        detail={"post": post.id, "sender": post.sender, **detail},
        at=ctx.now,
    )


def approve_post(ctx: Context, actor: Actor, mlist: MailingList, post_id: int) -> Decision:
    """Approve a held post: archived and sent to the members as if accepted."""
    post = find_post(ctx, mlist, post_id)
    _settle(ctx, actor, mlist, post, PostStatus.ACCEPTED)
    job = fanout.accept_post(ctx, mlist, post)
    moderation.close_hold_request(ctx, post, actor.address)
    _record(ctx, actor, mlist, post, "post-approved", job=job.id)
    return Decision(
        post,
        PostStatus.ACCEPTED,
        f"Post {post.id} approved; it goes to {post.recipient_count} member(s) of "
        f"{mlist.display_name}.",
    )


def reject_post(
    ctx: Context, actor: Actor, mlist: MailingList, post_id: int, *, reason: str = ""
) -> Decision:
    """Reject a held post; the poster is told, with the moderator's reason if given."""
    post = find_post(ctx, mlist, post_id)
    _settle(ctx, actor, mlist, post, PostStatus.REJECTED)
    reason = " ".join(reason.split())
    said = f"Rejected by a moderator: {reason}" if reason else "Rejected by a moderator."
    post.reason = "\n".join(filter(None, [post.reason, said]))
    moderation.close_hold_request(ctx, post, actor.address, reason)
    told = moderation.may_notify_poster(ctx, post.sender)
    if told:
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
    _record(ctx, actor, mlist, post, "post-rejected", reason=reason)
    suffix = f"; {post.sender} was told" if told else ""
    return Decision(post, PostStatus.REJECTED, f"Post {post.id} rejected{suffix}.", told)


def discard_post(ctx: Context, actor: Actor, mlist: MailingList, post_id: int) -> Decision:
    """Discard a held post: nobody is told; the post stays on record as discarded."""
    post = find_post(ctx, mlist, post_id)
    _settle(ctx, actor, mlist, post, PostStatus.DISCARDED)
    post.reason = "\n".join(filter(None, [post.reason, "Discarded by a moderator."]))
    moderation.close_hold_request(ctx, post, actor.address)
    _record(ctx, actor, mlist, post, "post-discarded")
    return Decision(post, PostStatus.DISCARDED, f"Post {post.id} discarded.")


class Ruling(enum.StrEnum):
    """What a moderator may say of a held post or a waiting request."""

    APPROVE = "approve"
    REJECT = "reject"
    DISCARD = "discard"

    def carry_out(
        self, *, approve: Callable[[], T], reject: Callable[[], T], discard: Callable[[], T]
    ) -> T:
        """Run the act this ruling names: posts and requests read the three words alike."""
        return {Ruling.APPROVE: approve, Ruling.REJECT: reject, Ruling.DISCARD: discard}[self]()


def decide_post(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    post_id: int,
    ruling: Ruling,
    *,
    reason: str = "",
) -> Decision:
    """The one of the three a moderator chose, for channels that read the word (replies, commands)."""
    return ruling.carry_out(
        approve=lambda: approve_post(ctx, actor, mlist, post_id),
        reject=lambda: reject_post(ctx, actor, mlist, post_id, reason=reason),
        discard=lambda: discard_post(ctx, actor, mlist, post_id),
    )
