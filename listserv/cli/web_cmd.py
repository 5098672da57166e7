# SPDX-License-Identifier: Apache-2.0
"""`listserv web`: the web pages alone, for a separate web host."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Annotated

import typer

from listserv import logs
from listserv.cli.common import CLIError, console, settings
from listserv.web.server import run_alone


def web(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default: web.host in the configuration).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (default: web.port in the configuration).")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every request (tokens redacted).")
    ] = False,
    reuse_port: Annotated[
        bool,
        typer.Option(
            "--reuse-port", help="Share the port with other web processes (SO_REUSEPORT)."
        ),
    ] = False,
    parent: Annotated[
        int, typer.Option("--parent", hidden=True, help="Stop when this process has gone.")
    ] = 0,
) -> None:
    """Serve only the web pages (join, confirm, unsubscribe) against the shared database.

    Use it on a web host whose database (PostgreSQL) is shared with a mail host
    running `listserv serve --no-web`; the mail host delivers what the pages queue.
    """
    logs.configure("text", verbose)
    cfg = settings()
    web_settings = cfg.web
    if host:
        web_settings = replace(web_settings, host=host)
    if port is not None:
        if not 0 <= port <= 65535:
            raise CLIError("--port must be between 0 and 65535")
        web_settings = replace(web_settings, port=port)
    cfg = replace(cfg, web=web_settings)
    console.print(
        f"listserv: web pages on {web_settings.host}:{web_settings.port} "
        f"(public {web_settings.base_url}), database {cfg.database_url.split('@')[-1]}",
        highlight=False,
    )
    try:
        asyncio.run(run_alone(cfg, reuse_port=reuse_port, parent=parent))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise CLIError(f"cannot start: {exc.strerror or exc}") from exc
