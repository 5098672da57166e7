# SPDX-License-Identifier: Apache-2.0
"""Processing in a process of its own, so intake's event loop keeps its 250s fast.

`listserv serve` starts one processing worker process (spawned, with its own
engine, templates and event loop) and watches it. Processing is CPU-bound Python;
in the service's process it would share the GIL with intake, and a burst of
joins would slow every 250. In its own process it has the other core.

The two processes talk over one pipe, a byte at a time: the service says "mail
arrived" (at most one wake unanswered, so the pipe never fills), the worker says
"I saw it" and "I processed some" (the service then wakes its delivery worker).
All state is in the database, so the pipe only saves waiting for a poll.

A worker that dies (killed, out of memory, a bug) is started again at once, with
a growing pause if it keeps dying. Its leases carry a name derived from the
service's own (host and var dir), so the new worker takes them back as it starts
and every message it had in hand is processed exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from listserv import db, logs
from listserv.config import Settings
from listserv.routing.worker import ProcessingWorker
from listserv.startup import make_templates

log = logging.getLogger("listserv.processing")

WAKE, SEEN, PROCESSED = b"w", b"s", b"p"


def processing_worker_name(service_name: str) -> str:
    """The worker process leases as the service's name plus `/p`: one per service."""
    return f"{service_name[:61]}/p"


def run_worker_process(
    settings: Settings,
    worker_id: str,
    lease: timedelta,
    conn: Connection,
    log_setup: tuple[str, bool] = ("text", False),
) -> None:
    """The worker process's entry point (spawned by `ProcessingProcess`)."""
    logs.configure(*log_setup)  # the service's format (text or JSON) and verbosity
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service stops us (SIGTERM)
    asyncio.run(_work(settings, worker_id, lease, conn))


async def _work(settings: Settings, worker_id: str, lease: timedelta, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    engine = db.make_engine(settings.database_url)
    factory = db.make_sessionmaker(engine)
    stopping, wakeup = asyncio.Event(), asyncio.Event()
    last_wake = 0.0

    def stop() -> None:
        stopping.set()
        wakeup.set()

    def readable() -> None:
        nonlocal last_wake
        try:
            while conn.poll():
                conn.recv_bytes()
            conn.send_bytes(SEEN)
        except (EOFError, OSError):  # the service is gone: stop too
            loop.remove_reader(conn.fileno())
            stop()
            return
        last_wake = time.monotonic()
        wakeup.set()

    def processed() -> None:
        with contextlib.suppress(OSError):
            conn.send_bytes(PROCESSED)

    loop.add_signal_handler(signal.SIGTERM, stop)
    loop.add_reader(conn.fileno(), readable)
    wakeup.set()  # whatever waits from before goes first
    worker = ProcessingWorker(
        factory,
        settings,
        make_templates(settings),
        worker_id,
        lease=lease,
        on_processed=processed,
        last_arrival=lambda: last_wake,
    )
    try:
        await worker.run(stopping, wakeup)
    finally:
        engine.dispose()


def _log_setup() -> tuple[str, bool]:
    """How the service logs (`logs.configure`'s arguments), for the worker to do alike."""
    root = logging.getLogger()
    json_lines = any(isinstance(h.formatter, logs.JSONFormatter) for h in root.handlers)
    return ("json" if json_lines else "text", root.level <= logging.INFO)


class ProcessingProcess:
    """The service's side: starts the worker process, wakes it, restarts it if it dies."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        lease: timedelta,
        on_processed: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.lease = lease
        self.on_processed = on_processed
        self.process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._unanswered = False  # a wake is on its way; one is enough
        self._pending = False  # mail arrived since that wake

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self.process = context.Process(
            target=run_worker_process,
            args=(self.settings, self.worker_id, self.lease, theirs, _log_setup()),
            name="listserv-processing",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self._conn = ours
        self._unanswered = self._pending = False
        asyncio.get_running_loop().add_reader(ours.fileno(), self._readable)
        log.info("processing worker started (pid %d, leases as %s)", self.pid, self.worker_id)

    def wake(self) -> None:
        """Mail arrived: tell the worker, unless a wake it has not seen is on its way."""
        if self._conn is None:
            return
        if self._unanswered:
            self._pending = True
            return
        try:
            self._conn.send_bytes(WAKE)
        except OSError:
            return  # the worker is gone; supervise() restarts it
        self._unanswered, self._pending = True, False

    def _readable(self) -> None:
        assert self._conn is not None
        try:
            while self._conn.poll():
                answer = self._conn.recv_bytes()
                if answer == PROCESSED:
                    self.on_processed()
                elif answer == SEEN:
                    self._unanswered = False
        except (EOFError, OSError):
            self._forget()
            return
        if self._pending:
            self.wake()

    def _forget(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._conn.fileno())
            self._conn.close()
            self._conn = None

    async def supervise(self, stopping: asyncio.Event, arrived: asyncio.Event) -> None:
        """Forward arrivals as wakes, and start the worker again whenever it dies."""
        self.start()
        pause, started = 0.5, time.monotonic()
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await arrived.wait()
            if arrived.is_set():
                arrived.clear()
                self.wake()
            assert self.process is not None
            if self.process.is_alive() or stopping.is_set():
                continue
            code = self.process.exitcode
            self._forget()
            pause = 0.5 if time.monotonic() - started > 60 else min(pause * 2, 30.0)
            log.warning(
                "processing worker (pid %s) exited with code %s; starting it again in %.1f s",
                self.pid,
                code,
                pause,
            )
            await asyncio.sleep(pause)
            if not stopping.is_set():
                self.start()
                started = time.monotonic()

    async def stop(self) -> None:
        """Ask the worker to finish its round and hand back its leases; kill it if it hangs."""
        process = self.process
        if process is None:
            return
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, 20)
            if process.is_alive():
                log.warning("processing worker (pid %s) did not stop; killing it", process.pid)
                process.kill()
                await asyncio.to_thread(process.join, 5)
        self._forget()
