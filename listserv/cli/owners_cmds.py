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

from listserv import audit, roster
from listserv.cli.common import CLIError, actor, console, emit, open_context, require_list
from listserv.cli.options import JsonOption, ListArgument
from listserv.eligibility import InvalidAddress, normalise_address
from listserv.models import Role
from listserv.passwords import MIN_LENGTH, hash_password

app = typer.Typer(help="Owners and moderators of a list.", no_args_is_help=True)

ModeratorOption = Annotated[
    bool, typer.Option("--moderator", help="A moderator rather than an owner.")
]


def _role(moderator: bool) -> Role:
    return Role.MODERATOR if moderator else Role.OWNER


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


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
    try:
        normalise_address(address)
    except InvalidAddress as exc:
        raise CLIError(f"{address!r} is not an email address: {exc}") from None
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        if roster.find_member(ctx.session, mlist, address, role) is not None:
            raise CLIError(f"{address} is already {_a(role)} of {mlist.display_name}")
        member = roster.add_member(
            ctx.session,
            mlist,
            address,
            name=name,
            role=role,
            actor=actor(),
            channel="cli",
            auth="host",
            source=ctx.source,
            now=ctx.now,
        )
        console.print(
            f"{member.address} is now {_a(role)} of {mlist.display_name}", highlight=False
        )


@app.command("remove")
def remove(list_name: ListArgument, address: str, moderator: ModeratorOption = False) -> None:
    """Remove an owner or moderator (not one the configuration file names, nor the last owner)."""
    role = _role(moderator)
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        member = roster.find_member(ctx.session, mlist, address, role)
        if member is None:
            raise CLIError(f"{address} is not {_a(role)} of {mlist.display_name}")
        configured = ctx.settings.list_named(mlist.name)
        if configured is not None:
            named = configured.owners if role == Role.OWNER else configured.moderators
            if member.address_key in {roster.address_key(a) for a in named}:
                raise CLIError(
                    f"{member.address} is named in the configuration file; remove it there "
                    "(it would be added again at the next start)"
                )
        if role == Role.OWNER and len(roster.members(ctx.session, mlist, Role.OWNER)) <= 1:
            raise CLIError(
                f"{member.address} is the last owner of {mlist.display_name}; add another first"
            )
        roster.remove_member(
            ctx.session,
            mlist,
            member,
            actor=actor(),
            channel="cli",
            auth="host",
            source=ctx.source,
            now=ctx.now,
        )
        console.print(
            f"{member.address} is no longer {_a(role)} of {mlist.display_name}", highlight=False
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
        member = roster.find_member(ctx.session, mlist, address, role)
        if member is None:
            raise CLIError(f"{address} is not {_a(role)} of {mlist.display_name}")
        if clear:
            new_hash = None
        else:
            text = _read_password(password_stdin)
            try:
                new_hash = hash_password(text)
            except ValueError:
                raise CLIError(f"a password needs at least {MIN_LENGTH} characters") from None
        had = bool(member.password_hash)
        member.password_hash = new_hash
        audit.record(
            ctx.session,
            "owner-password-clear" if clear else "owner-password-set",
            channel="cli",
            list_name=mlist.name,
            actor=actor(),
            target=member.address,
            source=ctx.source,
            auth="host",
            detail={
                "before": {"password": had},
                "after": {"password": not clear},
                "role": role.value,
            },
            at=ctx.now,
        )
        verb = "cleared" if clear else "set"
        console.print(
            f"password {verb} for {member.address} on {mlist.display_name}", highlight=False
        )
