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
import traceback
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from listserv.addresses import parse_recipient
from listserv.config import Settings
from listserv.context import Context
from listserv.inbound import unprocessed_ids
from listserv.lists import get_list
from listserv.message import message_id, parse_message
from listserv.models import InboundMessage, InboundStatus, utcnow
from listserv.router import Delivery, route
from listserv.templates import Templates

log = logging.getLogger("listserv.processing")


def process_one(
    factory: sessionmaker[Session],
    settings: Settings,
    templates: Templates,
    inbound_id: int,
    clock: Callable[[], object] = utcnow,
) -> str:
    """Process one stored message; returns its final status."""
    try:
        with factory() as session, session.begin():
            row = session.get(InboundMessage, inbound_id)
            if row is None or row.status != InboundStatus.RECEIVED:
                return row.status if row is not None else "missing"
            now = utcnow()
            msg = parse_message(row.raw)
            ctx = Context(
                session=session,
                settings=settings,
                templates=templates,
                now=now,
                channel="email",
                source=message_id(msg) or f"inbound:{row.id}",
            )
            notes = []
            seen: set[tuple[str, str, str]] = set()
            for rcpt in row.rcpt_tos:
                recipient = parse_recipient(
                    str(rcpt), settings.site.domains, settings.site.command_address
                )
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
                with session.begin_nested():
                    notes.append(f"{rcpt}: {route(ctx, delivery)}")
            row.status = InboundStatus.DONE
            row.reason = "\n".join(notes)[:4000]
            row.processed_at = now
            row.attempts += 1
            return row.status
    except Exception as exc:
        log.exception("processing inbound message %d failed", inbound_id)
        reason = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        with factory() as session, session.begin():
            row = session.get(InboundMessage, inbound_id)
            if row is not None:
                row.status = InboundStatus.FAILED
                row.reason = f"processing failed: {reason}"[:4000]
                row.attempts += 1
                row.processed_at = utcnow()
        return InboundStatus.FAILED


def process_pending(
    factory: sessionmaker[Session], settings: Settings, templates: Templates, limit: int = 100
) -> int:
    """Process every waiting message (oldest first); the number processed."""
    with factory() as session:
        ids = unprocessed_ids(session, limit)
    for inbound_id in ids:
        process_one(factory, settings, templates, inbound_id)
    return len(ids)
