# SPDX-License-Identifier: Apache-2.0
"""`listserv serve` and `listserv check-config`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Annotated

import typer

from listserv.app import serve as run
from listserv.cli.common import CLIError, console, settings


def serve(
    lmtp: Annotated[bool, typer.Option("--lmtp", help="Serve LMTP instead of SMTP.")] = False,
    host: Annotated[str | None, typer.Option(help="Listen address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from config).")] = None,
    no_web: Annotated[bool, typer.Option("--no-web", help="Do not serve the web pages.")] = False,
    no_workers: Annotated[
        bool,
        typer.Option("--no-workers", help="Intake only; processing runs in another process."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every message.")] = False,
) -> None:
    """Run the list server: SMTP/LMTP intake, processing, delivery and web pages."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("listserv").setLevel(logging.INFO)
    logging.getLogger("mail.log").setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("listserv.web.access").setLevel(logging.INFO if verbose else logging.WARNING)
    cfg = settings()
    smtp = cfg.smtp
    if lmtp:
        smtp = replace(smtp, lmtp=True)
    if host:
        smtp = replace(smtp, host=host)
    if port is not None:
        smtp = replace(smtp, port=port)
    cfg = replace(cfg, smtp=smtp)
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
    except OSError as exc:
        raise CLIError(f"cannot start: {exc.strerror or exc}") from exc


def check_config() -> None:
    """Validate the configuration without starting anything."""
    cfg = settings()
    names = ", ".join(lst.display_name for lst in cfg.lists) or "no lists"
    console.print(
        f"configuration OK: {cfg.source} — domain {cfg.site.domain}, {names}", highlight=False
    )
