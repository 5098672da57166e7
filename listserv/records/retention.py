# SPDX-License-Identifier: Apache-2.0
"""Retention and legal hold: the only paths by which list records are deleted.

A list keeps its posts (accepted, held, rejected and discarded alike) for
`retention_days` (0: forever); `purge_expired` deletes older ones, with the
inbound copy of the same message and finished outbox jobs that carried it,
so the content is really gone. A legal hold on a list blocks every deletion
— retention, `lists delete`, an owner deleting posts — until it is lifted:
each path here calls `check_no_hold` first, and other modules that delete
posts or lists must come through here.

Every deletion writes an audit record (a disposition log: the ids,
Message-IDs and SHA-256 of what went); `audit_events` is never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from listserv import audit
from listserv.actors import Actor, system_actor
from listserv.acts.errors import Conflict
from listserv.archive import index as archive_index
from listserv.context import Context
from listserv.models import (
    InboundMessage,
    MailingList,
    Member,
    MembershipEvent,
    OutboxJob,
    Post,
    Role,
)

#: Posts named in one audit record of a purge (a long purge writes several).
AUDIT_CHUNK = 1000
DELETE_CHUNK = 500

#: Who the periodic purge is audited as.
SYSTEM = system_actor()


class LegalHoldError(Conflict):
    """A deletion refused because the list is under legal hold."""


def check_no_hold(mlist: MailingList, what: str) -> None:
    if mlist.legal_hold:
        raise LegalHoldError(
            f"{mlist.display_name} is under legal hold: {what} is not allowed until "
            f"the hold is lifted (listserv lists set {mlist.name} legal_hold=false)",
            code="legal-hold",
        )


@dataclass
class PurgeResult:
    list_name: str
    cutoff: datetime | None
    posts: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    held: bool = False  # skipped: under legal hold

    def as_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_name,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "posts": self.posts,
            "by_status": self.by_status,
            "legal_hold": self.held,
        }


def cutoff_for(mlist: MailingList, now: datetime) -> datetime | None:
    """Posts received before this moment are past retention (None: keep forever)."""
    if mlist.retention_days <= 0:
        return None
    return now - timedelta(days=mlist.retention_days)


def _disposition(posts: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "status": p.status,
            "message_id": p.message_id,
            "sha256": p.sha256,
            "received": p.received_at.isoformat(),
        }
        for p in posts
    ]


def _delete_posts(session: Session, post_ids: Sequence[int]) -> None:
    """Delete posts with their archive entries, inbound copies and the jobs that sent them."""
    for start in range(0, len(post_ids), DELETE_CHUNK):
        ids = list(post_ids[start : start + DELETE_CHUNK])
        inbound_ids = [
            i
            for i in session.scalars(select(Post.inbound_id).where(Post.id.in_(ids)))
            if i is not None
        ]
        # The archive's entries first: the search index leaves in this transaction.
        archive_index.remove_posts(session, ids)
        session.execute(
            delete(OutboxJob).where(OutboxJob.post_id.in_(ids), OutboxJob.completed_at.is_not(None))
        )
        session.execute(delete(Post).where(Post.id.in_(ids)))
        if inbound_ids:
            session.execute(delete(InboundMessage).where(InboundMessage.id.in_(inbound_ids)))


def _record_disposition(
    session: Session,
    action: str,
    mlist: MailingList,
    posts: Sequence[Any],
    *,
    actor: Actor,
    source: str,
    now: datetime,
    extra: dict[str, Any],
) -> None:
    for start in range(0, max(len(posts), 1), AUDIT_CHUNK):
        part = posts[start : start + AUDIT_CHUNK]
        audit.record_act(
            session,
            actor,
            action,
            list_name=mlist.name,
            target=mlist.name,
            source=source,
            detail={**extra, "count": len(posts), "posts": _disposition(part)},
            at=now,
        )


def purge_list(
    session: Session,
    mlist: MailingList,
    now: datetime,
    *,
    actor: Actor = SYSTEM,
    source: str = "retention",
    dry_run: bool = False,
) -> PurgeResult:
    """Delete one list's posts older than its retention period (all statuses)."""
    cutoff = cutoff_for(mlist, now)
    result = PurgeResult(mlist.name, cutoff)
    if cutoff is None:
        return result
    if mlist.legal_hold:
        result.held = True
        return result
    posts = session.execute(
        select(Post.id, Post.status, Post.message_id, Post.sha256, Post.received_at)
        .where(Post.list_id == mlist.id, Post.received_at < cutoff)
        .order_by(Post.id)
    ).all()
    result.posts = len(posts)
    for post in posts:
        result.by_status[post.status] = result.by_status.get(post.status, 0) + 1
    if dry_run or not posts:
        return result
    _delete_posts(session, [p.id for p in posts])
    _record_disposition(
        session,
        "archive-purge",
        mlist,
        posts,
        actor=actor,
        source=source,
        now=now,
        extra={
            "cutoff": cutoff.isoformat(),
            "retention_days": mlist.retention_days,
            "by_status": result.by_status,
        },
    )
    session.flush()
    return result


def purge_expired(
    session: Session,
    now: datetime,
    *,
    lists: Sequence[MailingList] | None = None,
    actor: Actor = SYSTEM,
    dry_run: bool = False,
) -> list[PurgeResult]:
    """Apply retention to the given lists (default: every list)."""
    targets = (
        lists
        if lists is not None
        else session.scalars(select(MailingList).order_by(MailingList.name)).all()
    )
    return [purge_list(session, mlist, now, actor=actor, dry_run=dry_run) for mlist in targets]


def apply_retention(ctx: Context) -> int:
    """The periodic job: posts deleted under every list's retention period."""
    return sum(r.posts for r in purge_expired(ctx.session, ctx.now))


def delete_posts(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    post_ids: Sequence[int],
    *,
    reason: str = "",
) -> int:
    """An owner deleting posts from the archive (refused under legal hold); audited."""
    check_no_hold(mlist, "deleting posts")
    posts = ctx.session.execute(
        select(Post.id, Post.status, Post.message_id, Post.sha256, Post.received_at)
        .where(Post.list_id == mlist.id, Post.id.in_(list(post_ids)))
        .order_by(Post.id)
    ).all()
    if not posts:
        return 0
    _delete_posts(ctx.session, [p.id for p in posts])
    _record_disposition(
        ctx.session,
        "post-delete",
        mlist,
        posts,
        actor=actor,
        source=ctx.source,
        now=ctx.now,
        extra={"reason": reason},
    )
    ctx.session.flush()
    return len(posts)


def list_contents(session: Session, mlist: MailingList) -> dict[str, int]:
    """What deleting a list would destroy, for the confirmation and the audit record."""
    posts = dict(
        session.execute(
            select(Post.status, func.count()).where(Post.list_id == mlist.id).group_by(Post.status)
        ).all()
    )
    roles = dict(
        session.execute(
            select(Member.role, func.count())
            .where(Member.list_id == mlist.id)
            .group_by(Member.role)
        ).all()
    )
    events = session.scalar(select(func.count()).where(MembershipEvent.list_id == mlist.id))
    return {
        "members": int(roles.get(Role.MEMBER, 0)),
        "owners": int(roles.get(Role.OWNER, 0)),
        "moderators": int(roles.get(Role.MODERATOR, 0)),
        "posts": int(sum(posts.values())),
        **{f"posts_{status}": int(n) for status, n in posts.items()},
        "history_events": int(events or 0),
    }


def delete_list(ctx: Context, actor: Actor, mlist: MailingList) -> dict[str, int]:
    """Delete a list with its roster, history and archive (refused under legal hold).

    The database cascades to members, history, posts, requests and bans; the
    audit log keeps a record naming the list and what went with it.
    """
    check_no_hold(mlist, "deleting the list")
    contents = list_contents(ctx.session, mlist)
    post_ids = list(ctx.session.scalars(select(Post.id).where(Post.list_id == mlist.id)))
    _delete_posts(ctx.session, post_ids)
    audit.record_act(
        ctx.session,
        actor,
        "list-delete",
        list_name=mlist.name,
        target=mlist.name,
        source=ctx.source,
        detail={
            "before": {
                "name": mlist.name,
                "display_name": mlist.display_name,
                "domain": mlist.domain,
                "created_at": mlist.created_at.isoformat(),
            },
            "contents": contents,
        },
        at=ctx.now,
    )
    ctx.session.execute(delete(MailingList).where(MailingList.id == mlist.id))
    ctx.session.expunge(mlist)
    return contents
