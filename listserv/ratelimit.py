# SPDX-License-Identifier: Apache-2.0
"""Abuse limits: count requests per key in a sliding window, in the database.

Keys name what is limited: `confirm-to:<address>` (confirmation mails one
address may receive, so nobody can use us to mail-bomb a third party) and
`request-from:<address>` (requests one sender may make). Counting rows keeps
the limit correct across restarts and across hosts sharing PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from listserv.models import RateEvent


def count(session: Session, key: str, window: timedelta, now: datetime) -> int:
    stmt = select(func.count()).where(RateEvent.key == key, RateEvent.at > now - window)
    return int(session.scalar(stmt) or 0)


def allow(session: Session, key: str, limit: int, window: timedelta, now: datetime) -> bool:
    """Count one more request under `key`; False (and nothing counted) past the limit."""
    if count(session, key, window, now) >= limit:
        return False
    session.add(RateEvent(key=key, at=now))
    return True


def prune(session: Session, older_than: datetime) -> int:
    result = session.execute(delete(RateEvent).where(RateEvent.at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)
