# SPDX-License-Identifier: Apache-2.0
"""Processing: claim stored inbound messages and route each recipient.

Input is `received` rows of `inbound_messages`, leased by this worker
(`claiming.py`); output is whatever the stages write (members, requests, posts,
outbox jobs) plus the row's final status, all in one transaction, so a message
is processed exactly once even if the process dies halfway (the transaction
rolls back and the row is still `received`). Each recipient's work begins by
inserting its `inbound_results` row, unique per message and recipient, in the
same transaction: should two workers ever process one message, only one of them
can commit that work, and the other finds it done and does nothing.
A message that raises is kept as `failed` with its reason for an operator
(`listserv inbound list`, `listserv inbound retry`), never dropped.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from listserv.addresses import parse_recipient
from listserv.approved import scrub_raw
from listserv.config import Settings
from listserv.context import Context, Memo
from listserv.leasing import LEASE, one_off_name
from listserv.lists import get_list
from listserv.message import message_id, parse_message
from listserv.models import InboundMessage, InboundResult, InboundStatus, MailingList, utcnow
from listserv.routing.claiming import claim_inbound, release_inbound
from listserv.routing.delivery import Delivery
from listserv.routing.router import route
from listserv.templates import Templates

log = logging.getLogger("listserv.processing")
INBOUND = cast(Table, InboundMessage.__table__)


def _route_message(
    session: Session,
    settings: Settings,
    templates: Templates,
    row: InboundMessage,
    worker: str,
    lists: dict[str, MailingList | None],
    memo: Memo,
) -> dict[str, Any]:
    """Route every recipient of one stored message; the row's final values (`_FINISH`)."""
    now = utcnow()
    msg = parse_message(row.raw)
    ctx = Context(
        session=session,
        settings=settings,
        templates=templates,
        now=now,
        source=message_id(msg) or f"inbound:{row.id}",
        memo=memo,
    )
    notes = []
    seen: set[tuple[str, str, str]] = set()
    for rcpt in row.rcpt_tos:
        recipient = parse_recipient(str(rcpt), settings.site.domains, settings.site.command_address)
        if recipient is None:
            notes.append(f"{rcpt}: not ours")
            continue
        key = (recipient.list_name, recipient.destination, recipient.extension.lower())
        if key in seen:  # the same address twice in one envelope
            continue
        seen.add(key)
        mlist = None
        if recipient.list_name:
            if recipient.list_name not in lists:  # one lookup per list and batch
                lists[recipient.list_name] = get_list(session, recipient.list_name)
            mlist = lists[recipient.list_name]
        if recipient.list_name and mlist is None:
            notes.append(f"{rcpt}: no such list")
            continue
        if not record_result(session, row.id, ":".join(key), worker):
            log.warning("inbound message %d: %s was already processed", row.id, rcpt)
            notes.append(f"{rcpt}: already processed")
            continue
        delivery = Delivery(row, msg, recipient, mlist, row.mail_from)
        notes.append(f"{rcpt}: {route(ctx, delivery)}")
    return {"row_id": row.id, "reason": "\n".join(notes)[:4000], "processed_at": now}


# A batch's processed rows are marked done in one statement at its end: set on
# the ORM rows, each would be an UPDATE of its own, flushed before the next
# message's first query.
_FINISH = (
    update(INBOUND)
    .where(INBOUND.c.id == bindparam("row_id"))
    .values(
        status=InboundStatus.DONE.value,
        reason=bindparam("reason"),
        processed_at=bindparam("processed_at", type_=INBOUND.c.processed_at.type),
        attempts=INBOUND.c.attempts + 1,
        lease_until=None,
    )
)


def _mark_done(session: Session, finished: list[dict[str, Any]]) -> None:
    if finished:
        session.connection().execute(_FINISH, finished)


def record_result(session: Session, inbound_id: int, recipient: str, worker: str) -> bool:
    """Claim a recipient's result row before its work, in the same transaction; False
    if it exists (the work is done, or being done by a transaction that will win).

    The key is unique per (message, recipient), so of two transactions that would
    do the same work only one can commit it. On PostgreSQL the second waits on the
    key until the first commits, then inserts nothing (ON CONFLICT DO NOTHING) and
    skips the work. One statement, no savepoint.
    """
    values = {"inbound_id": inbound_id, "recipient": recipient[:400], "worker": worker}
    conn = session.connection()  # nothing the ORM holds bears on it: no flush first
    statement = _CLAIM_RESULT[conn.dialect.name == "postgresql"]
    return conn.execute(statement, values).scalar() is not None


def _claim_result(insert: Any) -> Any:
    """The result-row insert, built once per dialect (it runs for every recipient)."""
    columns = ("inbound_id", "recipient", "worker")
    return (
        insert(InboundResult)
        .values({c: bindparam(c) for c in columns})
        .on_conflict_do_nothing(index_elements=["inbound_id", "recipient"])
        .returning(InboundResult.id)
    )


_CLAIM_RESULT = {False: _claim_result(sqlite_insert), True: _claim_result(pg_insert)}


def process_batch(
    factory: sessionmaker[Session],
    settings: Settings,
    templates: Templates,
    ids: list[int],
    worker: str,
    budget: float = 0.1,
) -> dict[int, str]:
    """Process several messages `worker` has leased, in one transaction; their statuses.

    Each message runs in a savepoint: one that raises is rolled back alone and
    marked failed with its reason, in the same commit as the others. One
    commit per batch instead of per message is what lets processing keep up
    with intake on SQLite with every commit durable. A batch stops after
    `budget` seconds, so intake never waits long for SQLite's one writer;
    the messages it did not reach stay `received`, their leases freed.

    Only rows whose lease is still `worker`'s are taken; on PostgreSQL they are
    locked for the transaction, so no other worker can take them meanwhile.
    """
    with factory() as session, session.begin():
        return _process_in(session, settings, templates, ids, worker, budget)


def _process_in(
    session: Session,
    settings: Settings,
    templates: Templates,
    ids: list[int],
    worker: str,
    budget: float,
) -> dict[int, str]:
    """Process the leased rows: all in one savepoint, or one savepoint each after a failure.

    Nearly every batch raises nothing, so it runs in one savepoint (two statements
    a batch, not two a message). If one message raises, that savepoint is rolled
    back and the batch done again with a savepoint per message, so the failing one
    is kept for the operator and the others are processed as if alone.
    """
    query = (
        select(InboundMessage)
        .where(
            InboundMessage.id.in_(ids),
            InboundMessage.status == InboundStatus.RECEIVED,
            InboundMessage.lease_owner == worker,
        )
        .order_by(InboundMessage.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    rows = list(session.scalars(query).all())
    deadline = time.monotonic() + budget
    try:
        with session.begin_nested():
            return _route_rows(session, settings, templates, rows, worker, deadline, alone=False)
    except Exception:
        log.info("a batch of %d inbound messages raised; processing them one by one", len(rows))
    return _route_rows(session, settings, templates, rows, worker, deadline, alone=True)


def _route_rows(
    session: Session,
    settings: Settings,
    templates: Templates,
    rows: list[InboundMessage],
    worker: str,
    deadline: float,
    *,
    alone: bool,
) -> dict[int, str]:
    """Route each row; with `alone`, each in its own savepoint and failures kept."""
    statuses: dict[int, str] = {}
    finished: list[dict[str, Any]] = []
    lists: dict[str, MailingList | None] = {}  # the batch's session keeps them current
    memo = Memo()
    for index, row in enumerate(rows):
        if statuses and time.monotonic() > deadline and not alone:
            release_inbound(session, [r.id for r in rows[index:]])
            break
        if not alone:
            finished.append(_route_message(session, settings, templates, row, worker, lists, memo))
            statuses[row.id] = InboundStatus.DONE
            continue
        try:
            with session.begin_nested():
                done = _route_message(session, settings, templates, row, worker, lists, memo)
            finished.append(done)
            statuses[row.id] = InboundStatus.DONE
            continue
        except Exception as exc:
            log.exception("processing inbound message %d failed", row.id)
            reason = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            session.refresh(row)
            # A message kept for the operator keeps no owner password.
            row.raw = scrub_raw(row.raw)
            row.status = InboundStatus.FAILED
            row.reason = f"processing failed: {reason}"[:4000]
            row.attempts += 1
            row.processed_at = utcnow()
            row.lease_until = None
            memo = Memo()  # what it looked up went with its savepoint
            lists.clear()
        statuses[row.id] = row.status
    _mark_done(session, finished)
    return statuses


def process_one(
    factory: sessionmaker[Session], settings: Settings, templates: Templates, inbound_id: int
) -> str:
    """Claim and process one stored message; its final status ("skipped": not waiting)."""
    worker = one_off_name()
    with factory() as session, session.begin():
        ids = claim_inbound(session, worker, limit=1, lease=LEASE, now=utcnow(), ids=[inbound_id])
    if not ids:
        return "skipped"
    return process_batch(factory, settings, templates, ids, worker).get(inbound_id, "skipped")


def process_pending(
    factory: sessionmaker[Session],
    settings: Settings,
    templates: Templates,
    limit: int = 100,
    batch: int = 50,
    *,
    worker: str | None = None,
    lease: timedelta = LEASE,
    budget: float = 0.1,
) -> int:
    """Claim and process waiting messages (oldest first, up to `limit`); how many.

    On PostgreSQL the claim commits on its own, so other hosts see the leases; on
    SQLite, where one writer runs at a time anyway, claim and work share one
    transaction (one fsync a batch instead of two; a crash leaves no lease at all).
    """
    worker = worker or one_off_name()
    together = factory.kw["bind"].dialect.name == "sqlite"
    done = 0
    while done < limit:
        size = min(batch, limit - done)
        if together:
            with factory() as session, session.begin():
                ids = claim_inbound(session, worker, limit=size, lease=lease, now=utcnow())
                statuses = _process_in(session, settings, templates, ids, worker, budget)
        else:
            with factory() as session, session.begin():
                ids = claim_inbound(session, worker, limit=size, lease=lease, now=utcnow())
            statuses = (
                process_batch(factory, settings, templates, ids, worker, budget) if ids else {}
            )
        if not ids:
            break
        done += len(statuses)
    return done
