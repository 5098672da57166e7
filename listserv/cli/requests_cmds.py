# SPDX-License-Identifier: Apache-2.0
"""`listserv requests list|approve|reject`: requests waiting for an owner."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from listserv.acts import requests
from listserv.acts.held import Ruling
from listserv.cli.common import actor, console, emit, open_context, require_list
from listserv.models import PendingRequest, RequestStatus

app = typer.Typer(help="Subscription requests held for owner approval.", no_args_is_help=True)


@app.command("list")
def list_requests(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    pending: Annotated[
        bool, typer.Option("--pending", help="Also show requests still awaiting confirmation.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Requests awaiting an owner's decision."""
    statuses = [RequestStatus.AWAITING_APPROVAL]
    if pending:
        statuses.append(RequestStatus.PENDING)
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        requests = ctx.session.scalars(
            select(PendingRequest)
            .where(PendingRequest.list_id == mlist.id, PendingRequest.status.in_(statuses))
            .order_by(PendingRequest.id)
        ).all()
        rows = [
            {
                "id": r.id,
                "kind": r.kind,
                "status": r.status,
                "address": r.address,
                "name": (r.payload or {}).get("name", ""),
                "title": (r.payload or {}).get("title", ""),
                "created": r.created_at,
                "expires": r.expires_at,
            }
            for r in requests
        ]
    emit(rows, ["id", "kind", "status", "address", "name", "title", "created"], as_json=as_json)


def _decide(list_name: str, request_id: int, approve: bool, reason: str) -> None:
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        ruling = Ruling.APPROVE if approve else Ruling.REJECT
        decision = requests.decide_request(ctx, actor(), mlist, request_id, ruling, reason=reason)
        console.print(decision.text, highlight=False)


@app.command("approve")
def approve(list_name: Annotated[str, typer.Argument(metavar="LIST")], request_id: int) -> None:
    """Approve a held subscription request: the address joins."""
    _decide(list_name, request_id, True, "")


@app.command("reject")
def reject(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    request_id: int,
    reason: Annotated[str, typer.Option(help="Told to the requester.")] = "",
) -> None:
    """Reject a held subscription request; the requester is told."""
    _decide(list_name, request_id, False, reason)
