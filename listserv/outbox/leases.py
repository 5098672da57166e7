# SPDX-License-Identifier: Apache-2.0
"""Claiming work: a delivery worker leases due recipients and batches, keeps its
leases while it sends, and a dead worker's leases come back.

A lease is the `active` state plus `lease_owner`/`lease_until`. A worker that dies
leaves `active` rows whose lease runs out; they are claimed again, so what was in
flight (handed to the relay but not yet recorded) may be sent twice, and nothing is
sent never. Leases are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
workers on several hosts share one job; SQLite has one worker.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from listserv.models import OutboxState, utcnow
from listserv.outbox.jobs import BULK_BATCH
from listserv.outbox.tables import BATCHES, OPEN, RECIPIENTS


@dataclass(slots=True)
class Leased:
    """One leased `outbox_recipients` row: what delivery needs to send it."""

    id: int
    job_id: int
    address: str
    member_id: int | None
    unsubscribe_token: str
    domain: str
    attempts: int


@dataclass(slots=True)
class LeasedBatch:
    """One leased `outbox_batches` row: (member id, address) pairs in domain order."""

    id: int
    job_id: int
    recipients: list[tuple[int | None, str]]
    attempts: int


@dataclass
class Claim:
    recipients: list[Leased] = field(default_factory=list)
    batches: list[LeasedBatch] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.recipients) + sum(len(b.recipients) for b in self.batches)


def claim(
    session: Session,
    worker_id: str,
    *,
    limit: int,
    lease: timedelta,
    now: datetime | None = None,
    batch_size: int = BULK_BATCH,
) -> Claim:
    """Lease up to about `limit` due recipients (batches count by their size).

    Expired leases first (a dead worker's rows), then queued and deferred rows in
    due order. Each step is one UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE
    SKIP LOCKED]) RETURNING: a few statements per claim of thousands of recipients.
    """
    now = now or utcnow()
    until = now + lease
    result = Claim()
    expired_rows = (
        RECIPIENTS.c.state == OutboxState.ACTIVE.value,
        RECIPIENTS.c.lease_until < now,
    )
    due_rows = (RECIPIENTS.c.state.in_(OPEN), RECIPIENTS.c.next_attempt_at <= now)
    expired_batches = (BATCHES.c.state == OutboxState.ACTIVE.value, BATCHES.c.lease_until < now)
    due_batches = (BATCHES.c.state.in_(OPEN), BATCHES.c.next_attempt_at <= now)
    # Single recipients (service mail, personalized posts) may take half the room
    # first, so a bulk job never holds up a confirmation; batches then take what is
    # left, and single recipients whatever the batches did not need.
    for table, due, share in (
        (RECIPIENTS, expired_rows, 2),
        (RECIPIENTS, due_rows, 2),
        (BATCHES, expired_batches, 1),
        (BATCHES, due_batches, 1),
        (RECIPIENTS, due_rows, 1),
    ):
        room = (limit - len(result)) // share
        if table is BATCHES:
            room = max(1, room // batch_size) if room > 0 else 0
        if room <= 0:
            continue
        rows = _claim_rows(session, table, due, room, worker_id, until)
        if table is BATCHES:
            result.batches.extend(
                LeasedBatch(r.id, r.job_id, [(m, a) for m, a in r.recipients], r.attempts)
                for r in rows
            )
        else:
            result.recipients.extend(Leased(*r) for r in rows)
    return result


def _claim_rows(
    session: Session, table: Any, due: tuple[Any, ...], n: int, worker_id: str, until: datetime
) -> Sequence[Any]:
    ids = select(table.c.id).where(*due).limit(n)
    if session.get_bind().dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    returned: tuple[Any, ...]
    if table is BATCHES:
        returned = (table.c.id, table.c.job_id, table.c.recipients, table.c.attempts)
    else:
        returned = (
            table.c.id,
            table.c.job_id,
            table.c.address,
            table.c.member_id,
            table.c.unsubscribe_token,
            table.c.domain,
            table.c.attempts,
        )
    statement = (
        update(table)
        .where(table.c.id.in_(ids.scalar_subquery()))
        .values(state=OutboxState.ACTIVE.value, lease_owner=worker_id, lease_until=until)
        .returning(*returned)
    )
    return session.execute(statement).all()


def renew(session: Session, worker_id: str, until: datetime) -> int:
    """Extend every lease this worker holds (a slow relay must not lose them)."""
    count = 0
    for table in (RECIPIENTS, BATCHES):
        result = session.execute(
            update(table)
            .where(table.c.state == OutboxState.ACTIVE.value, table.c.lease_owner == worker_id)
            .values(lease_until=until)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


def worker_name() -> str:
    """`host:pid:random`, so a lease says which process on which host holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def release_dead_leases(
    session: Session, now: datetime, alive: Callable[[int], bool] | None = None
) -> int:
    """Expire leases held by dead processes on this host, so a restart resumes at once.

    Only for SQLite, where the service is the one worker on one host: there a lease
    owner `host:pid:…` whose pid no longer runs is certainly dead. (On PostgreSQL
    hosts may share a name, so leases there simply run out.)
    """
    alive = alive or _pid_alive
    host = socket.gethostname()
    dead: list[str] = []
    for table in (RECIPIENTS, BATCHES):
        owners = session.scalars(
            select(table.c.lease_owner).where(table.c.state == OutboxState.ACTIVE.value).distinct()
        )
        for owner in owners:
            parts = owner.rsplit(":", 2)
            if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
                if not alive(int(parts[1])):
                    dead.append(owner)
    count = 0
    for table in (RECIPIENTS, BATCHES):
        if dead:
            result = session.execute(
                update(table)
                .where(table.c.state == OutboxState.ACTIVE.value, table.c.lease_owner.in_(dead))
                .values(lease_until=now - timedelta(seconds=1))
            )
            count += int(getattr(result, "rowcount", 0) or 0)
    return count


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
