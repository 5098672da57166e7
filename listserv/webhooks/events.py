# SPDX-License-Identifier: Apache-2.0
"""The events other systems may hear of, and queueing them for each webhook that listens.

Most events are already an audit row — a member joining or leaving, a post
held, a member's delivery disabled for bouncing — so the audit writer hands
each new row to `queue_from_audit` and the mapping in `FROM_AUDIT` says which
rows are events. An accepted post and a subscription request waiting for an
owner have no audit row of their own; their acts call `queue_event`. A bulk
import writes its rows with executemany inserts, not one audit row at a time,
so it asks for its listeners once and hands each batch's events to
`queue_many`, which inserts their deliveries the same way. Either way the
delivery rows are added to the same session, so they commit or roll back
with the change.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from listserv.context import Context
from listserv.models import AuditEvent, MailingList, OutboxState, Webhook, WebhookDelivery

MEMBER_JOINED = "member.joined"
MEMBER_LEFT = "member.left"
POST_HELD = "post.held"
POST_ACCEPTED = "post.accepted"
REQUEST_CREATED = "request.created"
BOUNCE_DISABLED = "bounce.disabled"

EVENTS = (MEMBER_JOINED, MEMBER_LEFT, POST_HELD, POST_ACCEPTED, REQUEST_CREATED, BOUNCE_DISABLED)

#: How long a delivery is retried before it is given up as failed.
RETRY_FOR = timedelta(days=3)
#: How long settled deliveries stay for `GET /webhooks/{id}/deliveries`.
KEPT_FOR = timedelta(days=30)


def _joined(row: AuditEvent) -> tuple[str, dict[str, Any]] | None:
    after = dict(row.detail.get("after") or {})
    return MEMBER_JOINED, {"address": row.target, "name": after.get("name", "")}


def _left(row: AuditEvent) -> tuple[str, dict[str, Any]] | None:
    return MEMBER_LEFT, {"address": row.target, "reason": row.detail.get("reason", "")}


def _held(row: AuditEvent) -> tuple[str, dict[str, Any]] | None:
    return POST_HELD, {
        "post": row.detail.get("post"),
        "sender": row.actor,
        "reasons": list(row.detail.get("reasons") or []),
    }


def _changed(row: AuditEvent) -> tuple[str, dict[str, Any]] | None:
    before = row.detail.get("before") or {}
    after = row.detail.get("after") or {}
    status = after.get("delivery_status")
    if status == "disabled-bouncing" and before.get("delivery_status") != status:
        return BOUNCE_DISABLED, {"address": row.target}
    return None


#: Audit actions that may be events, and what each event says.
FROM_AUDIT: dict[str, Callable[[AuditEvent], tuple[str, dict[str, Any]] | None]] = {
    "member-add": _joined,
    "member-remove": _left,
    "post-held": _held,
    "member-change": _changed,
}


def queue_from_audit(session: Session, row: AuditEvent) -> int:
    """The event an audit row is, if any, queued for its listeners; how many were queued."""
    make = FROM_AUDIT.get(row.action)
    if make is None or not row.list_name or row.outcome not in ("ok", "held"):
        return 0
    made = make(row)
    if made is None:
        return 0
    event, data = made
    return queue_event(session, event, row.list_name, data, row.at)


def listeners(session: Session, event: str, list_name: str) -> list[Webhook]:
    """Webhooks on this list or on every list that asked for this event."""
    list_id = select(MailingList.id).where(MailingList.name == list_name).scalar_subquery()
    hooks = session.scalars(
        select(Webhook).where(or_(Webhook.list_id.is_(None), Webhook.list_id == list_id))
    )
    return [hook for hook in hooks if event in (hook.events or [])]


def _body(event_id: str, event: str, list_name: str, data: dict[str, Any], at: datetime) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "type": event,
            "created_at": at.isoformat().replace("+00:00", "Z"),
            "list": list_name,
            "data": data,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def queue_event(
    session: Session, event: str, list_name: str, data: dict[str, Any], at: datetime
) -> int:
    """One delivery row per listening webhook, in the caller's transaction."""
    hooks = listeners(session, event, list_name)
    if not hooks:
        return 0
    event_id = f"evt_{uuid.uuid4().hex}"
    body = _body(event_id, event, list_name, data, at)
    for hook in hooks:
        session.add(
            WebhookDelivery(
                webhook_id=hook.id,
                event=event,
                event_id=event_id,
                body=body,
                created_at=at,
                next_attempt_at=at,
                expires_at=at + RETRY_FOR,
            )
        )
    return len(hooks)


def queue_many(
    session: Session,
    hooks: Sequence[Webhook],
    event: str,
    list_name: str,
    items: Iterable[dict[str, Any]],
    at: datetime,
) -> int:
    """Many events of one kind for the given `listeners`, with one executemany insert.

    Each event gets its own id and body, exactly as `queue_event` would make
    it; only the way the rows reach the database differs. Returns how many
    deliveries were queued.
    """
    if not hooks:
        return 0
    rows: list[dict[str, Any]] = []
    for data in items:
        event_id = f"evt_{uuid.uuid4().hex}"
        body = _body(event_id, event, list_name, data, at)
        rows.extend(
            {
                "webhook_id": hook.id,
                "event": event,
                "event_id": event_id,
                "body": body,
                "created_at": at,
                "next_attempt_at": at,
                "expires_at": at + RETRY_FOR,
            }
            for hook in hooks
        )
    if rows:
        session.execute(insert(Webhook.metadata.tables[WebhookDelivery.__tablename__]), rows)
    return len(rows)


def prune_deliveries(ctx: Context) -> int:
    """Forget sent and failed deliveries after a month (a periodic job)."""
    result = ctx.session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.state.in_((OutboxState.SENT, OutboxState.FAILED)),
            WebhookDelivery.created_at < ctx.now - KEPT_FOR,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
