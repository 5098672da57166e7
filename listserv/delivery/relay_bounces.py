# SPDX-License-Identifier: Apache-2.0
"""Relay refusals as bounce events: a list member the relay refused (5xx), or that
could not be reached before the job's deadline, becomes a `bounce_events` row,
written by `bounces.events.record_bounce` like a returned DSN's. The service scores
them in the same transaction (`app.py` wires `bounces.score_events` in after this).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv import outbox
from listserv.bounces.events import BounceSource, record_bounce
from listserv.dsn import classify_smtp_reply
from listserv.eligibility import InvalidAddress, normalise_address
from listserv.models import BounceEvent, OutboxJob


def record_relay_bounces(session: Session, failures: Sequence[outbox.Failure]) -> list[BounceEvent]:
    """A member the relay refused (or we gave up on) becomes a bounce event; the events."""
    members = [f for f in failures if f.member_id is not None]
    if not members:
        return []
    job_lists = dict(
        session.execute(
            select(OutboxJob.id, OutboxJob.list_id).where(
                OutboxJob.id.in_({f.job_id for f in members})
            )
        ).all()
    )
    events = []
    for failure in members:
        kind = classify_smtp_reply(failure.code, failure.reply)
        if kind is None:
            continue
        try:
            key = normalise_address(failure.address)
        except InvalidAddress:
            key = failure.address.lower()
        events.append(
            record_bounce(
                session,
                list_id=job_lists.get(failure.job_id),
                member_id=failure.member_id,
                address=failure.address,
                address_key=key,
                kind=kind,
                source=BounceSource.RELAY,
                status=str(failure.code),
                diagnostic=failure.reply,
            )
        )
    return events
