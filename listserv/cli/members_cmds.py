# SPDX-License-Identifier: Apache-2.0
"""`listserv members list|add|remove`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from listserv import roster
from listserv.cli.common import CLIError, actor, console, emit, open_context, require_list
from listserv.eligibility import Ineligible, check_address
from listserv.lists import eligibility_rule
from listserv.models import Member, Role

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
        datetime | None,
        typer.Option(help="Who was a receiving member at this moment (from the history)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The roster of a list."""
    if role is not None and role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        if at is not None:
            from datetime import UTC

            moment = at if at.tzinfo else at.replace(tzinfo=UTC)
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
            rows = [member_row(m) for m in roster.members(ctx.session, mlist, role)]
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
        verdict = check_address(address, eligibility_rule(mlist), mlist.display_name)
        if isinstance(verdict, Ineligible):
            if not force or verdict.code != "domain-not-eligible":
                raise CLIError(
                    f"{verdict.reason}"
                    + (
                        " Use --force to add it anyway."
                        if verdict.code == "domain-not-eligible"
                        else ""
                    )
                )
            clean = address.strip()
        else:
            clean = address.strip()
        if roster.find_member(ctx.session, mlist, clean, role) is not None:
            raise CLIError(f"{clean} is already a {role} of {mlist.display_name}")
        member = roster.add_member(
            ctx.session,
            mlist,
            clean,
            name=name,
            title=title,
            role=role,
            actor=actor(),
            channel="cli",
            auth="host",
        )
        if welcome and role == Role.MEMBER:
            from listserv import notices

            notices.send_notice(
                ctx, "welcome.txt.j2", member.address, mlist=mlist, member_name=member.display_name
            )
        console.print(f"added {member.address} to {mlist.display_name} as {role}", highlight=False)


@app.command("remove")
def remove(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    address: str,
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "member",
    reason: Annotated[str, typer.Option(help="Recorded in the audit log.")] = "",
) -> None:
    """Remove a member (no confirmation, no goodbye)."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        member = roster.find_member(ctx.session, mlist, address, role)
        if member is None:
            raise CLIError(f"{address} is not a {role} of {mlist.display_name}")
        roster.remove_member(
            ctx.session, mlist, member, actor=actor(), channel="cli", auth="host", reason=reason
        )
        console.print(f"removed {member.address} from {mlist.display_name}", highlight=False)
