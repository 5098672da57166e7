# SPDX-License-Identifier: Apache-2.0
"""The membership history: who was a member at a given moment.

Federal records rules need the recipients of any list message to stay
identifiable after members leave, so `members_at` replays the append-only
`membership_events` rather than reading today's roster. A member who changed
their address is one member with two keys: the `address` event names the old
one, so the replay moves them instead of counting both, and `member_history`
reads back through every address they had.
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
        if event.event == MembershipChange.ADDRESS:
            last.pop(event.previous_address_key, None)
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


def address_keys(session: Session, mlist: MailingList, key: str, role: Role) -> list[str]:
    """Every key one member has had on a list, newest first, following `address` events back."""
    keys = [key]
    while True:
        previous = session.scalars(
            select(MembershipEvent.previous_address_key)
            .where(
                MembershipEvent.list_id == mlist.id,
                MembershipEvent.role == role,
                MembershipEvent.event == MembershipChange.ADDRESS,
                MembershipEvent.address_key == keys[-1],
                MembershipEvent.previous_address_key != "",
            )
            .order_by(MembershipEvent.at.desc(), MembershipEvent.id.desc())
        ).first()
        if previous is None or previous in keys:
            return keys
        keys.append(previous)


def member_history(
    session: Session, mlist: MailingList, key: str, role: Role = Role.MEMBER
) -> list[MembershipEvent]:
    """One member's events on a list, oldest first, under every address they have had."""
    return list(
        session.scalars(
            select(MembershipEvent)
            .where(
                MembershipEvent.list_id == mlist.id,
                MembershipEvent.role == role,
                MembershipEvent.address_key.in_(address_keys(session, mlist, key, role)),
            )
            .order_by(MembershipEvent.at, MembershipEvent.id)
        )
    )


def previous_keys(session: Session, mlist: MailingList, at: datetime) -> dict[str, str]:
    """For each member who changed address by `at`: their key then → the key they had before."""
    moves = session.execute(
        select(MembershipEvent.address_key, MembershipEvent.previous_address_key)
        .where(
            MembershipEvent.list_id == mlist.id,
            MembershipEvent.event == MembershipChange.ADDRESS,
            MembershipEvent.at <= at,
        )
        .order_by(MembershipEvent.at, MembershipEvent.id)
    ).all()
    return {new: old for new, old in moves}
