# SPDX-License-Identifier: Apache-2.0
"""The roster: adding, removing and changing members, with history and audit.

Every change writes the `members` row, an append-only `membership_events`
row (so "who was a member when this message went out" stays answerable after
people leave) and an audit entry. Callers (commands, CLI, web, bounces) all
come through here, so no path can change membership without a record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from listserv import audit
from listserv.eligibility import InvalidAddress, normalise_address
from listserv.models import (
    AuditEvent,
    DeliveryMode,
    DeliveryStatus,
    MailingList,
    Member,
    MembershipEvent,
    Role,
    utcnow,
)
from listserv.tokens import new_nonce


def address_key(address: str) -> str:
    """The lookup form of an address; falls back to lower case if it does not validate."""
    try:
        return normalise_address(address)
    except InvalidAddress:
        return address.strip().lower()


def find_member(
    session: Session, mlist: MailingList, address: str, role: str = Role.MEMBER
) -> Member | None:
    return session.scalar(
        select(Member).where(
            Member.list_id == mlist.id,
            Member.address_key == address_key(address),
            Member.role == role,
        )
    )


def roles_of(session: Session, mlist: MailingList, address: str) -> set[str]:
    return set(
        session.scalars(
            select(Member.role).where(
                Member.list_id == mlist.id, Member.address_key == address_key(address)
            )
        )
    )


def _event(
    session: Session, member: Member, event: str, actor: str, channel: str, at: datetime
) -> None:
    session.add(
        MembershipEvent(
            list_id=member.list_id,
            address=member.address,
            address_key=member.address_key,
            role=member.role,
            event=event,
            delivery_mode=member.delivery_mode,
            delivery_status=member.delivery_status,
            actor=actor,
            channel=channel,
            at=at,
        )
    )


def snapshot(member: Member) -> dict[str, Any]:
    return {
        "address": member.address,
        "name": member.display_name,
        "title": member.job_title,
        "role": member.role,
        "delivery_mode": member.delivery_mode,
        "delivery_status": member.delivery_status,
        "moderated": member.moderated,
    }


def add_member(
    session: Session,
    mlist: MailingList,
    address: str,
    *,
    name: str = "",
    title: str = "",
    role: str = Role.MEMBER,
    actor: str = "",
    channel: str = "email",
    auth: str = "",
    source: str = "",
    now: datetime | None = None,
) -> Member:
    """Add (or return the existing) member; the caller has checked eligibility."""
    now = now or utcnow()
    existing = find_member(session, mlist, address, role)
    if existing is not None:
        return existing
    member = Member(
        list_id=mlist.id,
        address=address.strip(),
        address_key=address_key(address),
        display_name=name.strip()[:200],
        job_title=title.strip()[:200],
        role=role,
        delivery_mode=DeliveryMode.REGULAR,
        delivery_status=DeliveryStatus.ENABLED,
        unsubscribe_nonce=new_nonce(),
        joined_at=now,
    )
    session.add(member)
    session.flush()
    _event(session, member, "join", actor, channel, now)
    audit.record(
        session,
        "member-add" if role == Role.MEMBER else f"{role}-add",
        channel=channel,
        list_name=mlist.name,
        actor=actor,
        target=member.address,
        source=source,
        auth=auth,
        detail={"after": snapshot(member)},
        at=now,
    )
    return member


def remove_member(
    session: Session,
    mlist: MailingList,
    member: Member,
    *,
    actor: str = "",
    channel: str = "email",
    auth: str = "",
    source: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    before = snapshot(member)
    _event(session, member, "leave", actor, channel, now)
    audit.record(
        session,
        "member-remove" if member.role == Role.MEMBER else f"{member.role}-remove",
        channel=channel,
        list_name=mlist.name,
        actor=actor,
        target=member.address,
        source=source,
        auth=auth,
        detail={"before": before, "reason": reason},
        at=now,
    )
    session.delete(member)
    session.flush()


def change_member(
    session: Session,
    mlist: MailingList,
    member: Member,
    changes: dict[str, Any],
    *,
    actor: str = "",
    channel: str = "email",
    auth: str = "",
    source: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Apply attribute changes; returns the ones that actually changed (before values)."""
    now = now or utcnow()
    before = snapshot(member)
    changed = {}
    for key, value in changes.items():
        if getattr(member, key) != value:
            changed[key] = getattr(member, key)
            setattr(member, key, value)
    if not changed:
        return {}
    session.flush()
    _event(session, member, "change", actor, channel, now)
    audit.record(
        session,
        "member-change",
        channel=channel,
        list_name=mlist.name,
        actor=actor,
        target=member.address,
        source=source,
        auth=auth,
        detail={"before": before, "after": snapshot(member)},
        at=now,
    )
    return changed


def members(session: Session, mlist: MailingList, role: str | None = None) -> Sequence[Member]:
    stmt = (
        select(Member).where(Member.list_id == mlist.id).order_by(Member.address_key, Member.role)
    )
    if role:
        stmt = stmt.where(Member.role == role)
    return session.scalars(stmt).all()


def iter_receiving_members(
    session: Session, list_id: int, batch: int = 2000
) -> Iterator[list[tuple[int, str, str]]]:
    """(id, address, unsubscribe nonce) of members who get regular posts, in keyset pages.

    Streaming keeps a 100,000-member roster out of memory.
    """
    last_id = 0
    while True:
        rows = session.execute(
            select(Member.id, Member.address, Member.unsubscribe_nonce)
            .where(
                Member.list_id == list_id,
                Member.role == Role.MEMBER,
                Member.delivery_mode == DeliveryMode.REGULAR,
                Member.delivery_status == DeliveryStatus.ENABLED,
                Member.id > last_id,
            )
            .order_by(Member.id)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield [(r[0], r[1], r[2]) for r in rows]
        last_id = rows[-1][0]


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
    result = [e for e in last.values() if e.event != "leave"]
    if receiving_only:
        result = [
            e
            for e in result
            if e.delivery_mode == DeliveryMode.REGULAR
            and e.delivery_status == DeliveryStatus.ENABLED
        ]
    return sorted(result, key=lambda e: e.address_key)


@dataclass(frozen=True, slots=True)
class NewMember:
    """One row for `add_members_bulk`: the address as given and its lookup key."""

    address: str
    key: str
    name: str = ""
    title: str = ""


def add_members_bulk(
    session: Session,
    mlist: MailingList,
    new_members: Iterable[NewMember],
    *,
    actor: str,
    channel: str,
    auth: str = "",
    source: str = "",
    now: datetime | None = None,
    audit_each: bool = True,
    summary: dict[str, Any] | None = None,
    batch: int = 5000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Add many members (role member) with executemany inserts; returns how many.

    The same records as `add_member` — a member row, a `join` history event
    and (with `audit_each`) a `member-add` audit row each — plus ONE
    `members-import` audit record carrying `summary`. Rows go in batches so
    memory stays flat for a 100,000-line import; columns that start empty
    (dates, password) are left to the database's NULL, which also spares
    their per-row type processing. The caller has checked
    eligibility and removed addresses already on the roster; a duplicate that
    slips through violates the unique constraint, and the caller's
    transaction (all or nothing) is rolled back.
    """
    now = now or utcnow()
    tables = Member.metadata.tables
    member_table = tables[Member.__tablename__]
    event_table = tables[MembershipEvent.__tablename__]
    audit_table = tables[AuditEvent.__tablename__]
    total = 0
    chunk: list[NewMember] = []

    def flush(rows: list[NewMember]) -> None:
        session.execute(
            insert(member_table),
            [
                {
                    "list_id": mlist.id,
                    "address": m.address,
                    "address_key": m.key,
                    "display_name": m.name[:200],
                    "job_title": m.title[:200],
                    "role": Role.MEMBER.value,
                    "delivery_mode": DeliveryMode.REGULAR.value,
                    "delivery_status": DeliveryStatus.ENABLED.value,
                    "moderated": False,
                    "conduct_note": "",
                    "unsubscribe_nonce": new_nonce(),
                    "bounce_score": 0.0,
                    "bounce_warnings_sent": 0,
                    "joined_at": now,
                }
                for m in rows
            ],
        )
        session.execute(
            insert(event_table),
            [
                {
                    "list_id": mlist.id,
                    "address": m.address,
                    "address_key": m.key,
                    "role": Role.MEMBER.value,
                    "event": "join",
                    "delivery_mode": DeliveryMode.REGULAR.value,
                    "delivery_status": DeliveryStatus.ENABLED.value,
                    "actor": actor[:320],
                    "channel": channel,
                    "at": now,
                }
                for m in rows
            ],
        )
        if audit_each:
            session.execute(
                insert(audit_table),
                [
                    {
                        "at": now,
                        "list_name": mlist.name,
                        "actor": actor[:320],
                        "action": "member-add",
                        "target": m.address[:998],
                        "channel": channel,
                        "source": source[:998],
                        "outcome": "ok",
                        "auth": auth,
                        "detail": {
                            "after": {
                                "address": m.address,
                                "name": m.name[:200],
                                "title": m.title[:200],
                                "role": Role.MEMBER.value,
                                "delivery_mode": DeliveryMode.REGULAR.value,
                                "delivery_status": DeliveryStatus.ENABLED.value,
                                "moderated": False,
                            },
                            "import": True,
                        },
                    }
                    for m in rows
                ],
            )

    for new in new_members:
        chunk.append(new)
        if len(chunk) >= batch:
            flush(chunk)
            total += len(chunk)
            chunk = []
            if on_batch is not None:
                on_batch(total)
    if chunk:
        flush(chunk)
        total += len(chunk)
        if on_batch is not None:
            on_batch(total)
    audit.record(
        session,
        "members-import",
        channel=channel,
        list_name=mlist.name,
        actor=actor,
        target=mlist.name,
        source=source,
        auth=auth,
        detail={**(summary or {}), "added": total},
        at=now,
    )
    session.flush()
    return total
