# SPDX-License-Identifier: Apache-2.0
"""What the operator sees of the queue and may do to it: `listserv outbox status`
(counts per state, the oldest deferral, the unfinished jobs) and `listserv outbox
retry` (every deferred recipient due now).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from listserv.models import OutboxJob, OutboxState, utcnow
from listserv.outbox.tables import BATCHES, RECIPIENTS, as_utc


@dataclass(frozen=True)
class JobStatus:
    id: int
    kind: str
    list_id: int | None
    created_at: datetime
    expires_at: datetime
    recipients: int
    counts: dict[str, int]
    next_retry: datetime | None


@dataclass(frozen=True)
class Status:
    jobs: int
    unfinished_jobs: int
    counts: dict[str, int]
    oldest_deferred: datetime | None  # when the oldest job with deferred recipients was queued
    next_retry: datetime | None  # when the next deferred recipient is due
    unfinished: list[JobStatus]


def status(session: Session, job_limit: int = 50) -> Status:
    """Counts per state over everything queued, and the unfinished jobs in detail."""
    counts = {state.value: 0 for state in OutboxState}
    per_job: dict[int, dict[str, int]] = {}
    retry_at: dict[int, datetime] = {}
    for table in (RECIPIENTS, BATCHES):
        amount = func.count() if table is RECIPIENTS else func.sum(table.c.recipient_count)
        query = select(table.c.job_id, table.c.state, amount, func.min(table.c.next_attempt_at))
        for job_id, state, n, due in session.execute(query.group_by(table.c.job_id, table.c.state)):
            counts[state] = counts.get(state, 0) + int(n or 0)
            job_counts = per_job.setdefault(job_id, {s.value: 0 for s in OutboxState})
            job_counts[state] = job_counts.get(state, 0) + int(n or 0)
            if state == OutboxState.DEFERRED and due is not None:
                due = as_utc(due)
                retry_at[job_id] = min(due, retry_at.get(job_id, due))
    jobs = int(session.scalar(select(func.count()).select_from(OutboxJob)) or 0)
    unfinished_total = int(
        session.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.completed_at.is_(None))
        )
        or 0
    )
    unfinished_query = select(
        OutboxJob.id,
        OutboxJob.kind,
        OutboxJob.list_id,
        OutboxJob.created_at,
        OutboxJob.expires_at,
        OutboxJob.recipient_count,
    ).where(OutboxJob.completed_at.is_(None))
    deferred_jobs = sorted(retry_at)
    oldest = None
    if deferred_jobs:
        oldest = session.scalar(
            select(func.min(OutboxJob.created_at)).where(OutboxJob.id.in_(deferred_jobs))
        )
    details = [
        JobStatus(
            job.id,
            job.kind,
            job.list_id,
            job.created_at,
            job.expires_at,
            job.recipient_count,
            per_job.get(job.id, {s.value: 0 for s in OutboxState}),
            retry_at.get(job.id),
        )
        for job in session.execute(unfinished_query.order_by(OutboxJob.id).limit(job_limit))
    ]
    return Status(
        jobs,
        unfinished_total,
        counts,
        oldest,
        min(retry_at.values()) if retry_at else None,
        details,
    )


def retry_now(session: Session, now: datetime | None = None) -> int:
    """Make every deferred recipient and batch due at once (`listserv outbox retry`)."""
    now = now or utcnow()
    count = 0
    for table in (RECIPIENTS, BATCHES):
        amount = func.count() if table is RECIPIENTS else func.sum(table.c.recipient_count)
        count += int(
            session.scalar(select(amount).where(table.c.state == OutboxState.DEFERRED.value)) or 0
        )
        session.execute(
            update(table)
            .where(table.c.state == OutboxState.DEFERRED.value)
            .values(next_attempt_at=now)
        )
    return count
