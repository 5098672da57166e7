# SPDX-License-Identifier: Apache-2.0
"""Settling results: what the relay said for each leased recipient becomes its new
state (sent, deferred, failed), and a job with nothing left to try is finished.

A bulk batch the relay accepted whole becomes `sent` in one row; a recipient the
relay deferred or refused leaves its batch and goes on as a recipient row of its own.
The refused and the given-up come back as `Failure`s, for the bounce stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from listserv.addresses import split_address
from listserv.models import OutboxState, utcnow
from listserv.outbox.leases import Leased, LeasedBatch
from listserv.outbox.schedule import BACKOFF_START, verdict
from listserv.outbox.tables import BATCHES, CHUNK, JOBS, RECIPIENTS, UNFINISHED


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the relay said for one leased recipient row (code 0: no answer)."""

    item: Leased
    code: int
    reply: str


@dataclass(frozen=True, slots=True)
class BatchAttempt:
    """What the relay said for each recipient of a leased batch, in batch order."""

    batch: LeasedBatch
    answers: Sequence[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Failure:
    """A recipient that will not be tried again: refused (5xx) or out of time."""

    job_id: int
    member_id: int | None
    address: str
    code: int
    reply: str


@dataclass
class Settled:
    sent: int = 0
    deferred: int = 0
    failures: list[Failure] = field(default_factory=list)
    jobs: set[int] = field(default_factory=set)


def record(
    session: Session,
    attempts: Sequence[Attempt],
    batch_attempts: Sequence[BatchAttempt],
    expires_at: Mapping[int, datetime],
    now: datetime | None = None,
    *,
    backoff_start: timedelta = BACKOFF_START,
) -> Settled:
    """Settle what the relay said, in the caller's transaction.

    Accepted rows become `sent` in one UPDATE per 900 ids; the rest are deferred
    (due again after a doubling backoff) or, when refused or past the job's deadline,
    failed. A batch the relay accepted whole becomes `sent`; one it deferred whole
    stays a batch; otherwise its accepted recipients stay in it and each of the rest
    becomes a recipient row of its own.
    """
    now = now or utcnow()
    settled = Settled()
    sent_ids = [a.item.id for a in attempts if 200 <= a.code < 300]
    for start in range(0, len(sent_ids), CHUNK):
        session.execute(
            update(RECIPIENTS)
            .where(RECIPIENTS.c.id.in_(sent_ids[start : start + CHUNK]))
            .values(
                state=OutboxState.SENT.value,
                sent_at=now,
                last_code=250,
                lease_until=None,
                attempts=RECIPIENTS.c.attempts + 1,
            )
        )
    settled.sent += len(sent_ids)
    settled.jobs.update(a.item.job_id for a in attempts)
    changes: list[dict[str, Any]] = []
    for a in attempts:
        if 200 <= a.code < 300:
            continue
        state, due = verdict(
            a.code, a.item.attempts + 1, expires_at.get(a.item.job_id), now, backoff_start
        )
        changes.append(
            {
                "row_id": a.item.id,
                "state": state,
                "attempts": a.item.attempts + 1,
                "next_attempt_at": due,
                "last_code": a.code or None,
                "last_reply": a.reply[:2000],
            }
        )
        if state == OutboxState.FAILED:
            settled.failures.append(
                Failure(a.item.job_id, a.item.member_id, a.item.address, a.code, a.reply)
            )
        else:
            settled.deferred += 1
    if changes:
        session.execute(
            update(RECIPIENTS)
            .where(RECIPIENTS.c.id == bindparam("row_id"))
            .values(
                state=bindparam("state"),
                attempts=bindparam("attempts"),
                next_attempt_at=bindparam("next_attempt_at", RECIPIENTS.c.next_attempt_at.type),
                last_code=bindparam("last_code"),
                last_reply=bindparam("last_reply"),
                lease_until=None,
            ),
            changes,
        )
    for ba in batch_attempts:
        _settle_batch(session, ba, expires_at.get(ba.batch.job_id), now, backoff_start, settled)
    return settled


def _settle_batch(
    session: Session,
    ba: BatchAttempt,
    deadline: datetime | None,
    now: datetime,
    start: timedelta,
    settled: Settled,
) -> None:
    batch = ba.batch
    tries = batch.attempts + 1
    settled.jobs.add(batch.job_id)
    accepted = [
        r for r, (code, _) in zip(batch.recipients, ba.answers, strict=True) if 200 <= code < 300
    ]
    first_code, first_reply = ba.answers[0] if ba.answers else (0, "")
    where = BATCHES.c.id == batch.id
    if len(accepted) == len(batch.recipients):
        session.execute(
            update(BATCHES)
            .where(where)
            .values(
                state=OutboxState.SENT.value,
                sent_at=now,
                attempts=tries,
                last_code=first_code,
                last_reply=first_reply[:2000],
                lease_until=None,
            )
        )
        settled.sent += len(accepted)
        return
    if not accepted and all(code < 500 for code, _ in ba.answers):
        state, due = verdict(first_code, tries, deadline, now, start)
        if state == OutboxState.DEFERRED:
            session.execute(
                update(BATCHES)
                .where(where)
                .values(
                    state=state,
                    attempts=tries,
                    next_attempt_at=due,
                    last_code=first_code or None,
                    last_reply=first_reply[:2000],
                    lease_until=None,
                )
            )
            settled.deferred += len(batch.recipients)
            return
    # Mixed answers (or out of time): the rest leave the batch as rows of their own.
    leftovers: list[dict[str, Any]] = []
    for (member_id, address), (code, reply) in zip(batch.recipients, ba.answers, strict=True):
        if 200 <= code < 300:
            continue
        state, due = verdict(code, tries, deadline, now, start)
        leftovers.append(
            {
                "job_id": batch.job_id,
                "address": address,
                "member_id": member_id,
                "unsubscribe_token": "",
                "domain": split_address(address)[1],
                "state": state,
                "attempts": tries,
                "next_attempt_at": due,
                "lease_owner": "",
                "last_code": code or None,
                "last_reply": reply[:2000],
            }
        )
        if state == OutboxState.FAILED:
            settled.failures.append(Failure(batch.job_id, member_id, address, code, reply))
        else:
            settled.deferred += 1
    session.execute(insert(RECIPIENTS), leftovers)
    if accepted:
        session.execute(
            update(BATCHES)
            .where(where)
            .values(
                state=OutboxState.SENT.value,
                recipients=[[m, a] for m, a in accepted],
                recipient_count=len(accepted),
                sent_at=now,
                attempts=tries,
                last_code=250,
                last_reply="",
                lease_until=None,
            )
        )
        settled.sent += len(accepted)
    else:
        session.execute(delete(BATCHES).where(where))


@dataclass(frozen=True)
class FinishedJob:
    id: int
    kind: str
    list_id: int | None
    post_id: int | None
    recipients: int
    failed: int


def finish_jobs(session: Session, job_ids: Iterable[int], now: datetime) -> list[FinishedJob]:
    """Mark jobs with nothing left to try as completed; returns them with failure counts.

    Every copy of a service notice is a job of its own, so this runs once a
    copy: its statements are built once and run on the session's connection.
    """
    conn = session.connection()
    finished: list[FinishedJob] = []
    for job_id in sorted(set(job_ids)):
        key = {"job_id": job_id}
        # Lock the job first: two workers settling a job's last rows at once would
        # each see the other's rows still active, and neither would finish it.
        if conn.execute(_OPEN_JOB, key).first() is None:
            continue
        if any(conn.execute(busy, key).first() is not None for busy in _BUSY):
            continue
        job = conn.execute(_COMPLETE, {**key, "done_at": now}).first()
        if job is None:
            continue
        failed = int(conn.execute(_FAILED, key).scalar() or 0)
        finished.append(FinishedJob(job_id, job[0], job[1], job[2], job[3], failed))
    return finished


_OPEN_JOB = (
    select(JOBS.c.id)
    .where(JOBS.c.id == bindparam("job_id"), JOBS.c.completed_at.is_(None))
    .with_for_update()
)
_BUSY = tuple(
    select(table.c.id)
    .where(table.c.job_id == bindparam("job_id"), table.c.state.in_(UNFINISHED))
    .limit(1)
    for table in (RECIPIENTS, BATCHES)
)
_COMPLETE = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("job_id"), JOBS.c.completed_at.is_(None))
    .values(completed_at=bindparam("done_at", type_=JOBS.c.completed_at.type))
    .returning(JOBS.c.kind, JOBS.c.list_id, JOBS.c.post_id, JOBS.c.recipient_count)
)
_FAILED = select(func.count()).where(
    RECIPIENTS.c.job_id == bindparam("job_id"),
    RECIPIENTS.c.state == OutboxState.FAILED.value,
)
