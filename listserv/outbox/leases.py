# SPDX-License-Identifier: Apache-2.0
"""Claiming work: a delivery worker leases due recipients and batches, keeps its
leases while it sends, and a dead worker's leases come back.

A lease is the `active` state plus `lease_owner`/`lease_until`. A worker that dies
leaves `active` rows whose lease runs out; they are claimed again, so what was in
flight (handed to the relay but not yet recorded) may be sent twice, and nothing is
sent never. Leases are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
workers on several hosts share one job. A worker's name is its host and var dir
(`listserv.leasing`), so a restarted worker takes its own leases back at once
(`take_back`); another's come back when they run out. Taken-back rows stay leased
to this worker under `returned_owner` until its own claims send them: made due for
anyone, a second host could send them again into its own Maildir while the first
copies sit in ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from listserv.leasing import HeldLease, leases_of_others
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
    returned: int = 0  # rows and batches of these that a restart took back

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
    returned: bool = False,
) -> Claim:
    """Lease up to about `limit` due recipients (batches count by their size).

    With `returned`, rows this worker took back at start first (`Claim.returned`
    counts them); then expired leases (a dead worker's rows), then queued and
    deferred rows in due order. Each step is one UPDATE … WHERE id IN (SELECT …
    LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING: a few statements per claim of
    thousands of recipients.
    """
    now = now or utcnow()
    until = now + lease
    result = Claim()
    back = returned_owner(worker_id)
    returned_rows = (
        RECIPIENTS.c.state == OutboxState.ACTIVE.value,
        RECIPIENTS.c.lease_owner == back,
    )
    returned_batches = (
        BATCHES.c.state == OutboxState.ACTIVE.value,
        BATCHES.c.lease_owner == back,
    )
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
    steps: list[tuple[Any, tuple[Any, ...], int]] = []
    if returned:
        steps += [(RECIPIENTS, returned_rows, 1), (BATCHES, returned_batches, 1)]
    for table, due, share in (
        *steps,
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
        if due is returned_rows or due is returned_batches:
            result.returned += len(rows)
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


def returned_owner(worker_id: str) -> str:
    """The lease owner of rows a restarted worker took back and has not sent yet."""
    return f"{worker_id[:59]}/back"


def renew(session: Session, worker_id: str, until: datetime, *, with_returned: bool = True) -> int:
    """Extend every lease this worker holds (a slow relay must not lose them).

    With `with_returned=False` (handing leases back at a clean stop) the rows taken
    back at start and not yet sent keep their lease: they may be in our Maildir.
    """
    count = 0
    owners = (worker_id, returned_owner(worker_id)) if with_returned else (worker_id,)
    for table in (RECIPIENTS, BATCHES):
        result = session.execute(
            update(table)
            .where(table.c.state == OutboxState.ACTIVE.value, table.c.lease_owner.in_(owners))
            .values(lease_until=until)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


def take_back(session: Session, worker_id: str, now: datetime, lease: timedelta) -> int:
    """Mark every lease `worker_id` holds as ours to send first: a restarted worker's work.

    The identity (host and var dir) outlives the process, so what a killed worker
    had leased is ours again as soon as we start, on every database. The rows stay
    leased (to `returned_owner`, renewed with our own) and our next claims take them
    before anything else, so the copies a crash left written but unrecorded are sent
    again by this host, whose relay (the Maildir) knows them, and by no other.
    """
    count = 0
    owners = (worker_id, returned_owner(worker_id))  # also what an earlier restart took back
    for table in (RECIPIENTS, BATCHES):
        result = session.execute(
            update(table)
            .where(table.c.state == OutboxState.ACTIVE.value, table.c.lease_owner.in_(owners))
            .values(lease_owner=returned_owner(worker_id), lease_until=now + lease)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


def held_by_others(session: Session, worker_id: str, now: datetime) -> list[HeldLease]:
    """Recipients and batches another worker has leased, per owner."""
    held: list[HeldLease] = []
    mine = (worker_id, returned_owner(worker_id))
    for table, what in ((RECIPIENTS, "outbox recipients"), (BATCHES, "outbox batches")):
        active = table.c.state == OutboxState.ACTIVE.value
        held.extend(leases_of_others(session, table, active, mine, now, what))
    return held
