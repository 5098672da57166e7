# SPDX-License-Identifier: Apache-2.0
"""`listserv inbound list|show|retry`: messages intake accepted, and any that failed."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from listserv.cli.common import CLIError, console, emit, open_context
from listserv.models import InboundMessage, InboundStatus

app = typer.Typer(help="Accepted messages and processing failures.", no_args_is_help=True)


@app.command("list")
def list_inbound(
    status: Annotated[str | None, typer.Option(help="received, done, ignored or failed.")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The most recent accepted messages with their status and reason."""
    with open_context() as ctx:
        stmt = select(InboundMessage).order_by(InboundMessage.id.desc()).limit(limit)
        if status:
            stmt = stmt.where(InboundMessage.status == status)
        rows = [
            {
                "id": m.id,
                "received": m.received_at,
                "from": m.mail_from,
                "to": ", ".join(m.rcpt_tos),
                "size": m.size,
                "status": m.status,
                "worker": m.lease_owner,  # who holds it, or who processed it
                "leased_until": m.lease_until,
                "reason": m.reason,
            }
            for m in ctx.session.scalars(stmt)
        ]
    columns = ["id", "received", "from", "to", "size", "status", "worker", "reason"]
    emit(rows, columns, as_json=as_json)


@app.command("retry")
def retry(message_id: int) -> None:
    """Process a failed message again (after fixing what made it fail)."""
    with open_context() as ctx:
        row = ctx.session.get(InboundMessage, message_id)
        if row is None:
            raise CLIError(f"no inbound message {message_id}")
        if row.status != InboundStatus.FAILED:
            raise CLIError(f"message {message_id} is {row.status}, not failed")
        row.status = InboundStatus.RECEIVED
    console.print(f"message {message_id} will be processed again by the running service")
