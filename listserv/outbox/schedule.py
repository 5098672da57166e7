# SPDX-License-Identifier: Apache-2.0
"""The retry schedule: when a deferred recipient is tried again, when it is given up,
and when the next try of anything in the outbox is due.

As in Postfix, a recipient the relay defers (4xx, or no answer) waits the first
backoff (one minute unless `delivery.retry_initial_seconds` says otherwise), then
twice that, four times … (capped at two hours), until the next try would fall
after the job's deadline; then it fails. A refusal (5xx) fails at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listserv.models import OutboxState
from listserv.outbox.tables import BATCHES, OPEN, RECIPIENTS

BACKOFF_START = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=2)


def backoff(attempts: int, start: timedelta = BACKOFF_START) -> timedelta:
    """start, 2×start, 4×start … after each failed attempt, capped at two hours."""
    delay: timedelta = start * int(2 ** max(attempts - 1, 0))
    return min(delay, max(BACKOFF_MAX, start))


def verdict(
    code: int, attempts: int, deadline: datetime | None, now: datetime, start: timedelta
) -> tuple[str, datetime]:
    """failed for a 5xx, or a 4xx/no answer when the next try would be past the deadline."""
    due = now + backoff(attempts, start)
    if code >= 500 or deadline is None or due > deadline:
        return OutboxState.FAILED.value, now
    return OutboxState.DEFERRED.value, due


def next_due(session: Session) -> datetime | None:
    """When the earliest queued or deferred recipient or batch becomes due."""
    times = [
        session.scalar(select(func.min(table.c.next_attempt_at)).where(table.c.state.in_(OPEN)))
        for table in (RECIPIENTS, BATCHES)
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None
