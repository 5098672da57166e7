# SPDX-License-Identifier: Apache-2.0
"""Processing: claim stored inbound messages and route each recipient.

Input is `received` rows of `inbound_messages`; output is whatever the stages
write (members, requests, posts, outbox jobs) plus the row's final status, all
in one transaction, so a message is processed exactly once even if the
process dies halfway (the transaction rolls back and the row is still
`received`). A message that raises is kept as `failed` with its reason for an
operator (`listserv inbound list`, `listserv inbound retry`), never dropped.
"""

from __future__ import annotations

import logging
import time
import traceback

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listserv.addresses import parse_recipient
from listserv.approved import scrub_raw
from listserv.config import Settings
from listserv.context import Context
from listserv.intake.inbound import unprocessed_ids
from listserv.lists import get_list
from listserv.message import message_id, parse_message
from listserv.models import InboundMessage, InboundStatus, utcnow
from listserv.routing.delivery import Delivery
from listserv.routing.router import route
from listserv.templates import Templates

log = logging.getLogger("listserv.processing")


def _route_message(
    session: Session, settings: Settings, templates: Templates, row: InboundMessage
) -> None:
    """Route every recipient of one stored message; sets the row's status and reason."""
    now = utcnow()
    msg = parse_message(row.raw)
    ctx = Context(
        session=session,
        settings=settings,
        templates=templates,
        now=now,
        source=message_id(msg) or f"inbound:{row.id}",
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
        mlist = get_list(session, recipient.list_name) if recipient.list_name else None
        if recipient.list_name and mlist is None:
            notes.append(f"{rcpt}: no such list")
            continue
        delivery = Delivery(row, msg, recipient, mlist, row.mail_from)
        notes.append(f"{rcpt}: {route(ctx, delivery)}")
    row.status = InboundStatus.DONE
    row.reason = "\n".join(notes)[:4000]
    row.processed_at = now
    row.attempts += 1


def process_batch(
    factory: sessionmaker[Session],
    settings: Settings,
    templates: Templates,
    ids: list[int],
    budget: float = 0.1,
) -> dict[int, str]:
    """Process several stored messages in one transaction; their final statuses.

    Each message runs in a savepoint: one that raises is rolled back alone and
    marked failed with its reason, in the same commit as the others. One
    commit per batch instead of per message is what lets processing keep up
    with intake on SQLite with every commit durable. A batch stops after
    `budget` seconds, so intake never waits long for SQLite's one writer;
    the messages it did not reach stay `received` for the next batch.
    """
    statuses: dict[int, str] = {}
    deadline = time.monotonic() + budget
    with factory() as session, session.begin():
        rows = session.scalars(
            select(InboundMessage)
            .where(InboundMessage.id.in_(ids), InboundMessage.status == InboundStatus.RECEIVED)
            .order_by(InboundMessage.id)
        ).all()
        for row in rows:
            if statuses and time.monotonic() > deadline:
                break
            try:
                with session.begin_nested():
                    _route_message(session, settings, templates, row)
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
            statuses[row.id] = row.status
    return statuses


def process_one(
    factory: sessionmaker[Session], settings: Settings, templates: Templates, inbound_id: int
) -> str:
    """Process one stored message; returns its final status."""
    return process_batch(factory, settings, templates, [inbound_id]).get(inbound_id, "skipped")


def process_pending(
    factory: sessionmaker[Session],
    settings: Settings,
    templates: Templates,
    limit: int = 100,
    batch: int = 50,
) -> int:
    """Process every waiting message (oldest first); the number processed."""
    with factory() as session:
        ids = unprocessed_ids(session, limit)
    done = 0
    while done < len(ids):
        done += len(process_batch(factory, settings, templates, ids[done : done + batch]))
    return len(ids)
