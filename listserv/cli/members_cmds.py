# SPDX-License-Identifier: Apache-2.0
"""`listserv members list|add|remove|set|show|import|export`.

Every change is an act (`acts.members`), so it lands in the membership
history and the audit log as the same change by email or in the console
would. `set` is in `member_set.py`, `import` and `export` in
`member_files.py`; all are registered on this one command group below.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from listserv import conduct, roster
from listserv.acts import members
from listserv.acts.errors import Invalid
from listserv.cli import member_files, member_set, member_sync
from listserv.cli.common import (
    CLIError,
    actor,
    console,
    emit,
    open_context,
    require_list,
)
from listserv.cli.member_listing import (
    COLUMNS,
    Format,
    longest_address,
    member_row,
    shown_row,
    write_csv,
    write_plain,
    write_table,
)
from listserv.cli.options import parse_when
from listserv.models import AuditEvent, DeliveryMode, Role
from listserv.roster.export import roster_rows, write_json

app = typer.Typer(help="Members, owners and moderators of a list.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ROLES = [r.value for r in Role]


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
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            help="table (the default on a terminal), plain (one address per line, the "
            "default in a pipe), csv or json.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """The roster of a list, streamed as it is read."""
    if role is not None and role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    chosen = (
        Format.JSON if as_json else fmt or (Format.TABLE if sys.stdout.isatty() else Format.PLAIN)
    )
    out = sys.stdout
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        if at is not None:
            moment = parse_when(at, option="--at")
            history = roster.members_at(ctx.session, mlist, moment)
            moved = roster.previous_keys(ctx.session, mlist, moment)
            rows: Iterable[dict[str, Any]] = (
                {
                    "address": e.address,
                    "role": e.role,
                    "delivery": DeliveryMode(e.delivery_mode).word,
                    "status": e.delivery_status,
                    "since": e.at,
                    "previously": moved.get(e.address_key, ""),
                }
                for e in history
            )
            columns: tuple[str, ...] = (
                "address",
                "role",
                "delivery",
                "status",
                "since",
                "previously",
            )
            widest = max((len(e.address) for e in history), default=0)
        else:
            wanted = Role(role) if role else None
            # One streamed Core query: a million members are never held.
            rows = map(shown_row, roster_rows(ctx.session, mlist.id, wanted))
            columns = COLUMNS
            widest = longest_address(ctx.session, mlist, wanted) if chosen is Format.TABLE else 0
        if chosen is Format.JSON:
            write_json(rows, out)
        elif chosen is Format.CSV:
            write_csv(rows, columns, out)
        elif chosen is Format.PLAIN:
            write_plain(rows, out)
        elif not write_table(rows, columns, out, address_width=widest):
            out.write("(none)\n")


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
    address: Annotated[str | None, typer.Argument(metavar="[ADDRESS]")] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file", help="Remove every member this file names (any `import` format; - is stdin)."
        ),
    ] = None,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    reason: Annotated[str, typer.Option(help="Recorded in the audit log.")] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --file: say who would go; change nothing.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --file: the report as JSON.")
    ] = False,
) -> None:
    """Remove a member, or every member a file names (no confirmation, no goodbye)."""
    if role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    if (address is None) == (file is None):
        raise CLIError("give an ADDRESS or --file FILE (one of them)")
    if file is not None:
        if role != Role.MEMBER:
            raise CLIError("--file removes members only; remove owners one by one")
        member_sync.remove_listed(list_name, file, reason, dry_run, as_json)
        return
    assert address is not None
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
    role: Annotated[
        str | None,
        typer.Option(help=f"One of {', '.join(ROLES)} (default: the first role they hold)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Every setting of one member, owner or moderator, their conduct and their history."""
    if role is not None and role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        held = (
            [Role(role)]
            if role
            else [r for r in Role if roster.find_member(ctx.session, mlist, address, r)]
        )
        member = members.find(ctx, mlist, address, held[0] if held else Role.MEMBER)
        role = member.role
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
        history = roster.member_history(ctx.session, mlist, member.address_key, Role(role))
        row["history"] = [
            {
                "at": e.at.isoformat(),
                "event": e.event,
                "address": e.address,
                "delivery": DeliveryMode(e.delivery_mode).word,
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
        ("history", ["at", "event", "address", "delivery", "status", "actor", "channel"]),
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
app.command("sync")(member_sync.sync_members)
