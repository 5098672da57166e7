# SPDX-License-Identifier: Apache-2.0
"""uvicorn inside the service's event loop (no threads), or alone on a web host.

`start_web(service)` binds `[web] host:port` itself (port 0 picks a free port;
a port in use raises OSError instead of uvicorn's sys.exit), starts uvicorn's
Server on that socket as a task of the running loop and returns the task and
the bound port. Cancelling the task shuts the server down gracefully: no new
connections, in-flight requests finish (up to a few seconds).

The service owns SIGINT/SIGTERM, so uvicorn's signal capture is switched off,
and uvicorn's access log is off because it would log every token
(`security.AccessLog` logs the same lines, tokens redacted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Generator

import uvicorn
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp

from listserv.config import Settings
from listserv.startup import make_templates, prepare_database
from listserv.templates import Templates
from listserv.web.app import create_app

log = logging.getLogger("listserv.web")

#: Seconds in-flight requests get to finish when the server stops.
GRACEFUL_SECONDS = 5


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn Server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, made as asyncio would make it.

    The protocol must be IPPROTO_TCP (not 0, as `socket.create_server` leaves
    it): asyncio turns Nagle's algorithm off only for sockets that say they are
    TCP, and with it on every response waits ~40 ms for a delayed ACK.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_app(app: ASGIApp, host: str, port: int) -> tuple[asyncio.Task[None], int]:
    """Serve `app` on host:port in this loop; returns (task, bound port) once listening."""
    sock = bind(host, port)
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_config=None,
        proxy_headers=True,  # X-Forwarded-For from forwarded_allow_ips (127.0.0.1) only
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
) -> tuple[asyncio.Task[None], int]:
    """The web pages of a running service, on its loop, database and templates."""
    app = create_app(settings, factory, templates, on_outbox=on_outbox)
    task, port = await serve_app(app, settings.web.host, settings.web.port)
    log.info(
        "web pages on http://%s:%d (public %s)", settings.web.host, port, settings.web.base_url
    )
    return task, port


async def run_alone(settings: Settings) -> None:
    """`listserv web`: only the pages, for a web host sharing the database with the mail host.

    Mail the pages queue (confirmations, goodbyes) waits in the shared outbox
    for the mail host's delivery worker.
    """
    engine, factory = prepare_database(settings)
    try:
        app = create_app(settings, factory, make_templates(settings))
        task, port = await serve_app(app, settings.web.host, settings.web.port)
        log.info("web pages on http://%s:%d", settings.web.host, port)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        engine.dispose()
