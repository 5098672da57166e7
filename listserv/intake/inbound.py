# SPDX-License-Identifier: Apache-2.0
"""The inbound queue: messages intake accepted, waiting to be processed.

Intake calls `InboundWriter.store()`, which returns only after the row is
committed; concurrent sessions are committed together (group commit), so
durability costs one fsync per batch rather than per message. The processing
stage claims `received` rows in id order; a row stays `received` until the
transaction that processed it commits, so a crash anywhere means "process it
again", never "lost".
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from listserv.models import InboundMessage, InboundStatus, utcnow

log = logging.getLogger("listserv.inbound")


@dataclass(frozen=True)
class Arrival:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    peer: str


class InboundWriter:
    """Group-commits arrivals in a thread of its own; `store()` awaits the commit."""

    def __init__(
        self, factory: sessionmaker[Session], on_stored: Callable[[], None] | None = None
    ) -> None:
        self._factory = factory
        self._on_stored = on_stored
        self._pending: list[tuple[Arrival, asyncio.Future[int], asyncio.AbstractEventLoop]] = []
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="inbound-writer", daemon=True)
        self._thread.start()

    async def store(self, arrival: Arrival) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._lock:
            if self._stopping:
                raise RuntimeError("inbound writer is stopped")
            self._pending.append((arrival, future, loop))
        self._wakeup.set()
        return await future

    def close(self) -> None:
        with self._lock:
            self._stopping = True
        self._wakeup.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            with self._lock:
                batch, self._pending = self._pending, []
                self._wakeup.clear()
                stopping = self._stopping
            if batch:
                self._write(batch)
            if stopping and not batch:
                return

    def _write(
        self, batch: Sequence[tuple[Arrival, asyncio.Future[int], asyncio.AbstractEventLoop]]
    ) -> None:
        try:
            ids = write_arrivals(self._factory, [arrival for arrival, _, _ in batch])
        except Exception as exc:  # the database is down or full: each client gets 451
            log.exception("could not store %d inbound messages", len(batch))
            for _, future, loop in batch:
                loop.call_soon_threadsafe(_set_exception, future, exc)
            return
        for (_, future, loop), row_id in zip(batch, ids, strict=True):
            loop.call_soon_threadsafe(_set_result, future, row_id)
        if self._on_stored is not None:
            self._on_stored()


def _set_result(future: asyncio.Future[int], value: int) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[int], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def write_arrivals(factory: sessionmaker[Session], arrivals: Sequence[Arrival]) -> list[int]:
    """Insert and commit; the ids are returned only once the commit succeeded."""
    now = utcnow()
    with factory() as session, session.begin():
        rows = [
            {
                "mail_from": a.mail_from,
                "rcpt_tos": list(a.rcpt_tos),
                "raw": a.raw,
                "size": len(a.raw),
                "peer": a.peer,
                "received_at": now,
                "status": InboundStatus.RECEIVED,
            }
            for a in arrivals
        ]
        result = session.execute(
            insert(InboundMessage).returning(InboundMessage.id, sort_by_parameter_order=True), rows
        )
        ids = [row_id for (row_id,) in result]
    return ids


def unprocessed_ids(session: Session, limit: int = 100) -> list[int]:
    """Oldest accepted messages not yet processed (including any left by a crash)."""
    query = (
        select(InboundMessage.id)
        .where(InboundMessage.status == InboundStatus.RECEIVED)
        .order_by(InboundMessage.id)
        .limit(limit)
    )
    return list(session.scalars(query))
