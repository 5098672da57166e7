# SPDX-License-Identifier: Apache-2.0
"""The membership history: who was a member at a given moment.

Federal records rules need the recipients of any list message to stay
identifiable after members leave, so `members_at` replays the append-only
`membership_events` rather than reading today's roster.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv.models import (
    DeliveryMode,
    DeliveryStatus,
    MailingList,
    MembershipChange,
    MembershipEvent,
    Role,
)


def members_at(
    session: Session, mlist: MailingList, at: datetime, *, receiving_only: bool = True
) -> list[MembershipEvent]:
    """Who was a member (role member) at `at`, replayed from the history.

    The last event per address at or before `at` says whether they were in,
    and with what delivery settings.
    """
    events = session.scalars(
        select(MembershipEvent)
        .where(
            MembershipEvent.list_id == mlist.id,
            MembershipEvent.role == Role.MEMBER,
            MembershipEvent.at <= at,
        )
        .order_by(MembershipEvent.at, MembershipEvent.id)
    )
    last: dict[str, MembershipEvent] = {}
    for event in events:
        last[event.address_key] = event
    result = [e for e in last.values() if e.event != MembershipChange.LEAVE]
    if receiving_only:
        result = [
            e
            for e in result
            if e.delivery_mode == DeliveryMode.REGULAR
            and e.delivery_status == DeliveryStatus.ENABLED
        ]
    return sorted(result, key=lambda e: e.address_key)
