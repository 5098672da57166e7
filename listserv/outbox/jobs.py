# SPDX-License-Identifier: Apache-2.0
"""Queueing mail: a job (one message, its envelope sender, its deadline) and its
recipients, written in the caller's transaction.

Fan-out adds a post's members a roster page at a time; notices and digests queue
service mail in one call. A copy that is the same for every recipient is stored in
bulk batch rows, sorted by domain; a personalized or VERP copy gets a row per
recipient, since each is a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.orm import Session

from listserv.models import OutboxJob, OutboxState, utcnow
from listserv.outbox.tables import BATCHES, JOBS, RECIPIENTS

#: Recipients per bulk batch row (one SMTP transaction; `delivery.batch_size`).
BULK_BATCH = 500


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
    batch_size: int = BULK_BATCH,
) -> OutboxJob:
    """Create a job and its recipients in the caller's transaction."""
    now = now or utcnow()
    specs = [r if isinstance(r, RecipientSpec) else RecipientSpec(r) for r in recipients]
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
        recipient_count=len(specs),  # counted at insert: no UPDATE after (a notice's hot path)
    )
    session.add(job)
    session.flush()
    _insert_recipients(session, job.id, job.personalized or job.verp, specs, now, batch_size)
    return job


def queue_mail(
    session: Session,
    *,
    mail_from: str,
    recipients: Sequence[str],
    raw: bytes,
    retry_for: timedelta,
    kind: str = "service",
    list_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Queue one message, the same for every recipient; its job's id.

    `enqueue` for a service notice, in two Core statements: a join request
    queues one confirmation, and an ORM object flushed for it would cost that
    request a good part of its processing.
    """
    now = now or utcnow()
    values = {
        "kind": kind,
        "list_id": list_id,
        "post_id": None,
        "mail_from": mail_from,
        "raw": raw,
        "personalized": False,
        "verp": False,
        "created_at": now,
        "expires_at": now + retry_for,
        "recipient_count": len(recipients),
        "completed_at": None,
    }
    conn = session.connection()
    job_id: int = conn.execute(_QUEUE_JOB, values).scalar_one()
    specs = [RecipientSpec(address) for address in recipients]
    _insert_recipients(session, job_id, False, specs, now, BULK_BATCH)
    return job_id


_QUEUE_JOB = insert(JOBS).returning(JOBS.c.id)


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
    if specs:
        one_each = job.personalized or job.verp
        _insert_recipients(session, job.id, one_each, specs, now, batch_size)
        job.recipient_count = (job.recipient_count or 0) + len(specs)


def _insert_recipients(
    session: Session,
    job_id: int,
    one_each: bool,
    specs: Sequence[RecipientSpec],
    now: datetime,
    batch_size: int,
) -> None:
    """Batch rows for a copy the same for all; a row a recipient when `one_each`."""
    if not specs:
        return
    conn = session.connection()
    if not one_each and len(specs) > 1:
        ordered = sorted(specs, key=lambda s: s.address[s.address.rfind("@") + 1 :].lower())
        rows = [
            {
                "job_id": job_id,
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
        conn.execute(insert(BATCHES), rows)
    elif conn.dialect.name == "postgresql":
        _copy_recipients(conn, job_id, specs, _db_datetime(conn.engine, now))
    else:
        due = _db_datetime(conn.engine, now)
        sql = (
            "INSERT INTO outbox_recipients (job_id, address, member_id, unsubscribe_token,"
            " domain, state, attempts, next_attempt_at, lease_owner, last_reply)"
            " VALUES ({0}, {0}, {0}, {0}, {0}, 'queued', 0, {0}, '', '')"
        ).format("?" if conn.dialect.paramstyle == "qmark" else "%s")
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


_COPY = (
    "COPY outbox_recipients (job_id, address, member_id, unsubscribe_token, domain, state,"
    " attempts, next_attempt_at, lease_owner, last_reply) FROM STDIN"
)


def _copy_recipients(
    conn: Connection, job_id: int, specs: Sequence[RecipientSpec], due: Any
) -> None:
    """Recipient rows by COPY, in the fan-out's own transaction: on PostgreSQL an
    executemany INSERT costs about 60 µs a row, so a 1,000,000-member post would wait
    a minute before its first copy; COPY streams them at a few µs a row."""
    driver = conn.connection.driver_connection  # psycopg's own connection, in our transaction
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(_COPY) as copy:
        for s in specs:
            copy.write_row(
                (
                    job_id,
                    s.address,
                    s.member_id,
                    s.unsubscribe_token,
                    s.address.rpartition("@")[2].lower().rstrip("."),
                    "queued",
                    0,
                    due,
                    "",
                    "",
                )
            )


def _db_datetime(engine: Engine, value: datetime) -> Any:
    """`value` as the driver stores it in `next_attempt_at` (for executemany)."""
    column_type = RECIPIENTS.c.next_attempt_at.type
    dialect = engine.dialect
    bound = column_type.process_bind_param(value, dialect)  # type: ignore[attr-defined]
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    return processor(bound) if processor else bound
