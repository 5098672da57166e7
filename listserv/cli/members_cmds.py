# SPDX-License-Identifier: Apache-2.0
"""`listserv members list|add|remove|set|show|import|export`.

Every change is an act (`acts.members`), so it lands in the membership
history and the audit log as the same change by email or in the console
would. `set` is in `member_set.py`, `import` and `export` in
`member_files.py`; all are registered on this one command group below.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from listserv import conduct, roster
from listserv.acts import members
from listserv.acts.errors import Invalid
from listserv.cli import member_files, member_set
from listserv.cli.common import (
    CLIError,
    actor,
    console,
    emit,
    open_context,
    require_list,
)
from listserv.cli.options import parse_when
from listserv.models import AuditEvent, Member, MembershipEvent, Role

app = typer.Typer(help="Members, owners and moderators of a list.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ROLES = [r.value for r in Role]


def member_row(member: Member) -> dict[str, Any]:
    return {
        "address": member.address,
        "name": member.display_name,
        "title": member.job_title,
        "role": member.role,
        "delivery": member.delivery_mode,
        "status": member.delivery_status,
        "joined": member.joined_at,
    }


@app.command("list")
def list_members(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    role: Annotated[str | None, typer.Option(help=f"Only this role: {', '.join(ROLES)}.")] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Who was a receiving member at this moment (from the history), "
            "e.g. 2025-03-01T14:30:00Z; no offset means UTC."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The roster of a list."""
    if role is not None and role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        if at is not None:
            moment = parse_when(at, option="--at")
            rows = [
                {
                    "address": e.address,
                    "name": "",
                    "role": e.role,
                    "delivery": e.delivery_mode,
                    "status": e.delivery_status,
                    "since": e.at,
                }
                for e in roster.members_at(ctx.session, mlist, moment)
            ]
            columns = ["address", "role", "delivery", "status", "since"]
        else:
            rows = [
                member_row(m)
                for m in roster.members(ctx.session, mlist, Role(role) if role else None)
            ]
            columns = ["address", "name", "title", "role", "delivery", "status", "joined"]
        title = f"{mlist.display_name}: {len(rows)}"
    emit(rows, columns, as_json=as_json, title=title)


@app.command("add")
def add(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    address: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    title: Annotated[str, typer.Option(help="Job title.")] = "",
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    force: Annotated[
        bool, typer.Option("--force", help="Add even if the address is not eligible.")
    ] = False,
    welcome: Annotated[bool, typer.Option(help="Mail the welcome message.")] = True,
) -> None:
    """Add a member directly (no confirmation; eligibility still checked unless --force)."""
    if role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        try:
            member = members.add_member(
                ctx,
                actor(),
                mlist,
                address,
                name=name,
                title=title,
                role=Role(role),
                force=force,
                welcome=welcome,
            )
        except Invalid as exc:
            if exc.code == "domain-not-eligible":
                raise CLIError(f"{exc.message} Use --force to add it anyway.") from None
            raise
        console.print(f"added {member.address} to {mlist.display_name} as {role}", highlight=False)


@app.command("remove")
def remove(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    address: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    reason: Annotated[str, typer.Option(help="Recorded in the audit log.")] = "",
) -> None:
    """Remove a member (no confirmation, no goodbye)."""
    if role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        removed = members.remove_member(
            ctx, actor(), mlist, address, role=Role(role), reason=reason
        )
        console.print(f"removed {removed} from {mlist.display_name}", highlight=False)


@app.command("show")
def show_member(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    address: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    as_json: JsonOption = False,
) -> None:
    """Every setting of one member, their conduct status and their history."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        member = members.find(ctx, mlist, address, Role(role))
        row: dict[str, Any] = member_row(member)
        row.update(
            moderated=member.moderated,
            moderated_until=member.moderated_until,
            suspended_until=member.suspended_until,
            conduct_note=member.conduct_note,
            conduct=conduct.describe(member),
            bounce_score=member.bounce_score,
            last_bounce_at=member.last_bounce_at,
            bounce_warnings_sent=member.bounce_warnings_sent,
            other_roles=sorted(roster.roles_of(ctx.session, mlist, member.address) - {role}),
            has_password=bool(member.password_hash),
        )
        history = ctx.session.scalars(
            select(MembershipEvent)
            .where(
                MembershipEvent.list_id == mlist.id,
                MembershipEvent.address_key == member.address_key,
                MembershipEvent.role == role,
            )
            .order_by(MembershipEvent.at, MembershipEvent.id)
        ).all()
        row["history"] = [
            {
                "at": e.at.isoformat(),
                "event": e.event,
                "delivery": e.delivery_mode,
                "status": e.delivery_status,
                "actor": e.actor,
                "channel": e.channel,
            }
            for e in history
        ]
        measures = ctx.session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.list_name == mlist.name,
                AuditEvent.action.in_(list(conduct.Measure)),
                AuditEvent.target == member.address,
            )
            .order_by(AuditEvent.at, AuditEvent.id)
        ).all()
        row["conduct_history"] = [
            {
                "at": a.at.isoformat(),
                "action": a.action,
                "actor": a.actor,
                "channel": a.channel,
                "note": (a.detail or {}).get("after", {}).get("conduct_note", ""),
            }
            for a in measures
        ]
    if as_json:
        emit([row], list(row), as_json=True)
        return
    for key, value in row.items():
        if key in ("history", "conduct_history"):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        if isinstance(value, datetime):
            value = f"{value:%Y-%m-%d %H:%M:%S} UTC"
        if value is None or value == "":
            value = "-"
        console.print(f"[bold]{key.replace('_', ' ')}[/bold]: {value}", highlight=False)
    for key, columns in (
        ("conduct_history", ["at", "action", "actor", "channel", "note"]),
        ("history", ["at", "event", "delivery", "status", "actor", "channel"]),
    ):
        if row[key]:
            table = Table(title=key.replace("_", " "))
            for column in columns:
                table.add_column(column)
            for item in row[key]:
                when = datetime.fromisoformat(item["at"])
                cells = [f"{when:%Y-%m-%d %H:%M:%S}", *(str(item[c]) for c in columns[1:])]
                table.add_row(*cells)
            console.print(table)


# Commands kept in modules of their own, registered here in the order `--help` lists them.
app.command("set")(member_set.set_member)
app.command("import")(member_files.import_members)
app.command("export")(member_files.export_members)
