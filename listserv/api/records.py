# SPDX-License-Identifier: Apache-2.0
"""What the service has kept: the archive, bounces, the audit log and the outbox.

All reading, all by keyset page. A token limited to some lists sees only
their rows of the audit log; the outbox is the site's, for site-admin tokens.
The archive's `q` is the archive search page's own query, in its syntax
(`listserv.archive.query`) and on its full-text index (FTS5 or tsvector), so
both find the same posts; the API pages them newest first by id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import defer

from listserv.acts.errors import NotFound
from listserv.acts.permissions import Need, require
from listserv.api import pagination
from listserv.api.lists import find_list
from listserv.api.problems import invalid
from listserv.api.spec import (
    INTEGER,
    STRING,
    TEXT_OR_NULL,
    TIMESTAMP,
    TIMESTAMP_OR_NULL,
    Call,
    Param,
    Reply,
    obj,
)
from listserv.archive import search
from listserv.archive.query import QueryError, parse_query
from listserv.message import parse_message, text_body_lines
from listserv.models import AuditEvent, BounceEvent, MailingList, OutboxJob, Post, PostStatus

ARCHIVED = obj(
    {
        "id": INTEGER,
        "sender": STRING,
        "sender_name": STRING,
        "subject": STRING,
        "message_id": STRING,
        "in_reply_to": STRING,
        "date": TIMESTAMP_OR_NULL,
        "received_at": TIMESTAMP,
    }
)
ARCHIVED_DETAIL = obj({**ARCHIVED["properties"], "size": INTEGER, "sha256": STRING, "text": STRING})
BOUNCE = obj(
    {
        "id": INTEGER,
        "address": STRING,
        "kind": STRING,
        "source": STRING,
        "status_code": STRING,
        "diagnostic": STRING,
        "at": TIMESTAMP,
    }
)
AUDIT = obj(
    {
        "id": INTEGER,
        "at": TIMESTAMP,
        "list": STRING,
        "actor": STRING,
        "action": STRING,
        "target": STRING,
        "channel": STRING,
        "auth": STRING,
        "source": STRING,
        "outcome": STRING,
        "detail": {"type": "object"},
    }
)
OUTBOX_JOB = obj(
    {
        "id": INTEGER,
        "kind": STRING,
        "list": TEXT_OR_NULL,
        "post": {"type": ["integer", "null"]},
        "recipients": INTEGER,
        "created_at": TIMESTAMP,
        "expires_at": TIMESTAMP,
        "completed_at": TIMESTAMP_OR_NULL,
    }
)
ARCHIVE_QUERY = (
    Param(
        "q",
        "query",
        {"type": "string", "maxLength": 500},
        'search as the archive\'s search page does: words and "phrases" in the subject, '
        'sender or body (all of them), a OR b, -word or -"phrase" to leave out, '
        "from:address or from:domain, since:2026-03 and until:2026-04-15; newest first",
    ),
    *pagination.PARAMS,
)
AUDIT_QUERY = (
    Param("list", "query", {"type": "string", "maxLength": 64}, "only this list"),
    Param("action", "query", {"type": "string", "maxLength": 64}, "only this action"),
    Param("since", "query", TIMESTAMP, "at or after"),
    Param("until", "query", TIMESTAMP, "before"),
    *pagination.PARAMS,
)


def _archived(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "sender": post.sender,
        "sender_name": post.sender_name,
        "subject": post.subject,
        "message_id": post.message_id,
        "in_reply_to": post.in_reply_to,
        "date": post.date,
        "received_at": post.received_at,
    }


def get_archive(call: Call) -> Reply:
    """Accepted posts, newest first; `q` searches as the archive's search page does."""
    mlist = find_list(call)
    limit = pagination.limit_of(dict(call.query))
    after = pagination.decode(call.query.get("cursor"), [int])
    before = after[0] if after is not None else None
    stmt = (
        select(Post)
        .options(defer(Post.raw))
        .where(Post.list_id == mlist.id, Post.status == PostStatus.ACCEPTED)
    )
    text = str(call.query.get("q", ""))
    if text.strip():
        try:
            query = parse_query(text)
        except QueryError as exc:
            raise invalid("q", str(exc)) from None
        ids = search.newest_matches(
            call.ctx.session, mlist.id, query, before=before, limit=limit + 1
        )
        stmt = stmt.where(Post.id.in_(ids))
    elif before is not None:
        stmt = stmt.where(Post.id < before)
    rows = list(call.ctx.session.scalars(stmt.order_by(Post.id.desc()).limit(limit + 1)))
    return Reply(pagination.page(rows, limit, lambda p: [p.id], _archived))


def get_archived_post(call: Call) -> Reply:
    """One archived post: metadata and text."""
    mlist = find_list(call)
    post = call.ctx.session.get(Post, int(call.path["id"]))
    if post is None or post.list_id != mlist.id or post.status != PostStatus.ACCEPTED:
        raise NotFound(f"There is no archived post {call.path['id']} on {mlist.display_name}.")
    lines = text_body_lines(parse_message(post.raw), limit=500)
    return Reply(
        {**_archived(post), "size": len(post.raw), "sha256": post.sha256, "text": "\n".join(lines)}
    )


def _bounce(event: BounceEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "address": event.address,
        "kind": event.kind,
        "source": event.source,
        "status_code": event.status_code,
        "diagnostic": event.diagnostic,
        "at": event.at,
    }


def get_bounces(call: Call) -> Reply:
    """Bounces recorded for the list's members, newest first."""
    mlist = find_list(call)
    limit = pagination.limit_of(dict(call.query))
    after = pagination.decode(call.query.get("cursor"), [int])
    stmt = select(BounceEvent).where(BounceEvent.list_id == mlist.id)
    if after is not None:
        stmt = stmt.where(BounceEvent.id < after[0])
    rows = list(call.ctx.session.scalars(stmt.order_by(BounceEvent.id.desc()).limit(limit + 1)))
    return Reply(pagination.page(rows, limit, lambda e: [e.id], _bounce))


def _audit(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "list": event.list_name,
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "channel": event.channel.value,
        "auth": event.auth,
        "source": event.source,
        "outcome": event.outcome,
        "detail": event.detail or {},
    }


def get_audit(call: Call) -> Reply:
    """The audit log, oldest first; a token limited to lists sees only theirs."""
    query = dict(call.query)
    limit = pagination.limit_of(query)
    after = pagination.decode(query.get("cursor"), [int])
    stmt = select(AuditEvent)
    scope = call.actor.scope
    if scope is not None:
        if scope.lists is not None:
            stmt = stmt.where(AuditEvent.list_name.in_(sorted(scope.lists)))
        else:
            stmt = stmt.where(AuditEvent.list_name != "")
    if "list" in query:
        mlist = call.ctx.session.scalar(
            select(MailingList).where(MailingList.name == str(query["list"]).lower())
        )
        if mlist is None:
            raise NotFound(f"There is no list named {query['list']} here.", field="list")
        require(call.ctx.session, call.actor, mlist, Need.READ)
        stmt = stmt.where(AuditEvent.list_name == str(query["list"]).lower())
    if "action" in query:
        stmt = stmt.where(AuditEvent.action == query["action"])
    if "since" in query:
        stmt = stmt.where(AuditEvent.at >= query["since"])
    if "until" in query:
        stmt = stmt.where(AuditEvent.at < query["until"])
    if after is not None:
        stmt = stmt.where(AuditEvent.id > after[0])
    rows = list(call.ctx.session.scalars(stmt.order_by(AuditEvent.id).limit(limit + 1)))
    return Reply(pagination.page(rows, limit, lambda e: [e.id], _audit))


def get_outbox(call: Call) -> Reply:
    """Outgoing messages, newest first (site-admin tokens)."""
    require(call.ctx.session, call.actor, None, Need.ADMINISTER)
    limit = pagination.limit_of(dict(call.query))
    after = pagination.decode(call.query.get("cursor"), [int])
    stmt = (
        select(OutboxJob, MailingList.name)
        .options(defer(OutboxJob.raw))
        .outerjoin(MailingList, MailingList.id == OutboxJob.list_id)
    )
    if after is not None:
        stmt = stmt.where(OutboxJob.id < after[0])
    rows = list(call.ctx.session.execute(stmt.order_by(OutboxJob.id.desc()).limit(limit + 1)))
    return Reply(
        pagination.page(
            rows,
            limit,
            lambda r: [r[0].id],
            lambda r: {
                "id": r[0].id,
                "kind": r[0].kind,
                "list": r[1],
                "post": r[0].post_id,
                "recipients": r[0].recipient_count,
                "created_at": r[0].created_at,
                "expires_at": r[0].expires_at,
                "completed_at": r[0].completed_at,
            },
        )
    )
