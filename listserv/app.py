# SPDX-License-Identifier: Apache-2.0
"""The one process `listserv serve` runs: intake, workers and web on one loop.

This is the thin layer that wires the stages together; no stage imports
another's runtime. Start-up order matters: migrate, seed lists from the
configuration, then process whatever an earlier run accepted but did not
finish, and only then open the SMTP/LMTP port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from listserv import lists, periodic
from listserv.config import Settings
from listserv.delivery import (
    DeliveryWorker,
    MaildirRelay,
    Personalizer,
    Relay,
    Signer,
    SMTPRelay,
    make_personalizer,
)
from listserv.intake import InboundWriter, IntakeHandler, KnownLists, server_factory
from listserv.routing.processing import process_pending
from listserv.signing import make_signer
from listserv.startup import make_templates, prepare_database
from listserv.templates import Templates
from listserv.web.server import start_web

log = logging.getLogger("listserv")


def make_relay(settings: Settings) -> Relay:
    d = settings.delivery
    if d.transport == "smtp":
        return SMTPRelay(
            d.relay_host,
            d.relay_port,
            starttls=d.relay_starttls,
            username=d.relay_username,
            password=d.relay_password.get(),
            connections=d.connections,
            helo_name=settings.site.domain,
        )
    return MaildirRelay(d.maildir)


@dataclass
class Service:
    """The running parts, so tests can start and stop a real service in-process."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    templates: Templates
    relay: Relay
    web: bool = False
    #: False runs intake (and web) only: another process does the work.
    workers: bool = True
    personalizer: Personalizer | None = None
    signer: Signer | None = None
    servers: list[asyncio.AbstractServer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    writer: InboundWriter | None = None
    inbound_ready: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    smtp_port: int = 0
    last_arrival: float = 0.0
    web_port: int = 0
    #: The periodic jobs this process runs (with `workers`): periodic.HOUSEKEEPING.
    housekeeping: list[periodic.Job] = field(default_factory=list)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def stored() -> None:
            self.last_arrival = time.monotonic()
            loop.call_soon_threadsafe(self.inbound_ready.set)

        self.writer = InboundWriter(self.factory, on_stored=stored)
        known = KnownLists(lambda: _list_names(self.factory))
        handler = IntakeHandler(
            self.writer,
            known,
            self.settings.site.domains,
            self.settings.site.command_address,
            lmtp=self.settings.smtp.lmtp,
        )
        if self.workers:
            # Anything a previous run accepted but did not finish goes first.
            self.inbound_ready.set()
            self.tasks.append(asyncio.create_task(self._processing_loop(), name="processing"))
            self.tasks.append(asyncio.create_task(self._delivery_loop(), name="delivery"))
            keeper = periodic.Housekeeper(self.factory, self.settings, self.templates)
            for job in self.housekeeping:
                self.tasks.append(
                    asyncio.create_task(keeper.run(job, self.stopping), name=job.name)
                )
        server = await loop.create_server(
            server_factory(handler, self.settings.smtp.max_message_size, self.settings.site.domain),
            host=self.settings.smtp.host,
            port=self.settings.smtp.port,
            reuse_address=True,
        )
        self.servers.append(server)
        self.smtp_port = server.sockets[0].getsockname()[1]
        if self.web:
            await self._start_web()
        log.info(
            "listening for %s on %s:%d",
            "LMTP" if self.settings.smtp.lmtp else "SMTP",
            self.settings.smtp.host,
            self.smtp_port,
        )

    async def _start_web(self) -> None:
        task, port = await start_web(
            self.settings, self.factory, self.templates, on_outbox=self.outbox_ready.set
        )
        self.tasks.append(task)
        self.web_port = port

    async def _processing_loop(self) -> None:
        while not self.stopping.is_set():
            await _wait(self.inbound_ready, 2.0)
            self.inbound_ready.clear()
            while True:
                try:
                    n = await asyncio.to_thread(
                        process_pending, self.factory, self.settings, self.templates, 20
                    )
                except Exception:  # the database is unreachable: retry, never stop
                    log.exception("processing round failed; retrying shortly")
                    await asyncio.sleep(1.0)
                    break
                if n:
                    self.outbox_ready.set()
                if n < 20:
                    break
                # Accepting comes first, as in Postfix: while mail is arriving,
                # processing leaves intake most of the time (it shares the GIL and
                # SQLite's one writer) and catches up once the burst is over.
                if time.monotonic() - self.last_arrival < 0.2:
                    await asyncio.sleep(0.3)

    async def _delivery_loop(self) -> None:
        d = self.settings.delivery
        worker = DeliveryWorker(
            self.factory,
            self.relay,
            claim_size=max(10_000, d.batch_size * d.connections * 4),
            batch_size=d.batch_size,
            concurrency=d.connections,
            lease=timedelta(seconds=d.lease_seconds),
            backoff_start=timedelta(seconds=d.retry_initial_seconds),
            signer=self.signer,
            personalize=self.personalizer,
        )
        await worker.run(self.stopping, self.outbox_ready)

    async def stop(self) -> None:
        self.stopping.set()
        self.inbound_ready.set()
        self.outbox_ready.set()
        for server in self.servers:
            server.close()
            await server.wait_closed()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
        await self.relay.close()
        self.engine.dispose()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def _list_names(factory: sessionmaker[Session]) -> set[str]:
    with factory() as session:
        return lists.list_names(session)


def build_service(settings: Settings, *, web: bool = False, workers: bool = True) -> Service:
    engine, factory = prepare_database(settings)
    return Service(
        workers=workers,
        settings=settings,
        engine=engine,
        factory=factory,
        templates=make_templates(settings),
        relay=make_relay(settings),
        personalizer=make_personalizer(settings),
        signer=make_signer(settings),
        web=web,
        housekeeping=list(periodic.HOUSEKEEPING),
    )


async def serve(settings: Settings, *, web: bool = True, workers: bool = True) -> None:
    service = build_service(settings, web=web, workers=workers)
    await service.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await service.stop()
