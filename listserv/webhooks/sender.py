# SPDX-License-Identifier: Apache-2.0
"""The webhook delivery loop: claim due rows, POST each signed, settle it with the answer.

A row is leased before it is sent (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
so several hosts share the queue), and a lease a dead process left expires
and is claimed again. A 2xx answer settles the row as sent; anything else — a
refused connection, a timeout, a 4xx or 5xx — defers it with doubling
backoff (at most an hour apart) until three days after the event, when it is
given up as failed. A receiver may therefore see an event twice (a crash
between its 2xx and our commit); `Listserv-Event-Id` lets it drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from listserv import __version__, db
from listserv.models import OutboxState, Webhook, WebhookDelivery, utcnow
from listserv.webhooks.signing import HEADER, signature

log = logging.getLogger("listserv.webhooks")

BACKOFF_START = timedelta(seconds=10)
BACKOFF_MAX = timedelta(hours=1)
LEASE = timedelta(seconds=60)
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Due:
    id: int
    url: str
    secret: str
    event: str
    event_id: str
    body: bytes
    attempts: int


def backoff(attempts: int, start: timedelta = BACKOFF_START) -> timedelta:
    """The wait after the n-th failed attempt: start, doubling, at most an hour."""
    wait: timedelta = start * (2 ** max(0, attempts - 1))
    return min(wait, BACKOFF_MAX)


def _due(now: datetime) -> Select[int]:
    return select(WebhookDelivery.id).where(
        or_(
            WebhookDelivery.state.in_((OutboxState.QUEUED, OutboxState.DEFERRED)),
            (WebhookDelivery.state == OutboxState.ACTIVE) & (WebhookDelivery.lease_until < now),
        ),
        WebhookDelivery.next_attempt_at <= now,
    )


def any_due(session: Session, now: datetime) -> bool:
    """Whether a claim would find work (asked in a reader session, which takes no lock)."""
    return session.scalar(_due(now).limit(1)) is not None


def claim_due(session: Session, now: datetime, limit: int = 50) -> list[Due]:
    """Lease up to `limit` due deliveries (queued, deferred, or a dead worker's)."""
    wanted = _due(now).order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        wanted = wanted.with_for_update(skip_locked=True)
    ids = list(session.scalars(wanted))
    if not ids:
        return []
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .values(state=OutboxState.ACTIVE, lease_until=now + LEASE)
    )
    rows = session.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.id)
    ).all()
    return [Due(d.id, w.url, w.secret, d.event, d.event_id, d.body, d.attempts) for d, w in rows]


def settle(
    session: Session,
    delivery_id: int,
    status: int | None,
    error: str,
    now: datetime,
    start: timedelta = BACKOFF_START,
) -> OutboxState | None:
    """Record one attempt's answer: sent on 2xx, else deferred or (past three days) failed."""
    row = session.get(WebhookDelivery, delivery_id)
    if row is None:  # the webhook was removed meanwhile
        return None
    row.attempts += 1
    row.last_status = status
    row.last_error = error[:1000]
    row.last_attempt_at = now
    row.lease_until = None
    if status is not None and 200 <= status < 300:
        row.state = OutboxState.SENT
        row.delivered_at = now
    elif now >= row.expires_at:
        row.state = OutboxState.FAILED
    else:
        row.state = OutboxState.DEFERRED
        row.next_attempt_at = min(now + backoff(row.attempts, start), row.expires_at)
    return row.state


class WebhookSender:
    """Runs in the service's loop; database work in threads, POSTs on the loop."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        backoff_start: timedelta = BACKOFF_START,
        poll_seconds: float = 0.5,
        concurrency: int = 8,
    ) -> None:
        self.factory = factory
        self.reader = db.reader_of(factory)
        self.backoff_start = backoff_start
        self.poll_seconds = poll_seconds
        self.slots = asyncio.Semaphore(concurrency)

    def _claim(self) -> list[Due]:
        # Polled twice a second: look with a reader first, so an idle poll never
        # takes SQLite's writer lock from intake.
        with self.reader() as session:
            if not any_due(session, utcnow()):
                return []
        with db.session_scope(self.factory) as session:
            return claim_due(session, utcnow())

    def _settle(self, delivery_id: int, status: int | None, error: str) -> None:
        with db.session_scope(self.factory) as session:
            settle(session, delivery_id, status, error, utcnow(), self.backoff_start)

    async def _post(self, client: httpx.AsyncClient, due: Due) -> None:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": f"listserv/{__version__}",
            HEADER: signature(due.secret, timestamp, due.body),
            "Listserv-Event": due.event,
            "Listserv-Event-Id": due.event_id,
            "Listserv-Delivery": str(due.id),
        }
        status: int | None = None
        error = ""
        async with self.slots:
            try:
                response = await client.post(due.url, content=due.body, headers=headers)
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:1000]
        await asyncio.to_thread(self._settle, due.id, status, error)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """One round: every due delivery attempted once; how many were attempted."""
        claimed = await asyncio.to_thread(self._claim)
        if claimed:
            await asyncio.gather(*(self._post(client, due) for due in claimed))
        return len(claimed)

    async def run(self, stopping: asyncio.Event) -> None:
        timeout = httpx.Timeout(TIMEOUT_SECONDS)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            while not stopping.is_set():
                try:
                    attempted = await self.deliver_due(client)
                except Exception:  # the database is unreachable: retry, never stop
                    log.exception("webhook round failed; retrying shortly")
                    attempted = 0
                if not attempted:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), self.poll_seconds)
