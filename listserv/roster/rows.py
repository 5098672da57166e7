# SPDX-License-Identifier: Apache-2.0
"""Roster rows: finding, adding, removing and changing one member, with history and audit.

Every change writes the `members` row, an append-only `membership_events`
row (so "who was a member when this message went out" stays answerable after
people leave) and an audit entry. The acts (and the bounce stage, acting as
the system) all come through here, so no path changes membership without a
record; permission is the acts' business, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from listserv import audit
from listserv.actors import Actor
from listserv.eligibility import InvalidAddress, normalise_address
from listserv.mailbox import canonical_address
from listserv.models import (
    DeliveryMode,
    DeliveryStatus,
    MailingList,
    Member,
    MembershipChange,
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
    session: Session, mlist: MailingList, address: str, role: Role = Role.MEMBER
) -> Member | None:
    params = {"list_id": mlist.id, "key": address_key(address), "role": role}
    return session.scalar(_FIND_MEMBER, params)


# Built once: asked for every join, leave, command and post.
_FIND_MEMBER = select(Member).where(
    Member.list_id == bindparam("list_id"),
    Member.address_key == bindparam("key"),
    Member.role == bindparam("role"),
)


def roles_of(session: Session, mlist: MailingList, address: str) -> set[Role]:
    return set(
        session.scalars(
            select(Member.role).where(
                Member.list_id == mlist.id, Member.address_key == address_key(address)
            )
        )
    )


def _event(
    session: Session,
    member: Member,
    event: MembershipChange,
    actor: Actor,
    at: datetime,
    previous_key: str = "",
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
            actor=actor.address[:320],
            channel=actor.channel,
            at=at,
            previous_address_key=previous_key,
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
    role: Role = Role.MEMBER,
    actor: Actor,
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
        address=canonical_address(address),
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
    _event(session, member, MembershipChange.JOIN, actor, now)
    audit.record_act(
        session,
        actor,
        "member-add" if role == Role.MEMBER else f"{role}-add",
        list_name=mlist.name,
        target=member.address,
        source=source,
        detail={"after": snapshot(member)},
        at=now,
    )
    return member


def remove_member(
    session: Session,
    mlist: MailingList,
    member: Member,
    *,
    actor: Actor,
    source: str = "",
    reason: str = "",
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    before = snapshot(member)
    _event(session, member, MembershipChange.LEAVE, actor, now)
    audit.record_act(
        session,
        actor,
        "member-remove" if member.role == Role.MEMBER else f"{member.role}-remove",
        list_name=mlist.name,
        target=member.address,
        source=source,
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
    actor: Actor,
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
    _event(session, member, MembershipChange.CHANGE, actor, now)
    audit.record_act(
        session,
        actor,
        "member-change",
        list_name=mlist.name,
        target=member.address,
        source=source,
        detail={"before": before, "after": snapshot(member)},
        at=now,
    )
    return changed


def move_member(
    session: Session,
    mlist: MailingList,
    member: Member,
    new_address: str,
    *,
    actor: Actor,
    source: str = "",
    now: datetime | None = None,
) -> str:
    """Give a member row a new address, keeping the row (settings, id, history); old key back.

    The history's `address` event names both keys, so the member's past reads
    through the change; the caller has checked the new address may join.
    """
    now = now or utcnow()
    before = snapshot(member)
    old_key = member.address_key
    member.address = canonical_address(new_address)
    member.address_key = address_key(new_address)
    session.flush()
    _event(session, member, MembershipChange.ADDRESS, actor, now, previous_key=old_key)
    audit.record_act(
        session,
        actor,
        "member-address-change",
        list_name=mlist.name,
        target=member.address,
        source=source,
        detail={"before": before, "after": snapshot(member), "previous_address_key": old_key},
        at=now,
    )
    return old_key


def members(session: Session, mlist: MailingList, role: Role | None = None) -> Sequence[Member]:
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

    Streaming keeps a 1,000,000-member roster out of memory. The pages are read on
    the session's connection as Core rows (the ORM's result machinery took half as
    long again for the same rows), after one flush so the transaction's own roster
    changes are seen.
    """
    session.flush()
    conn = session.connection()
    query = (
        select(Member.id, Member.address, Member.unsubscribe_nonce)
        .where(
            Member.list_id == list_id,
            Member.role == Role.MEMBER,
            Member.delivery_mode == DeliveryMode.REGULAR,
            Member.delivery_status == DeliveryStatus.ENABLED,
            Member.id > bindparam("last_id"),
        )
        .order_by(Member.id)
        .limit(batch)
    )
    last_id = 0
    while True:
        rows = conn.execute(query, {"last_id": last_id}).all()
        if not rows:
            return
        yield [(r[0], r[1], r[2]) for r in rows]
        last_id = rows[-1][0]
