# SPDX-License-Identifier: Apache-2.0
"""`listserv serve` and `listserv check-config`."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Annotated

import typer

from listserv import logs
from listserv.app import CannotListen
from listserv.app import serve as run
from listserv.cli.common import CLIError, console, settings
from listserv.config import ConfigError
from listserv.config.loading import check_ports


def serve(
    lmtp: Annotated[bool, typer.Option("--lmtp", help="Serve LMTP instead of SMTP.")] = False,
    host: Annotated[
        str | None, typer.Option(help="SMTP/LMTP listen address (default from config).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="SMTP/LMTP listen port (default from config).")
    ] = None,
    web_port: Annotated[
        int | None, typer.Option("--web-port", help="Web pages' port (default from config).")
    ] = None,
    no_web: Annotated[bool, typer.Option("--no-web", help="Do not serve the web pages.")] = False,
    no_workers: Annotated[
        bool,
        typer.Option("--no-workers", help="Intake only; processing runs in another process."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every message (secrets redacted).")
    ] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="text (for people) or json (one object a line).")
    ] = "text",
) -> None:
    """Run the list server: SMTP/LMTP intake, processing, delivery and web pages."""
    if log_format not in logs.FORMATS:
        raise CLIError(f"--log-format must be one of {', '.join(logs.FORMATS)}, not {log_format!r}")
    logs.configure(log_format, verbose)
    cfg = settings()
    smtp = cfg.smtp
    if lmtp:
        smtp = replace(smtp, lmtp=True)
    if host:
        smtp = replace(smtp, host=host)
    if port is not None:
        smtp = replace(smtp, port=port_option(port, "--port"))
    web = cfg.web
    if web_port is not None:
        web = replace(web, port=port_option(web_port, "--web-port"))
    if not no_web:
        try:
            check_ports(smtp.host, smtp.port, web.host, web.port)
        except ConfigError as exc:
            raise CLIError(f"{exc} (use --web-port or --port)") from None
    cfg = replace(cfg, smtp=smtp, web=web)
    console.print(
        f"listserv: {'LMTP' if smtp.lmtp else 'SMTP'} on {smtp.host}:{smtp.port}, "
        f"database {cfg.database_url.split('@')[-1]}, delivery {cfg.delivery.transport}"
        + (f" to {cfg.delivery.maildir}" if cfg.delivery.transport == "maildir" else "")
        + ("" if no_web else f", web on {cfg.web.host}:{cfg.web.port}"),
        highlight=False,
    )
    try:
        asyncio.run(run(cfg, web=not no_web, workers=not no_workers))
    except KeyboardInterrupt:
        pass
    except CannotListen as exc:
        raise CLIError(str(exc)) from exc
    except OSError as exc:
        raise CLIError(f"cannot start: {exc.strerror or exc}") from exc


def port_option(port: int, option: str) -> int:
    if not 0 <= port <= 65535:
        raise CLIError(f"{option} must be a port number (0-65535), not {port}")
    return port


def check_config() -> None:
    """Validate the configuration without starting anything."""
    cfg = settings()
    names = ", ".join(lst.display_name for lst in cfg.lists) or "no lists"
    console.print(
        f"configuration OK: {cfg.source} — domain {cfg.site.domain}, {names}", highlight=False
    )
