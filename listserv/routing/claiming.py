# SPDX-License-Identifier: Apache-2.0
"""Claiming inbound messages: leases, as the delivery workers lease outbox rows.

A `received` row whose lease is free (never taken, or run out) is leased by one
worker with one UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED])
RETURNING; on PostgreSQL several hosts claim side by side and never take the same
row. The lease is short and renewed by the worker's heartbeat while it holds the
row; the transaction that processes a row takes it only if the lease is still its
own, so a worker that lost its lease does nothing with it. A restarted worker
takes its own leases back at once (its name is its host and var dir).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.orm import Session

from listserv.leasing import HeldLease, leases_of_others
from listserv.models import InboundMessage, InboundStatus

INBOUND = cast(Table, InboundMessage.__table__)


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def claim_inbound(
    session: Session,
    worker_id: str,
    *,
    limit: int,
    lease: timedelta,
    now: datetime,
    ids: list[int] | None = None,
) -> list[int]:
    """Lease up to `limit` waiting messages, oldest first; their ids."""
    free = or_(INBOUND.c.lease_until.is_(None), INBOUND.c.lease_until < now)
    waiting = (
        select(INBOUND.c.id)
        .where(INBOUND.c.status == InboundStatus.RECEIVED, free)
        .order_by(INBOUND.c.id)
        .limit(limit)
    )
    if ids is not None:
        waiting = waiting.where(INBOUND.c.id.in_(ids))
    if _postgresql(session):
        waiting = waiting.with_for_update(skip_locked=True)
    statement = (
        update(INBOUND)
        .where(INBOUND.c.id.in_(waiting.scalar_subquery()))
        .values(lease_owner=worker_id, lease_until=now + lease)
        .returning(INBOUND.c.id)
    )
    return sorted(session.scalars(statement))


def renew_inbound(session: Session, worker_id: str, until: datetime) -> int:
    """The heartbeat: extend every lease this worker holds on waiting messages.

    Rows its own processing transaction has locked are skipped (that lock already
    keeps every other worker off them), so the heartbeat never waits on it.
    """
    mine = (INBOUND.c.status == InboundStatus.RECEIVED, INBOUND.c.lease_owner == worker_id)
    statement = update(INBOUND).where(*mine)
    if _postgresql(session):
        unlocked = select(INBOUND.c.id).where(*mine).with_for_update(skip_locked=True)
        statement = statement.where(INBOUND.c.id.in_(unlocked.scalar_subquery()))
    result = session.execute(statement.values(lease_until=until))
    return int(getattr(result, "rowcount", 0) or 0)


def take_back_inbound(session: Session, worker_id: str, now: datetime) -> int:
    """Make this worker's leases free at once (at start after a crash, and at stop)."""
    result = session.execute(
        update(INBOUND)
        .where(INBOUND.c.status == InboundStatus.RECEIVED, INBOUND.c.lease_owner == worker_id)
        .values(lease_until=now - timedelta(seconds=1))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def release_inbound(session: Session, ids: list[int]) -> None:
    """Free leases a batch did not get to, so they need not wait for the lease to run out."""
    if ids:
        session.execute(
            update(INBOUND).where(INBOUND.c.id.in_(ids)).values(lease_owner="", lease_until=None)
        )


def inbound_held_by_others(session: Session, worker_id: str, now: datetime) -> list[HeldLease]:
    waiting = INBOUND.c.status == InboundStatus.RECEIVED
    return leases_of_others(session, INBOUND, waiting, worker_id, now, "inbound messages")
