# SPDX-License-Identifier: Apache-2.0
"""`listserv owners list|add|remove|password`: who runs a list, and their passwords.

An owner's password (for the `Approved:` header of email commands) is typed
twice with hidden input, or read from standard input with
`--password-stdin` for scripts; only its Argon2 hash is stored, and the
audit log records that it changed, never the password or its hash.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from listserv import roster
from listserv.acts import members, owners
from listserv.cli.common import CLIError, actor, console, emit, open_context, require_list
from listserv.cli.options import JsonOption, ListArgument
from listserv.models import Role

app = typer.Typer(help="Owners and moderators of a list.", no_args_is_help=True)

ModeratorOption = Annotated[
    bool, typer.Option("--moderator", help="A moderator rather than an owner.")
]


def _role(moderator: bool) -> Role:
    return Role.MODERATOR if moderator else Role.OWNER


@app.command("list")
def list_owners(list_name: ListArgument, as_json: JsonOption = False) -> None:
    """Owners and moderators, and whether each has a password set."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        configured = ctx.settings.list_named(mlist.name)
        rows: list[dict[str, Any]] = [
            {
                "address": m.address,
                "name": m.display_name,
                "role": m.role,
                "password": bool(m.password_hash),
                "configured": configured is not None
                and m.address_key
                in {roster.address_key(a) for a in (*configured.owners, *configured.moderators)},
                "since": m.joined_at,
            }
            for role in (Role.OWNER, Role.MODERATOR)
            for m in roster.members(ctx.session, mlist, role)
        ]
    emit(rows, ["address", "name", "role", "password", "configured", "since"], as_json=as_json)


@app.command("add")
def add(
    list_name: ListArgument,
    address: str,
    moderator: ModeratorOption = False,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Make an address an owner (or, with --moderator, a moderator) of a list."""
    role = _role(moderator)
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        member = members.add_member(ctx, actor(), mlist, address, name=name, role=role)
        console.print(
            f"{member.address} is now {members.a_role(role)} of {mlist.display_name}",
            highlight=False,
        )


@app.command("remove")
def remove(list_name: ListArgument, address: str, moderator: ModeratorOption = False) -> None:
    """Remove an owner or moderator (not one the configuration file names, nor the last owner)."""
    role = _role(moderator)
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        removed = members.remove_member(ctx, actor(), mlist, address, role=role)
        console.print(
            f"{removed} is no longer {members.a_role(role)} of {mlist.display_name}",
            highlight=False,
        )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        text = sys.stdin.readline().rstrip("\r\n")
        if not text:
            raise CLIError("no password on standard input")
        return text
    try:
        password: str = typer.prompt(
            "New password", hide_input=True, confirmation_prompt="Repeat the password"
        )
    except typer.Abort:
        raise CLIError("no password was set") from None
    return password


@app.command("password")
def password(
    list_name: ListArgument,
    address: str,
    moderator: ModeratorOption = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the password.")] = False,
) -> None:
    """Set the password an owner puts in the Approved: header of email commands."""
    role = _role(moderator)
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        members.find(ctx, mlist, address, role)  # before asking for a password
        text = None if clear else _read_password(password_stdin)
        member = owners.set_password(ctx, actor(), mlist, address, text, role=role)
        verb = "cleared" if clear else "set"
        console.print(
            f"password {verb} for {member.address} on {mlist.display_name}", highlight=False
        )
