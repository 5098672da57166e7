# SPDX-License-Identifier: Apache-2.0
"""The outbox: everything the service sends, and each recipient's delivery state.

Input is a finished message (service mail) or a post's shared decorated copy plus
its recipients; output is rows that delivery workers lease, send and settle. States
follow Postfix: queued → active → sent | deferred (retried with doubling backoff
until the job's deadline) | failed.

Two shapes of state, because a bulk copy is the same for everyone:

- `outbox_recipients`: one row per recipient, for personalized and VERP jobs (each
  recipient has a transaction of their own) and for service mail.
- `outbox_batches`: one row per SMTP transaction's worth of a bulk job's recipients
  (sorted by domain), so 100,000 bulk recipients cost 200 row writes per state change
  instead of 100,000. A recipient the relay defers or refuses leaves its batch and
  goes on as an `outbox_recipients` row.

A lease is the `active` state plus `lease_owner`/`lease_until`. A worker that dies
leaves `active` rows whose lease runs out; they are claimed again, so what was in
flight (handed to the relay but not yet recorded) may be sent twice, and nothing is
sent never. Leases are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
workers on several hosts share one job; SQLite has one worker.

The hot paths (adding 100,000 recipients, claiming, settling) are single SQL
statements over many rows, written with SQLAlchemy Core or the driver's executemany:
the ORM would spend more time building objects than the database spends writing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from listserv.addresses import split_address
from listserv.models import OutboxBatch, OutboxJob, OutboxRecipient, OutboxState, utcnow

BACKOFF_START = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=2)

#: Recipients per bulk batch row (one SMTP transaction; `delivery.batch_size`).
BULK_BATCH = 500

#: Ids per `IN (…)` list: well under SQLite's and PostgreSQL's parameter limits.
_CHUNK = 900

_RECIPIENTS = cast(Table, OutboxRecipient.__table__)
_BATCHES = cast(Table, OutboxBatch.__table__)
_OPEN = (OutboxState.QUEUED.value, OutboxState.DEFERRED.value)
_UNFINISHED = (OutboxState.QUEUED.value, OutboxState.ACTIVE.value, OutboxState.DEFERRED.value)


@dataclass(frozen=True)
class RecipientSpec:
    address: str
    member_id: int | None = None
    unsubscribe_token: str = ""


# ------------------------------------------------------------------------- enqueue


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
    batch_size: int = BULK_BATCH,
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
        recipient_count=0,
    )
    session.add(job)
    session.flush()
    specs = [r if isinstance(r, RecipientSpec) else RecipientSpec(r) for r in recipients]
    add_recipients(session, job, specs, now, batch_size=batch_size)
    return job


def add_recipients(
    session: Session,
    job: OutboxJob,
    specs: Sequence[RecipientSpec],
    now: datetime,
    *,
    batch_size: int = BULK_BATCH,
) -> None:
    """Queue more recipients of `job` (fan-out calls this once per roster page).

    Jobs whose copies are the same for everyone (neither personalized nor VERP) with
    more than one recipient are stored as batch rows, sorted by domain so each relay
    transaction goes to as few destinations as possible.
    """
    if not specs:
        return
    conn = session.connection()
    if not job.personalized and not job.verp and len(specs) > 1:
        ordered = sorted(specs, key=lambda s: s.address[s.address.rfind("@") + 1 :].lower())
        rows = [
            {
                "job_id": job.id,
                "recipients": [[s.member_id, s.address] for s in ordered[i : i + batch_size]],
                "recipient_count": len(ordered[i : i + batch_size]),
                "state": OutboxState.QUEUED.value,
                "attempts": 0,
                "next_attempt_at": now,
                "lease_owner": "",
                "last_reply": "",
            }
            for i in range(0, len(ordered), batch_size)
        ]
        conn.execute(insert(_BATCHES), rows)
    else:
        due = _db_datetime(conn.engine, now)
        sql = (
            "INSERT INTO outbox_recipients (job_id, address, member_id, unsubscribe_token,"
            " domain, state, attempts, next_attempt_at, lease_owner, last_reply)"
            " VALUES ({0}, {0}, {0}, {0}, {0}, 'queued', 0, {0}, '', '')"
        ).format("?" if conn.dialect.paramstyle == "qmark" else "%s")
        job_id = job.id
        conn.exec_driver_sql(
            sql,
            [
                (
                    job_id,
                    s.address,
                    s.member_id,
                    s.unsubscribe_token,
                    s.address.rpartition("@")[2].lower().rstrip("."),
                    due,
                )
                for s in specs
            ],
        )
    job.recipient_count = (job.recipient_count or 0) + len(specs)


def _db_datetime(engine: Engine, value: datetime) -> Any:
    """`value` as the driver stores it in `next_attempt_at` (for executemany)."""
    column_type = _RECIPIENTS.c.next_attempt_at.type
    dialect = engine.dialect
    bound = column_type.process_bind_param(value, dialect)  # type: ignore[attr-defined]
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    return processor(bound) if processor else bound


# --------------------------------------------------------------------------- leases


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
        _RECIPIENTS.c.state == OutboxState.ACTIVE.value,
        _RECIPIENTS.c.lease_until < now,
    )
    due_rows = (_RECIPIENTS.c.state.in_(_OPEN), _RECIPIENTS.c.next_attempt_at <= now)
    expired_batches = (_BATCHES.c.state == OutboxState.ACTIVE.value, _BATCHES.c.lease_until < now)
    due_batches = (_BATCHES.c.state.in_(_OPEN), _BATCHES.c.next_attempt_at <= now)
    # Single recipients (service mail, personalized posts) may take half the room
    # first, so a bulk job never holds up a confirmation; batches then take what is
    # left, and single recipients whatever the batches did not need.
    for table, due, share in (
        (_RECIPIENTS, expired_rows, 2),
        (_RECIPIENTS, due_rows, 2),
        (_BATCHES, expired_batches, 1),
        (_BATCHES, due_batches, 1),
        (_RECIPIENTS, due_rows, 1),
    ):
        room = (limit - len(result)) // share
        if table is _BATCHES:
            room = max(1, room // batch_size) if room > 0 else 0
        if room <= 0:
            continue
        rows = _claim_rows(session, table, due, room, worker_id, until)
        if table is _BATCHES:
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
    if table is _BATCHES:
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
    for table in (_RECIPIENTS, _BATCHES):
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
    for table in (_RECIPIENTS, _BATCHES):
        owners = session.scalars(
            select(table.c.lease_owner).where(table.c.state == OutboxState.ACTIVE.value).distinct()
        )
        for owner in owners:
            parts = owner.rsplit(":", 2)
            if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
                if not alive(int(parts[1])):
                    dead.append(owner)
    count = 0
    for table in (_RECIPIENTS, _BATCHES):
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


# -------------------------------------------------------------------------- results


def backoff(attempts: int, start: timedelta = BACKOFF_START) -> timedelta:
    """start, 2×start, 4×start … after each failed attempt, capped at two hours."""
    delay: timedelta = start * int(2 ** max(attempts - 1, 0))
    return min(delay, max(BACKOFF_MAX, start))


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
    for start in range(0, len(sent_ids), _CHUNK):
        session.execute(
            update(_RECIPIENTS)
            .where(_RECIPIENTS.c.id.in_(sent_ids[start : start + _CHUNK]))
            .values(
                state=OutboxState.SENT.value,
                sent_at=now,
                last_code=250,
                lease_until=None,
                attempts=_RECIPIENTS.c.attempts + 1,
            )
        )
    settled.sent += len(sent_ids)
    settled.jobs.update(a.item.job_id for a in attempts)
    changes: list[dict[str, Any]] = []
    for a in attempts:
        if 200 <= a.code < 300:
            continue
        state, due = _verdict(
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
            update(_RECIPIENTS)
            .where(_RECIPIENTS.c.id == bindparam("row_id"))
            .values(
                state=bindparam("state"),
                attempts=bindparam("attempts"),
                next_attempt_at=bindparam("next_attempt_at", _RECIPIENTS.c.next_attempt_at.type),
                last_code=bindparam("last_code"),
                last_reply=bindparam("last_reply"),
                lease_until=None,
            ),
            changes,
        )
    for ba in batch_attempts:
        _settle_batch(session, ba, expires_at.get(ba.batch.job_id), now, backoff_start, settled)
    return settled


def _verdict(
    code: int, attempts: int, deadline: datetime | None, now: datetime, start: timedelta
) -> tuple[str, datetime]:
    """failed for a 5xx, or a 4xx/no answer when the next try would be past the deadline."""
    due = now + backoff(attempts, start)
    if code >= 500 or deadline is None or due > deadline:
        return OutboxState.FAILED.value, now
    return OutboxState.DEFERRED.value, due


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
    where = _BATCHES.c.id == batch.id
    if len(accepted) == len(batch.recipients):
        session.execute(
            update(_BATCHES)
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
        state, due = _verdict(first_code, tries, deadline, now, start)
        if state == OutboxState.DEFERRED:
            session.execute(
                update(_BATCHES)
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
        state, due = _verdict(code, tries, deadline, now, start)
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
    session.execute(insert(_RECIPIENTS), leftovers)
    if accepted:
        session.execute(
            update(_BATCHES)
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
        session.execute(delete(_BATCHES).where(where))


@dataclass(frozen=True)
class FinishedJob:
    id: int
    kind: str
    list_id: int | None
    post_id: int | None
    recipients: int
    failed: int


def finish_jobs(session: Session, job_ids: Iterable[int], now: datetime) -> list[FinishedJob]:
    """Mark jobs with nothing left to try as completed; returns them with failure counts."""
    finished: list[FinishedJob] = []
    for job_id in sorted(set(job_ids)):
        # Lock the job first: two workers settling a job's last rows at once would
        # each see the other's rows still active, and neither would finish it.
        open_job = session.scalar(
            select(OutboxJob.id)
            .where(OutboxJob.id == job_id, OutboxJob.completed_at.is_(None))
            .with_for_update()
        )
        if open_job is None:
            continue
        busy = any(
            session.scalar(
                select(table.c.id)
                .where(table.c.job_id == job_id, table.c.state.in_(_UNFINISHED))
                .limit(1)
            )
            is not None
            for table in (_RECIPIENTS, _BATCHES)
        )
        if busy:
            continue
        job = session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == job_id, OutboxJob.completed_at.is_(None))
            .values(completed_at=now)
            .returning(
                OutboxJob.kind, OutboxJob.list_id, OutboxJob.post_id, OutboxJob.recipient_count
            )
        ).first()
        if job is None:
            continue
        failed = int(
            session.scalar(
                select(func.count()).where(
                    _RECIPIENTS.c.job_id == job_id,
                    _RECIPIENTS.c.state == OutboxState.FAILED.value,
                )
            )
            or 0
        )
        finished.append(FinishedJob(job_id, job[0], job[1], job[2], job[3], failed))
    return finished


def next_due(session: Session) -> datetime | None:
    """When the earliest queued or deferred recipient or batch becomes due."""
    times = [
        session.scalar(select(func.min(table.c.next_attempt_at)).where(table.c.state.in_(_OPEN)))
        for table in (_RECIPIENTS, _BATCHES)
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


# ----------------------------------------------------------------------- operators


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
    for table in (_RECIPIENTS, _BATCHES):
        amount = func.count() if table is _RECIPIENTS else func.sum(table.c.recipient_count)
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


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def retry_now(session: Session, now: datetime | None = None) -> int:
    """Make every deferred recipient and batch due at once (`listserv outbox retry`)."""
    now = now or utcnow()
    count = 0
    for table in (_RECIPIENTS, _BATCHES):
        amount = func.count() if table is _RECIPIENTS else func.sum(table.c.recipient_count)
        count += int(
            session.scalar(select(amount).where(table.c.state == OutboxState.DEFERRED.value)) or 0
        )
        session.execute(
            update(table)
            .where(table.c.state == OutboxState.DEFERRED.value)
            .values(next_attempt_at=now)
        )
    return count
