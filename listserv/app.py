# SPDX-License-Identifier: Apache-2.0
"""The one process `listserv serve` runs: intake, workers, webhooks and web on one loop.

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

from listserv import bounces, lists, outbox, periodic
from listserv.config import Settings
from listserv.context import Context
from listserv.db import reader_of
from listserv.delivery import (
    DeliveryWorker,
    MaildirRelay,
    Personalizer,
    Relay,
    RelayHealth,
    Signer,
    SMTPRelay,
    make_personalizer,
    record_relay_bounces,
)
from listserv.intake import Doors, InboundWriter, IntakeHandler, KnownLists, server_factory
from listserv.leasing import WorkerIdentity, acquire_identity
from listserv.limits import Gauge, Trips, Window
from listserv.routing.supervisor import ProcessingProcess, processing_worker_name
from listserv.routing.worker import ProcessingWorker
from listserv.signing import make_signer
from listserv.startup import make_templates, prepare_database
from listserv.templates import Templates
from listserv.web.server import start_web
from listserv.webhooks.sender import BACKOFF_START, WebhookSender

log = logging.getLogger("listserv")


class CannotListen(Exception):
    """A listener could not bind: which one, where, and the system's reason."""

    def __init__(self, what: str, host: str, port: int, exc: OSError) -> None:
        super().__init__(f"cannot listen for {what} on {host}:{port}: {exc.strerror or exc}")


def make_doors(settings: Settings, trips: Trips) -> Doors:
    """The SMTP port's limits, from [limits]."""
    limits = settings.limits
    return Doors(
        connections=Gauge(limits.smtp_connections_per_client),
        messages=Window(limits.smtp_messages_per_client_per_minute, 60.0),
        recipients=limits.smtp_recipients_per_message,
        trips=trips,
    )


def relay_name(settings: Settings) -> str:
    """How log lines name the relay."""
    d = settings.delivery
    return f"{d.relay_host}:{d.relay_port}" if d.transport == "smtp" else f"maildir {d.maildir}"


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
    #: True runs processing in a worker process of its own (as `listserv serve` does).
    worker_process: bool = False
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
    #: The name this process's leases carry (host and var dir), taken at start.
    identity: WorkerIdentity | None = None
    processing: ProcessingProcess | None = None
    #: Where the doors' limits report a trip (log and audit).
    trips: Trips = field(default_factory=lambda: Trips(None))
    #: The first wait after a webhook delivery fails (doubling, at most an hour).
    webhook_backoff: timedelta = BACKOFF_START

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
            doors=make_doors(self.settings, self.trips),
        )
        if self.workers:
            self.identity = acquire_identity(self.settings.site.var_dir)
            # Anything a previous run accepted but did not finish goes first.
            self.inbound_ready.set()
            if self.worker_process:
                self.processing = ProcessingProcess(
                    self.settings,
                    processing_worker_name(self.worker_id),
                    timedelta(seconds=self.settings.delivery.lease_seconds),
                    on_processed=self.outbox_ready.set,
                )
                supervise = self.processing.supervise(self.stopping, self.inbound_ready)
                self.tasks.append(asyncio.create_task(supervise, name="processing"))
            else:
                self.tasks.append(asyncio.create_task(self._processing_loop(), name="processing"))
            self.tasks.append(asyncio.create_task(self._delivery_loop(), name="delivery"))
            sender = WebhookSender(self.factory, backoff_start=self.webhook_backoff)
            self.tasks.append(asyncio.create_task(sender.run(self.stopping), name="webhooks"))
            keeper = periodic.Housekeeper(self.factory, self.settings, self.templates)
            for job in self.housekeeping:
                self.tasks.append(
                    asyncio.create_task(keeper.run(job, self.stopping), name=job.name)
                )
        smtp = self.settings.smtp
        try:
            server = await loop.create_server(
                server_factory(handler, smtp.max_message_size, self.settings.site.domain),
                host=smtp.host,
                port=smtp.port,
                reuse_address=True,
            )
        except OSError as exc:
            raise CannotListen("LMTP" if smtp.lmtp else "SMTP", smtp.host, smtp.port, exc) from exc
        self.servers.append(server)
        self.smtp_port = server.sockets[0].getsockname()[1]
        if self.web:
            try:
                await self._start_web()
            except OSError as exc:
                web = self.settings.web
                raise CannotListen("the web pages", web.host, web.port, exc) from exc
        log.info(
            "listening for %s on %s:%d",
            "LMTP" if self.settings.smtp.lmtp else "SMTP",
            self.settings.smtp.host,
            self.smtp_port,
        )

    async def _start_web(self) -> None:
        task, port = await start_web(
            self.settings,
            self.factory,
            self.templates,
            on_outbox=self.outbox_ready.set,
            trips=self.trips,
        )
        self.tasks.append(task)
        self.web_port = port

    @property
    def worker_id(self) -> str:
        assert self.identity is not None, "the service has not started its workers"
        return self.identity.name

    async def _processing_loop(self) -> None:
        worker = ProcessingWorker(
            self.factory,
            self.settings,
            self.templates,
            self.worker_id,
            lease=timedelta(seconds=self.settings.delivery.lease_seconds),
            on_processed=self.outbox_ready.set,
            last_arrival=lambda: self.last_arrival,
        )
        await worker.run(self.stopping, self.inbound_ready)

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
            worker_id=self.worker_id,
            health=RelayHealth(
                relay_name(self.settings), timedelta(seconds=d.retry_initial_seconds)
            ),
            on_failures=self._relay_failures,
        )
        await worker.run(self.stopping, self.outbox_ready)

    def _relay_failures(self, session: Session, failures: list[outbox.Failure]) -> None:
        """The relay's refusals become bounce events, scored in the settling transaction."""
        events = record_relay_bounces(session, failures)
        if events:
            bounces.score_events(Context(session, self.settings, self.templates), events)

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
        if self.processing is not None:
            await self.processing.stop()
        await self.trips.drain()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
        await self.relay.close()
        if self.identity is not None:
            self.identity.close()
        self.engine.dispose()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def _list_names(factory: sessionmaker[Session]) -> set[str]:
    with reader_of(factory)() as session:
        return lists.list_names(session)


def build_service(
    settings: Settings, *, web: bool = False, workers: bool = True, worker_process: bool = False
) -> Service:
    engine, factory = prepare_database(settings)
    return Service(
        workers=workers,
        worker_process=worker_process,
        settings=settings,
        engine=engine,
        factory=factory,
        templates=make_templates(settings),
        relay=make_relay(settings),
        personalizer=make_personalizer(settings),
        signer=make_signer(settings),
        web=web,
        housekeeping=list(periodic.HOUSEKEEPING),
        trips=Trips(factory),
    )


async def serve(settings: Settings, *, web: bool = True, workers: bool = True) -> None:
    """`listserv serve`: processing runs in a worker process of its own."""
    service = build_service(settings, web=web, workers=workers, worker_process=True)
    # The handlers come before the listeners: a SIGTERM that arrives while the
    # service starts (its port already answers) must still stop it cleanly.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await service.start()
    await stop.wait()
    log.info("stopping")
    await service.stop()
