# SPDX-License-Identifier: Apache-2.0
"""The outbox: everything the service sends, one row per recipient.

Input is a finished message (service mail) or a post's shared decorated copy
plus its recipients; output is rows that delivery workers claim with a lease.
States follow Postfix: queued → active → sent | deferred (retried with
doubling backoff until the job's deadline) | failed. A worker that dies leaves
`active` rows whose lease runs out; they are claimed again, so at most the
transaction that was in flight is sent twice, and nothing is sent never.
On PostgreSQL claims use FOR UPDATE SKIP LOCKED so workers on several hosts
share one job.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from listserv.addresses import split_address
from listserv.models import OutboxJob, OutboxRecipient, OutboxState, utcnow

BACKOFF_START = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=2)


@dataclass(frozen=True)
class RecipientSpec:
    address: str
    member_id: int | None = None
    unsubscribe_token: str = ""


def enqueue(
    session: Session,
    *,
    mail_from: str,
    recipients: Iterable[str | RecipientSpec],
    raw: bytes,
    retry_for: timedelta,
    kind: str = "service",
    list_id: int | None = None,
    post_id: int | None = None,
    personalized: bool = False,
    verp: bool = False,
    now: datetime | None = None,
) -> OutboxJob:
    """Create a job and its recipients in the caller's transaction."""
    now = now or utcnow()
    job = OutboxJob(
        kind=kind,
        list_id=list_id,
        post_id=post_id,
        mail_from=mail_from,
        raw=raw,
        personalized=personalized,
        verp=verp,
        created_at=now,
        expires_at=now + retry_for,
    )
    session.add(job)
    session.flush()
    specs = [r if isinstance(r, RecipientSpec) else RecipientSpec(r) for r in recipients]
    add_recipients(session, job, specs, now)
    return job


def add_recipients(
    session: Session, job: OutboxJob, specs: Sequence[RecipientSpec], now: datetime
) -> None:
    if not specs:
        return
    session.execute(
        insert(OutboxRecipient),
        [
            {
                "job_id": job.id,
                "address": spec.address,
                "member_id": spec.member_id,
                "unsubscribe_token": spec.unsubscribe_token,
                "domain": split_address(spec.address)[1],
                "state": OutboxState.QUEUED,
                "next_attempt_at": now,
            }
            for spec in specs
        ],
    )
    job.recipient_count = (job.recipient_count or 0) + len(specs)


def claim(
    session: Session,
    worker_id: str,
    *,
    limit: int,
    lease: timedelta,
    now: datetime | None = None,
) -> list[OutboxRecipient]:
    """Lease up to `limit` due recipients to this worker, oldest first."""
    now = now or utcnow()
    due = or_(
        and_(
            OutboxRecipient.state.in_((OutboxState.QUEUED, OutboxState.DEFERRED)),
            OutboxRecipient.next_attempt_at <= now,
        ),
        and_(OutboxRecipient.state == OutboxState.ACTIVE, OutboxRecipient.lease_until < now),
    )
    candidates = select(OutboxRecipient.id).where(due).order_by(OutboxRecipient.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    session.execute(
        update(OutboxRecipient)
        .where(OutboxRecipient.id.in_(ids))
        .values(state=OutboxState.ACTIVE, lease_owner=worker_id, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    rows = session.scalars(
        select(OutboxRecipient).where(OutboxRecipient.id.in_(ids)).order_by(OutboxRecipient.id)
    ).all()
    return list(rows)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 … minutes, capped at two hours."""
    delay = BACKOFF_START * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


@dataclass(frozen=True)
class Result:
    """What the relay said for one recipient (code 0: no answer, e.g. connection refused)."""

    recipient_id: int
    code: int
    reply: str


def record_results(
    session: Session,
    results: Sequence[Result],
    expires_at: dict[int, datetime],
    job_of: dict[int, int],
    now: datetime | None = None,
) -> list[Result]:
    """Persist outcomes; returns the permanent failures (for bounce scoring)."""
    now = now or utcnow()
    sent = [r.recipient_id for r in results if 200 <= r.code < 300]
    failures: list[Result] = []
    if sent:
        session.execute(
            update(OutboxRecipient)
            .where(OutboxRecipient.id.in_(sent))
            .values(
                state=OutboxState.SENT,
                sent_at=now,
                last_code=250,
                lease_until=None,
                attempts=OutboxRecipient.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
    for result in results:
        if 200 <= result.code < 300:
            continue
        row = session.get(OutboxRecipient, result.recipient_id)
        if row is None:
            continue
        row.attempts += 1
        row.last_code = result.code or None
        row.last_reply = result.reply[:2000]
        row.lease_until = None
        permanent = result.code >= 500
        deadline = expires_at.get(job_of.get(row.id, row.job_id), now)
        if permanent or now + backoff(row.attempts) > deadline:
            row.state = OutboxState.FAILED
            failures.append(result)
        else:
            row.state = OutboxState.DEFERRED
            row.next_attempt_at = now + backoff(row.attempts)
    return failures


def next_due(session: Session) -> datetime | None:
    """When the earliest deferred or queued recipient becomes due."""
    return session.scalar(
        select(func.min(OutboxRecipient.next_attempt_at)).where(
            OutboxRecipient.state.in_((OutboxState.QUEUED, OutboxState.DEFERRED))
        )
    )


@dataclass(frozen=True)
class Status:
    jobs: int
    counts: dict[str, int]
    oldest_deferred: datetime | None


def status(session: Session) -> Status:
    counts = {state.value: 0 for state in OutboxState}
    for state, n in session.execute(
        select(OutboxRecipient.state, func.count()).group_by(OutboxRecipient.state)
    ):
        counts[state] = n
    oldest = session.scalar(
        select(func.min(OutboxRecipient.next_attempt_at)).where(
            OutboxRecipient.state == OutboxState.DEFERRED
        )
    )
    jobs = int(session.scalar(select(func.count()).select_from(OutboxJob)) or 0)
    return Status(jobs=jobs, counts=counts, oldest_deferred=oldest)


def retry_now(session: Session, now: datetime | None = None) -> int:
    """Make every deferred recipient due at once (`listserv outbox retry`)."""
    now = now or utcnow()
    result = session.execute(
        update(OutboxRecipient)
        .where(OutboxRecipient.state == OutboxState.DEFERRED)
        .values(next_attempt_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
