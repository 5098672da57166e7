# SPDX-License-Identifier: Apache-2.0
"""The audit log: one row per change or refusal, never deleted by the service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from listserv.actors import Actor
from listserv.models import AuditEvent, utcnow
from listserv.webhooks import events as webhook_events


def record(
    session: Session,
    action: str,
    *,
    channel: str,
    list_name: str = "",
    actor: str = "",
    target: str = "",
    source: str = "",
    outcome: str = "ok",
    auth: str = "",
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Write the row now, in the caller's transaction (a Core insert: every act writes one,
    and an ORM object flushed for it would cost a join request a good part of its time)."""
    values: dict[str, Any] = {
        "at": at or utcnow(),
        "action": action,
        "channel": channel,
        "list_name": list_name,
        "actor": actor[:320],
        "target": target[:998],
        "source": source[:998],
        "outcome": outcome,
        "auth": auth,
        "detail": detail or {},
    }
    session.connection().execute(_INSERT, values)
    # An audit row that is also a webhook event is queued with it (webhooks/events.py).
    webhook_events.queue_from_audit(session, AuditEvent(**values))


_INSERT = insert(cast(Table, AuditEvent.__table__))


def record_act(
    session: Session,
    actor: Actor,
    action: str,
    *,
    at: datetime,
    source: str = "",
    list_name: str = "",
    target: str = "",
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """The audit row of an act: who, through which channel and how proved, come from the actor."""
    record(
        session,
        action,
        channel=actor.channel,
        list_name=list_name,
        actor=actor.address,
        target=target,
        source=source,
        outcome=outcome,
        auth=actor.auth,
        detail=detail,
        at=at,
    )


def query(
    session: Session,
    *,
    list_name: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> Sequence[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if list_name:
        stmt = stmt.where(AuditEvent.list_name == list_name.lower())
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor.lower())
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    if until:
        stmt = stmt.where(AuditEvent.at < until)
    return session.scalars(stmt.limit(limit)).all()
