# SPDX-License-Identifier: Apache-2.0
"""What waits for a moderator: subscription requests and held posts, and deciding them.

Deciding is the same act a reply to the notice, `APPROVE 12` by mail or
`listserv held approve` calls; the first decision wins, and a later one is a
409 naming who decided. A held post is shown as metadata and its text, and
`…/raw` gives the original bytes as received (`message/rfc822`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import defer

from listserv.acts import held, requests
from listserv.acts.errors import NotFound
from listserv.acts.permissions import Need
from listserv.api import pagination
from listserv.api.lists import find_list
from listserv.api.spec import (
    INTEGER,
    STRING,
    TIMESTAMP,
    TIMESTAMP_OR_NULL,
    Call,
    Param,
    Reply,
    Schema,
    obj,
)
from listserv.message import parse_message, text_body_lines
from listserv.models import PendingRequest, Post, PostStatus, RequestKind, RequestStatus

ID_PARAM = Param("id", "path", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "", True)
REQUEST_STATUSES = [s.value for s in RequestStatus]
POST_STATUSES = [s.value for s in PostStatus]

REQUEST = obj(
    {
        "id": INTEGER,
        "address": STRING,
        "name": STRING,
        "title": STRING,
        "status": {"type": "string", "enum": REQUEST_STATUSES},
        "created_at": TIMESTAMP,
        "resolved_at": TIMESTAMP_OR_NULL,
        "resolved_by": STRING,
        "reason": STRING,
    }
)
HELD = obj(
    {
        "id": INTEGER,
        "status": {"type": "string", "enum": POST_STATUSES},
        "sender": STRING,
        "sender_name": STRING,
        "subject": STRING,
        "message_id": STRING,
        "received_at": TIMESTAMP,
        "reasons": {"type": "array", "items": STRING},
        "decided_by": STRING,
        "decided_at": TIMESTAMP_OR_NULL,
    }
)
HELD_DETAIL = obj({**HELD["properties"], "size": INTEGER, "text": STRING})
DECISION = obj({"id": INTEGER, "status": STRING, "detail": STRING})
REASON_BODY: Schema = obj({"reason": {"type": "string", "maxLength": 2000}}, required=())
BODY_LINES = 500


def _request_view(request: PendingRequest) -> dict[str, Any]:
    payload = request.payload or {}
    return {
        "id": request.id,
        "address": request.address,
        "name": str(payload.get("name", "")),
        "title": str(payload.get("title", "")),
        "status": request.status.value,
        "created_at": request.created_at,
        "resolved_at": request.resolved_at,
        "resolved_by": request.resolved_by,
        "reason": request.reason,
    }


def get_requests(call: Call) -> Reply:
    """Subscription requests waiting for an owner (or another `status`), oldest first."""
    mlist = find_list(call, Need.MODERATE)
    limit = pagination.limit_of(dict(call.query))
    after = pagination.decode(call.query.get("cursor"), [int])
    status = RequestStatus(call.query.get("status", RequestStatus.AWAITING_APPROVAL.value))
    stmt = select(PendingRequest).where(
        PendingRequest.list_id == mlist.id,
        PendingRequest.kind == RequestKind.SUBSCRIBE,
        PendingRequest.status == status,
    )
    if after is not None:
        stmt = stmt.where(PendingRequest.id > after[0])
    rows = list(call.ctx.session.scalars(stmt.order_by(PendingRequest.id).limit(limit + 1)))
    return Reply(pagination.page(rows, limit, lambda r: [r.id], _request_view))


def _request_id(call: Call) -> int:
    return int(call.path["id"])


def approve_request(call: Call) -> Reply:
    """The address joins and is welcomed."""
    mlist = find_list(call)
    decision = requests.approve_request(call.ctx, call.actor, mlist, _request_id(call))
    return Reply({"id": decision.request.id, "status": decision.status, "detail": decision.text})


def reject_request(call: Call) -> Reply:
    """The request is turned down; the requester is told, with the reason if given."""
    mlist = find_list(call)
    reason = str((call.body or {}).get("reason", ""))
    decision = requests.reject_request(
        call.ctx, call.actor, mlist, _request_id(call), reason=reason
    )
    return Reply({"id": decision.request.id, "status": decision.status, "detail": decision.text})


def _held_view(post: Post) -> dict[str, Any]:
    return {
        "id": post.id,
        "status": post.status.value,
        "sender": post.sender,
        "sender_name": post.sender_name,
        "subject": post.subject,
        "message_id": post.message_id,
        "received_at": post.received_at,
        "reasons": post.reason.splitlines(),
        "decided_by": post.decided_by,
        "decided_at": post.decided_at,
    }


def get_held(call: Call) -> Reply:
    """Posts held for a moderator, oldest first."""
    mlist = find_list(call, Need.MODERATE)
    limit = pagination.limit_of(dict(call.query))
    after = pagination.decode(call.query.get("cursor"), [int])
    stmt = (
        select(Post)
        .options(defer(Post.raw))
        .where(Post.list_id == mlist.id, Post.status == PostStatus.HELD)
    )
    if after is not None:
        stmt = stmt.where(Post.id > after[0])
    rows = list(call.ctx.session.scalars(stmt.order_by(Post.id).limit(limit + 1)))
    return Reply(pagination.page(rows, limit, lambda p: [p.id], _held_view))


def _post(call: Call) -> Post:
    mlist = find_list(call, Need.MODERATE)
    return held.find_post(call.ctx, mlist, int(call.path["id"]))


def get_held_post(call: Call) -> Reply:
    """A post's metadata and its text (the first text part, at most 500 lines)."""
    post = _post(call)
    lines = text_body_lines(parse_message(post.raw), limit=BODY_LINES)
    return Reply({**_held_view(post), "size": len(post.raw), "text": "\n".join(lines)})


def get_held_raw(call: Call) -> Reply:
    """The post's original bytes, as received."""
    post = _post(call)
    if not post.raw:
        raise NotFound(f"Post {post.id} has no stored message.", field="id")
    return Reply(raw=post.raw, media_type="message/rfc822")


def _decided(decision: held.Decision) -> Reply:
    return Reply({"id": decision.post.id, "status": decision.status, "detail": decision.text})


def approve_post(call: Call) -> Reply:
    """Approve: archived and sent to the members."""
    mlist = find_list(call)
    return _decided(held.approve_post(call.ctx, call.actor, mlist, int(call.path["id"])))


def reject_post(call: Call) -> Reply:
    """Reject: the poster is told, with the reason if given."""
    mlist = find_list(call)
    reason = str((call.body or {}).get("reason", ""))
    return _decided(
        held.reject_post(call.ctx, call.actor, mlist, int(call.path["id"]), reason=reason)
    )


def discard_post(call: Call) -> Reply:
    """Discard: nobody is told; the post stays on record as discarded."""
    mlist = find_list(call)
    return _decided(held.discard_post(call.ctx, call.actor, mlist, int(call.path["id"])))
