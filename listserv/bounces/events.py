# SPDX-License-Identifier: Apache-2.0
"""The one writer of bounce events, whoever learnt of the failure.

A failure reaches us four ways — a DSN at the plain bounces address, a bounce
at a member's VERP address, a probe's return path, and the relay's own 5xx
while we deliver — and each becomes the same `bounce_events` row, scored later
by `scoring.py`. Writing it here once keeps the truncation and the fields the
same for all four.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy.orm import Session

from listserv.models import BounceEvent


class BounceSource(enum.StrEnum):
    """How a failure reached us (stored in `bounce_events.source`)."""

    DSN = "dsn"  # a delivery status notification at LIST-bounces@
    VERP = "verp"  # a bounce at LIST-bounces+member=domain@
    PROBE = "probe"  # a probe's one-off return path, or the relay refusing the probe
    RELAY = "relay"  # the relay's final refusal while we delivered


#: The `kind` of a bounce-shaped message nobody could read, kept for the owners.
UNRECOGNISED = "unrecognised"


def record_bounce(
    session: Session,
    *,
    list_id: int | None,
    member_id: int | None,
    address: str,
    address_key: str,
    kind: str,
    source: BounceSource,
    status: str = "",
    diagnostic: str = "",
    inbound_id: int | None = None,
    processed: bool = False,
    at: datetime | None = None,
) -> BounceEvent:
    """Add one bounce event (unprocessed unless said otherwise) to the session."""
    event = BounceEvent(
        list_id=list_id,
        member_id=member_id,
        address=address[:320],
        address_key=address_key[:320],
        kind=str(kind),
        source=str(source),
        status_code=status[:16],
        diagnostic=diagnostic[:2000],
        inbound_id=inbound_id,
        processed=processed,
    )
    if at is not None:
        event.at = at
    session.add(event)
    return event
