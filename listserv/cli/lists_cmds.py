# SPDX-License-Identifier: Apache-2.0
"""`listserv lists list|show|create|set|delete`.

`set` takes `key=value` words validated like the configuration file (the
same choices and ranges), all checked before any is applied, and records
the change in the audit log with before and after; `legal_hold=true` and
`retention_days=N` are set here too. `delete` is refused under legal hold
and for lists the configuration file defines, and asks for confirmation.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from listserv.acts import lists as list_acts
from listserv.acts.list_settings import parse_assignments
from listserv.acts.lists import NewList
from listserv.cli.common import CLIError, actor, console, emit, open_context, require_list
from listserv.lists import SYNCED_FIELDS, all_lists, eligibility_text
from listserv.models import MailingList, Member, Role
from listserv.records import retention

app = typer.Typer(help="Mailing lists.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _summary(mlist: MailingList, members: int) -> dict[str, Any]:
    return {
        "name": mlist.name,
        "display_name": mlist.display_name,
        "address": mlist.posting_address,
        "members": members,
        "description": mlist.description,
    }


@app.command("list")
def list_lists(as_json: JsonOption = False) -> None:
    """Every list served here, with its member count."""
    with open_context() as ctx:
        counts = dict(
            ctx.session.execute(
                select(Member.list_id, func.count())
                .where(Member.role == Role.MEMBER)
                .group_by(Member.list_id)
            ).all()
        )
        rows = [_summary(m, counts.get(m.id, 0)) for m in all_lists(ctx.session)]
    emit(rows, ["name", "display_name", "address", "members", "description"], as_json=as_json)


@app.command("show")
def show(name: str, as_json: JsonOption = False) -> None:
    """A list's settings."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, name)
        members = ctx.session.scalar(
            select(func.count()).where(Member.list_id == mlist.id, Member.role == Role.MEMBER)
        )
        row: dict[str, Any] = _summary(mlist, int(members or 0))
        row["domain"] = mlist.domain
        for key in SYNCED_FIELDS:
            row[key] = getattr(mlist, key)
        row["emergency_hold"] = mlist.emergency_hold
        row["legal_hold"] = mlist.legal_hold
        row["eligibility"] = eligibility_text(mlist)
        row["from_config"] = mlist.from_config
    if as_json:
        emit([row], list(row), as_json=True)
        return
    for key, value in row.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        # The key as `lists set` takes it: what is shown is what can be typed.
        console.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Short name: the posting address's local part.")],
    display_name: Annotated[str, typer.Option(help="Shown in mail and pages.")] = "",
    description: Annotated[str, typer.Option(help="One paragraph about the list.")] = "",
    owner: Annotated[
        list[str] | None, typer.Option("--owner", help="An owner's address (repeatable).")
    ] = None,
    moderator: Annotated[
        list[str] | None, typer.Option("--moderator", help="A moderator's address (repeatable).")
    ] = None,
    eligible_domain: Annotated[
        list[str] | None,
        typer.Option("--eligible-domain", help="Domain suffix that may join (default gov, mil)."),
    ] = None,
    join_phrase: Annotated[
        list[str] | None, typer.Option("--join-phrase", help="Subject that means join.")
    ] = None,
    leave_phrase: Annotated[
        list[str] | None, typer.Option("--leave-phrase", help="Subject that means leave.")
    ] = None,
    subject_prefix: Annotated[str, typer.Option(help="E.g. [SM-COP].")] = "",
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Any other setting (repeatable)."),
    ] = None,
) -> None:
    """Create a list in the database (lists in the configuration file are made at start)."""
    if not owner:
        raise CLIError("a list needs at least one --owner")
    new = NewList(
        name=name,
        owners=owner,
        moderators=moderator or (),
        display_name=display_name,
        description=description,
        eligible_domains=eligible_domain or (),
        join_phrases=join_phrase or (),
        leave_phrases=leave_phrase or (),
        subject_prefix=subject_prefix,
        settings=parse_assignments(setting or []),
    )
    with open_context() as ctx:
        mlist = list_acts.create_list(ctx, actor(), new)
        owners = new.owners
        console.print(
            f"created {mlist.display_name} <{mlist.posting_address}> with {len(owners)} owner(s)",
            highlight=False,
        )


@app.command("set")
def set_options(
    name: Annotated[str, typer.Argument(metavar="LIST")],
    assignments: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE...",
            help="E.g. moderated=true retention_days=365 legal_hold=true "
            "eligible_domains=gov,mil (see `listserv lists show`).",
        ),
    ],
) -> None:
    """Change list settings; every change is audited with before and after."""
    changes = parse_assignments(assignments)
    with open_context() as ctx:
        mlist = require_list(ctx.session, name)
        before = list_acts.change_settings(ctx, actor(), mlist, changes)
        if not before:
            console.print(f"{mlist.display_name}: nothing changed", highlight=False)
            return
        for key, old in before.items():
            console.print(
                f"{mlist.display_name}: {key} {_shown(old)} → {_shown(getattr(mlist, key))}",
                highlight=False,
            )


def _shown(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


@app.command("delete")
def delete_list(
    name: Annotated[str, typer.Argument(metavar="LIST")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a list with its roster, history and archive (refused under legal hold)."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, name)
        list_acts.check_deletable(ctx, mlist)
        contents = retention.list_contents(ctx.session, mlist)
        if not yes:
            console.print(
                f"This deletes {mlist.display_name} <{mlist.posting_address}> with "
                f"{contents['members']} member(s), {contents['posts']} archived message(s) "
                f"and its membership history. Export the archive first if it must be kept "
                f"(listserv archive export).",
                highlight=False,
            )
            try:
                confirmed = typer.confirm(f"Delete {mlist.name}?", default=False)
            except typer.Abort:
                confirmed = False
            if not confirmed:
                raise CLIError(f"{mlist.name} was not deleted (confirm, or pass --yes)")
        list_acts.delete_list(ctx, actor(), mlist)
        console.print(f"deleted {mlist.name}", highlight=False)
