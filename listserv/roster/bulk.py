# SPDX-License-Identifier: Apache-2.0
"""Adding a whole roster at once: the same records as one member at a time, in batches.

An import of 100,000 addresses must not cost 100,000 ORM round trips, so the
member rows, their `join` history events, their audit rows and the
`member.joined` webhook deliveries go in with executemany inserts, a batch
at a time, in the caller's one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from listserv import audit
from listserv.actors import Actor
from listserv.models import (
    AuditEvent,
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
from listserv.webhooks import events as webhook_events

#: An import this large refreshes PostgreSQL's statistics of the roster table.
ANALYZE_AFTER = 10_000


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
    actor: Actor,
    source: str = "",
    now: datetime | None = None,
    audit_each: bool = True,
    summary: dict[str, Any] | None = None,
    batch: int = 5000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Add many members (role member) with executemany inserts; returns how many.

    The same records as `add_member` — a member row, a `join` history event,
    a `member.joined` delivery for each listening webhook (with or without
    `audit_each`) and (with `audit_each`) a `member-add` audit row each — plus ONE
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
    hooks = webhook_events.listeners(session, webhook_events.MEMBER_JOINED, mlist.name)

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
                    "event": MembershipChange.JOIN.value,
                    "delivery_mode": DeliveryMode.REGULAR.value,
                    "delivery_status": DeliveryStatus.ENABLED.value,
                    "actor": actor.address[:320],
                    "channel": actor.channel.value,
                    "at": now,
                }
                for m in rows
            ],
        )
        webhook_events.queue_many(
            session,
            hooks,
            webhook_events.MEMBER_JOINED,
            mlist.name,
            ({"address": m.address[:998], "name": m.name[:200]} for m in rows),
            now,
        )
        if audit_each:
            session.execute(
                insert(audit_table),
                [
                    {
                        "at": now,
                        "list_name": mlist.name,
                        "actor": actor.address[:320],
                        "action": "member-add",
                        "target": m.address[:998],
                        "channel": actor.channel.value,
                        "source": source[:998],
                        "outcome": "ok",
                        "auth": actor.auth.value,
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
    audit.record_act(
        session,
        actor,
        "members-import",
        list_name=mlist.name,
        target=mlist.name,
        source=source,
        detail={**(summary or {}), "added": total},
        at=now,
    )
    session.flush()
    if total >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # PostgreSQL's planner would go on believing the list is small until
        # autovacuum comes by, and sort the whole roster before its first row
        # instead of reading the (list_id, address_key, role) index in order.
        session.execute(text(f"ANALYZE {member_table.name}"))
    return total
