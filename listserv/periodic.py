# SPDX-License-Identifier: Apache-2.0
"""Periodic housekeeping the service runs while it serves, in one visible list.

Each job is a plain function over a `Context` that returns how much it did;
`HOUSEKEEPING` names them with their interval, and a `Housekeeper` runs each
in its own loop, one transaction per round, for as long as the service runs.
With several hosts, one round of a job runs at a time (`leasing.hold_round`).
Expired confirmations are marked expired (kept for the record, not deleted),
and old rate counters, web sessions and sign-in links are pruned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from listserv import (
    bounces,
    conduct,
    db,
    digests,
    owner_notices,
    postfix_maps,
    ratelimit,
    signin,
    staff_notices,
)
from listserv.api import idempotency
from listserv.config import Settings
from listserv.context import Context
from listserv.leasing import hold_round
from listserv.models import PendingRequest, RequestStatus, utcnow
from listserv.records import retention
from listserv.templates import Templates
from listserv.webhooks import events as webhook_events

log = logging.getLogger("listserv.periodic")


def expire_requests(ctx: Context) -> int:
    result = ctx.session.execute(
        update(PendingRequest)
        .where(PendingRequest.status == RequestStatus.PENDING, PendingRequest.expires_at <= ctx.now)
        .values(status=RequestStatus.EXPIRED, resolved_at=ctx.now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune_rate_counters(ctx: Context) -> int:
    return ratelimit.prune(ctx.session, ctx.now - timedelta(days=2))


def prune_sign_ins(ctx: Context) -> int:
    return signin.prune(ctx.session, ctx.now)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Context], int]
    every: timedelta


#: Every periodic job, in the order they first run.
HOUSEKEEPING: list[Job] = [
    Job("expire-requests", expire_requests, timedelta(minutes=10)),
    Job("prune-rate-counters", prune_rate_counters, timedelta(hours=1)),
    Job("bounces", bounces.housekeeping, timedelta(minutes=15)),
    Job("lift-conduct", conduct.lift_expired, timedelta(minutes=5)),
    Job("retention", retention.apply_retention, timedelta(hours=1)),
    Job("digests", digests.send_digests, timedelta(minutes=10)),
    Job("owner-summaries", owner_notices.send_summaries, timedelta(minutes=10)),
    Job("postfix-maps", postfix_maps.refresh, timedelta(minutes=1)),
    Job("prune-sign-ins", prune_sign_ins, timedelta(hours=1)),
    Job("staff-notices", staff_notices.send_due_notices, timedelta(minutes=1)),
    Job("prune-idempotent-answers", idempotency.prune, timedelta(hours=1)),
    Job("prune-webhook-deliveries", webhook_events.prune_deliveries, timedelta(hours=6)),
]


@dataclass(frozen=True)
class Housekeeper:
    """What the jobs need from the running service: the database, settings and templates."""

    factory: sessionmaker[Session]
    settings: Settings
    templates: Templates

    def once(self, job: Job) -> int:
        """One round of a job in one transaction, at the current time."""
        with db.session_scope(self.factory) as session:
            if not hold_round(session, job.name):
                return 0  # another host is running this round
            ctx = Context(
                session=session,
                settings=self.settings,
                templates=self.templates,
                now=utcnow(),
                source=f"periodic:{job.name}",
            )
            return job.run(ctx)

    async def run(self, job: Job, stopping: asyncio.Event) -> None:
        """Run a job every interval until the service stops; a failed round is logged and retried."""
        while not stopping.is_set():
            try:
                count = await asyncio.to_thread(self.once, job)
                if count:
                    log.info("%s: %d", job.name, count)
            except Exception:
                log.exception("periodic job %s failed", job.name)
            try:
                await asyncio.wait_for(stopping.wait(), job.every.total_seconds())
            except TimeoutError:
                pass
