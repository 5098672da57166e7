# SPDX-License-Identifier: Apache-2.0
"""Abuse limits: count requests per key in a sliding window, in the database.

Keys name what is limited: `confirm-to:<address>` (confirmation mails one
address may receive, so nobody can use us to mail-bomb a third party) and
`request-from:<address>` (requests one sender may make). Counting rows keeps
the limit correct across restarts and across hosts sharing PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from listserv.models import RateEvent

RATE_EVENTS = cast(Table, RateEvent.__table__)
# Built once: every join and every post asks, so building the statement each
# time cost more than running it.
_COUNT = select(func.count()).where(
    RATE_EVENTS.c.key == bindparam("key"), RATE_EVENTS.c.at > bindparam("since")
)
_COUNT_ONE = insert(RATE_EVENTS)


def count(session: Session, key: str, window: timedelta, now: datetime) -> int:
    # On the session's connection: no ORM object holds a rate event, so nothing to flush first.
    found = session.connection().execute(_COUNT, {"key": key, "since": now - window})
    return int(found.scalar() or 0)


def note(session: Session, key: str, now: datetime) -> None:
    """Count one event under `key`, whatever the count (a wrong code still counts)."""
    session.connection().execute(_COUNT_ONE, {"key": key, "at": now})


def allow(session: Session, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """Count one more request under `key`; False (and nothing counted) past the limit."""
    if count(session, key, window, now) >= limit:
        return False
    note(session, key, now)
    return True


def prune(session: Session, older_than: datetime) -> int:
    result = session.execute(delete(RateEvent).where(RateEvent.at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)
