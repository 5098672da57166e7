# SPDX-License-Identifier: Apache-2.0
"""uvicorn inside the service's event loop (no threads), or alone on a web host.

`start_web(service)` binds `[web] host:port` itself (port 0 picks a free port;
a port in use raises OSError instead of uvicorn's sys.exit), starts uvicorn's
Server on that socket as a task of the running loop and returns the task and
the bound port. Cancelling the task shuts the server down gracefully: no new
connections, in-flight requests finish (up to a few seconds).

The service owns SIGINT/SIGTERM, so uvicorn's signal capture is switched off,
and uvicorn's access log and proxy-header middleware are off: `security.Edge`
does both (its log lines redact tokens, which uvicorn's would not).

With `[web] processes = N` (N > 1) the service binds its socket with
SO_REUSEPORT and starts N - 1 `listserv web --reuse-port` processes on the
same address; the kernel spreads new connections over the N listening
sockets, so the pages and the API use more than one core (one Python process
serves at most one). What must hold across them already lives in the
database (console sessions, sign-in links, join limits, revocations); the
in-memory limits are shared out (`limits.per_process`). The extra processes
only serve HTTP: mail they queue waits in the outbox for the service's
delivery worker, as a separate web host's does. They stop with the service,
and stop by themselves if the service goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Generator
from typing import Any

import uvicorn
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp

from listserv.config import Settings
from listserv.limits import Trips
from listserv.startup import make_templates, prepare_database
from listserv.templates import Templates
from listserv.web.app import create_app

log = logging.getLogger("listserv.web")

#: Seconds in-flight requests get to finish when the server stops.
GRACEFUL_SECONDS = 5
#: Whether this process has frozen its startup objects (`serve_app`).
_frozen = False
#: How often an extra web process checks that the service that started it is there.
PARENT_CHECK_SECONDS = 1.0


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn Server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket, made as asyncio would make it.

    The protocol must be IPPROTO_TCP (not 0, as `socket.create_server` leaves
    it): asyncio turns Nagle's algorithm off only for sockets that say they are
    TCP, and with it on every response waits ~40 ms for a delayed ACK.
    `reuse_port` lets the other web processes listen on the same port.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_app(
    app: ASGIApp, host: str, port: int, *, reuse_port: bool = False
) -> tuple[asyncio.Task[None], int]:
    """Serve `app` on host:port in this loop; returns (task, bound port) once listening.

    What the process has built by now (modules, the app, templates, models)
    lives as long as it does, so it is frozen out of the garbage collector
    (`gc.freeze`): the collections that every few thousand requests' garbage
    triggers then no longer walk it. Measured on the API benchmark: about a
    tenth less CPU a request and a shorter latency tail. Once a process: what
    is frozen is never collected, so a later server must not freeze again.
    """
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
    sock = bind(host, port, reuse_port=reuse_port)
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_config=None,
        http="httptools",  # the C parser (h11 is ~3x the CPU a request)
        proxy_headers=False,  # security.Edge reads X-Forwarded-For from trusted proxies
        server_header=False,
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    server = _EmbeddedServer(config)
    inner = asyncio.ensure_future(server.serve(sockets=[sock]))

    async def run() -> None:
        try:
            await asyncio.shield(inner)
        except asyncio.CancelledError:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await inner
            raise
        finally:
            sock.close()

    task = asyncio.create_task(run(), name="web")
    while not server.started:
        if inner.done():
            task.cancel()
            sock.close()
            inner.result()  # raises what stopped it
            raise RuntimeError("the web server stopped while starting")
        await asyncio.sleep(0.01)
    return task, bound


async def start_web(
    settings: Settings,
    factory: sessionmaker[Session],
    templates: Templates,
    *,
    on_outbox: Callable[[], None],
    trips: Trips | None = None,
) -> tuple[asyncio.Task[None], int]:
    """The web pages of a running service, on its loop, database and templates.

    With `[web] processes` above 1, the task also starts and stops the others.
    """
    app = create_app(settings, factory, templates, on_outbox=on_outbox, trips=trips)
    extra = settings.web.processes - 1
    task, port = await serve_app(app, settings.web.host, settings.web.port, reuse_port=extra > 0)
    log.info(
        "web pages on http://%s:%d (public %s)", settings.web.host, port, settings.web.base_url
    )
    if extra > 0:
        task = asyncio.create_task(_with_others(task, settings.web.host, port, extra), name="web")
    return task, port


def _start_other(host: str, port: int) -> subprocess.Popen[bytes]:
    """One more `listserv web` on the same socket address, with this process's config."""
    command = [sys.executable, "-m", "listserv", "web", "--host", host, "--port", str(port)]
    command += ["--reuse-port", "--parent", str(os.getpid())]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


async def _with_others(own: asyncio.Task[None], host: str, port: int, count: int) -> None:
    """Run `count` more web processes beside this one's server, until cancelled."""
    others = [_start_other(host, port) for _ in range(count)]
    log.info("%d more web processes on port %d: %s", count, port, [p.pid for p in others])
    try:
        await own
    finally:
        if not own.done():
            own.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await own  # its graceful shutdown
        for proc in others:
            if proc.poll() is None:
                proc.terminate()
        for proc in others:
            try:
                await asyncio.to_thread(proc.wait, GRACEFUL_SECONDS + 5)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _parent_gone(parent: int) -> None:
    """Returns once the process that started this one has gone (we were handed to init)."""
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_SECONDS)


async def run_alone(settings: Settings, *, reuse_port: bool = False, parent: int = 0) -> None:
    """`listserv web`: only the pages, for a web host sharing the database with the mail host.

    Mail the pages queue (confirmations, goodbyes) waits in the shared outbox
    for the mail host's delivery worker. `parent` is the service that started
    this one as an extra web process: its going away stops this one too.
    """
    engine, factory = prepare_database(settings)
    try:
        app = create_app(settings, factory, make_templates(settings))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # before the port answers
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        task, port = await serve_app(
            app, settings.web.host, settings.web.port, reuse_port=reuse_port
        )
        log.info("web pages on http://%s:%d", settings.web.host, port)
        stopped = asyncio.ensure_future(stop.wait())
        waits: set[asyncio.Future[Any]] = {task, stopped}
        if parent:
            waits.add(asyncio.ensure_future(_parent_gone(parent)))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits - {task}:
            wait.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        engine.dispose()
