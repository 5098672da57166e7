# SPDX-License-Identifier: Apache-2.0
"""`listserv bounces list|events|enable`: bounce scores, bounce events, re-enabling delivery."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import or_, select

from listserv import roster
from listserv.acts import members
from listserv.acts.confirmed import REENABLEABLE
from listserv.cli.common import CLIError, actor, console, emit, open_context, require_list
from listserv.models import BounceEvent, DeliveryStatus, Member, Role

app = typer.Typer(help="Bouncing members and bounce events.", no_args_is_help=True)

ListArgument = Annotated[str, typer.Argument(metavar="LIST")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("list")
def list_bouncing(list_name: ListArgument, as_json: JsonOption = False) -> None:
    """Members with a bounce score, or whose delivery bounces have disabled."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        members = ctx.session.scalars(
            select(Member)
            .where(
                Member.list_id == mlist.id,
                Member.role == Role.MEMBER,
                or_(
                    Member.bounce_score > 0,
                    Member.delivery_status == DeliveryStatus.DISABLED_BOUNCING,
                ),
            )
            .order_by(Member.bounce_score.desc(), Member.address_key)
        ).all()
        rows: list[dict[str, Any]] = [
            {
                "address": m.address,
                "name": m.display_name,
                "score": m.bounce_score,
                "last_bounce": m.last_bounce_at,
                "status": m.delivery_status,
                "warnings": m.bounce_warnings_sent,
                "last_warning": m.last_warning_at,
            }
            for m in members
        ]
        title = f"{mlist.display_name}: bounce threshold {mlist.bounce_score_threshold:g}"
    emit(
        rows,
        ["address", "score", "last_bounce", "status", "warnings", "last_warning"],
        as_json=as_json,
        title=title,
    )


@app.command("events")
def list_events(
    list_name: ListArgument,
    address: Annotated[str | None, typer.Option(help="Only events for this address.")] = None,
    limit: Annotated[int, typer.Option(help="How many of the most recent.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Recent bounce events (DSNs, VERP, probes, relay refusals), newest first."""
    if limit <= 0:
        raise CLIError("--limit must be greater than zero")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        stmt = (
            select(BounceEvent)
            .where(BounceEvent.list_id == mlist.id)
            .order_by(BounceEvent.at.desc(), BounceEvent.id.desc())
            .limit(limit)
        )
        if address:
            stmt = stmt.where(BounceEvent.address_key == roster.address_key(address))
        rows = [
            {
                "id": e.id,
                "at": e.at,
                "address": e.address,
                "kind": e.kind,
                "source": e.source,
                "status": e.status_code,
                "diagnostic": e.diagnostic if as_json else e.diagnostic[:100],
                "processed": e.processed,
                "inbound_id": e.inbound_id,
            }
            for e in ctx.session.scalars(stmt)
        ]
    emit(
        rows,
        ["id", "at", "address", "kind", "source", "status", "diagnostic"],
        as_json=as_json,
        title=f"{mlist.display_name}: bounce events",
    )


@app.command("enable")
def enable(list_name: ListArgument, address: str) -> None:
    """Turn delivery back on for a member: status enabled, score and warnings 0."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        member = roster.find_member(ctx.session, mlist, address)
        if member is None:
            raise CLIError(f"{address} is not a member of {mlist.display_name}")
        if member.delivery_status not in REENABLEABLE:
            raise CLIError(
                f"delivery to {member.address} is {member.delivery_status}, "
                "not disabled by bounces; change it with the members commands"
            )
        change = members.enable_delivery(ctx, actor(), mlist, member.address)
        text = (
            "delivery enabled"
            if change.changed
            else "delivery was already enabled, with no bounces"
        )
        console.print(f"{member.address} on {mlist.display_name}: {text}", highlight=False)
