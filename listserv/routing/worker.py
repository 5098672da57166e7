# SPDX-License-Identifier: Apache-2.0
"""The processing worker: claims stored messages in rounds and keeps its leases alive.

It runs `processing.process_pending` in a thread, round after round while
messages wait, and sleeps until intake says something arrived (or two seconds
pass). A heartbeat renews its leases every third of the lease while it holds
any, so a slow message (a post to a large list) is never taken over by another
host. At start it takes back the leases it held before a crash; at stop it hands
back what it still holds; while idle it says once when another worker's leases
have stopped being renewed, since those messages wait until they run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from listserv.config import Settings
from listserv.db import reader_of
from listserv.leasing import LEASE, LeaseLog
from listserv.models import utcnow
from listserv.routing.claiming import inbound_held_by_others, renew_inbound, take_back_inbound
from listserv.routing.processing import process_pending
from listserv.templates import Templates

log = logging.getLogger("listserv.processing")

#: While mail arrives: messages per round and seconds per transaction, kept small
#: because intake waits for SQLite's one writer while a transaction runs.
BUSY_ROUND = 10
BUSY_BUDGET = 0.04
#: How recent the last arrival must be to count as "mail is arriving". Longer than a
#: quiet batch by far: while a long batch holds the writer, intake stores nothing,
#: and a shorter window would read that as the end of the burst and keep batches long.
ARRIVING = 1.0


class ProcessingWorker:
    """One per service: claims inbound messages as `worker_id` and processes them."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        templates: Templates,
        worker_id: str,
        *,
        lease: timedelta = LEASE,
        round_size: int = 100,
        budget: float = 0.25,
        on_processed: Callable[[], None] | None = None,
        last_arrival: Callable[[], float] | None = None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.templates = templates
        self.worker_id = worker_id
        self.lease = lease
        self.round_size = round_size
        self.budget = budget
        self.on_processed = on_processed
        self.last_arrival = last_arrival
        self.lease_log = LeaseLog(lease)
        self._busy = False
        self._watched_at = 0.0

    async def run(self, stopping: asyncio.Event, wakeup: asyncio.Event) -> None:
        taken = await asyncio.to_thread(self._take_back)
        if taken:
            log.info("took back %d inbound leases %s held before it stopped", taken, self.worker_id)
        heartbeat = asyncio.create_task(self._heartbeat(), name="processing-leases")
        try:
            while not stopping.is_set():
                await _wait(wakeup, 2.0)
                wakeup.clear()
                await self._drain(stopping)
                await asyncio.to_thread(self._watch_others)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await asyncio.shield(asyncio.to_thread(self._hand_back))

    async def _drain(self, stopping: asyncio.Event) -> None:
        """Process rounds until nothing waits that this worker may take.

        While mail is arriving, rounds are small and transactions short (intake
        waits for SQLite's one writer while one runs); once it stops, batches grow
        to `budget` seconds, so a backlog is worked off with few commits.
        """
        while not stopping.is_set():
            arriving = self._arriving()
            self._busy = True
            try:
                n = await asyncio.to_thread(
                    process_pending,
                    self.factory,
                    self.settings,
                    self.templates,
                    BUSY_ROUND if arriving else self.round_size,
                    BUSY_ROUND if arriving else 50,
                    worker=self.worker_id,
                    lease=self.lease,
                    budget=BUSY_BUDGET if arriving else self.budget,
                )
            except Exception:  # the database is unreachable: retry, never stop
                log.exception("processing round failed; retrying shortly")
                await asyncio.sleep(1.0)
                return
            finally:
                self._busy = False
            if n and self.on_processed is not None:
                self.on_processed()
            if n == 0:
                return
            # Accepting comes first, as in Postfix: while mail is arriving,
            # processing leaves intake most of the time (in intake's process they
            # share the GIL; in every case SQLite's one writer) and catches up once
            # the burst is over.
            if self._arriving():
                await asyncio.sleep(0.3)

    def _arriving(self) -> bool:
        """Mail arrived in the last `ARRIVING` seconds (never, without `last_arrival`)."""
        return self.last_arrival is not None and time.monotonic() - self.last_arrival() < ARRIVING

    async def _heartbeat(self) -> None:
        every = max(self.lease.total_seconds() / 3, 0.2)
        while True:
            await asyncio.sleep(every)
            if self._busy:
                try:
                    await asyncio.to_thread(self._renew)
                except Exception:
                    log.exception("renewing inbound leases failed")

    def _renew(self) -> None:
        with self.factory() as session, session.begin():
            renew_inbound(session, self.worker_id, utcnow() + self.lease)

    def _take_back(self) -> int:
        now = utcnow()
        with self.factory() as session, session.begin():
            taken = take_back_inbound(session, self.worker_id, now)
            others = inbound_held_by_others(session, self.worker_id, now)
        self.lease_log.report(others, now, starting=True)
        self._watched_at = time.monotonic()
        return taken

    def _watch_others(self) -> None:
        if time.monotonic() - self._watched_at < self.lease.total_seconds() / 3:
            return
        self._watched_at = time.monotonic()
        now = utcnow()
        with reader_of(self.factory)() as session:
            others = inbound_held_by_others(session, self.worker_id, now)
        self.lease_log.report(others, now)

    def _hand_back(self) -> None:
        try:
            with self.factory() as session, session.begin():
                take_back_inbound(session, self.worker_id, utcnow())
        except Exception:
            log.exception("could not hand back inbound leases at stop")


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
