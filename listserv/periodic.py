# SPDX-License-Identifier: Apache-2.0
"""Periodic housekeeping the service runs while it serves, in one visible list.

Each job is a plain function over a session and the time; `PERIODIC_JOBS`
wraps them in loops that `app.Service` starts. Expired confirmations are
marked expired (kept for the record, not deleted), and old rate counters
are pruned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.orm import Session

from listserv import bounces, conduct, db, digests, ratelimit, retention
from listserv.models import PendingRequest, RequestStatus, utcnow

if TYPE_CHECKING:
    from listserv.app import Service

log = logging.getLogger("listserv.periodic")


def expire_requests(session: Session, now: datetime) -> int:
    result = session.execute(
        update(PendingRequest)
        .where(PendingRequest.status == RequestStatus.PENDING, PendingRequest.expires_at <= now)
        .values(status=RequestStatus.EXPIRED, resolved_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune_rate_counters(session: Session, now: datetime) -> int:
    return ratelimit.prune(session, now - timedelta(days=2))


#: (name, function, interval) — functions take (session, now) and return a count.
HOUSEKEEPING: list[tuple[str, Callable[[Session, datetime], int], timedelta]] = [
    ("expire-requests", expire_requests, timedelta(minutes=10)),
    ("prune-rate-counters", prune_rate_counters, timedelta(hours=1)),
    ("bounces", bounces.housekeeping, timedelta(minutes=15)),
    ("lift-conduct", conduct.lift_expired, timedelta(minutes=5)),
    ("retention", retention.apply_retention, timedelta(hours=1)),
    ("digests", digests.send_digests, timedelta(minutes=10)),
]


def _loop(
    name: str, job: Callable[[Session, datetime], int], every: timedelta
) -> Callable[[Service], Awaitable[None]]:
    async def run(service: Service) -> None:
        while not service.stopping.is_set():
            try:
                count = await asyncio.to_thread(_once, service, job)
                if count:
                    log.info("%s: %d", name, count)
            except Exception:
                log.exception("periodic job %s failed", name)
            try:
                await asyncio.wait_for(service.stopping.wait(), every.total_seconds())
            except TimeoutError:
                pass

    run.__name__ = name
    return run


def _once(service: Service, job: Callable[[Session, datetime], int]) -> int:
    with db.session_scope(service.factory) as session:
        session.info.update(settings=service.settings, templates=service.templates)
        return job(session, utcnow())


PERIODIC_JOBS: list[Callable[[Service], Awaitable[None]]] = [
    _loop(name, job, every) for name, job, every in HOUSEKEEPING
]
