# SPDX-License-Identifier: Apache-2.0
"""`listserv bans list|add|remove`: per-list bans, or site-wide with `--site`.

Patterns are exact addresses, shell globs (`*@spam.example`) or regular
expressions starting with `^` (see bans.py); each change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from listserv import bans
from listserv.acts import bans as ban_acts
from listserv.cli.common import CLIError, actor, console, emit, open_context, require_list
from listserv.cli.options import JsonOption
from listserv.context import Context
from listserv.models import MailingList

app = typer.Typer(help="Addresses and patterns that may not join or post.", no_args_is_help=True)

SiteOption = Annotated[bool, typer.Option("--site", help="Site-wide: every list.")]


def _scope(ctx: Context, list_name: str | None, site: bool) -> MailingList | None:
    if site and list_name:
        raise CLIError("give a LIST or --site, not both")
    if not site and not list_name:
        raise CLIError("give a LIST, or --site for site-wide bans")
    return None if site else require_list(ctx.session, list_name or "")


def _split(first: str, second: str | None, site: bool) -> tuple[str | None, str]:
    """(list, pattern) from `LIST PATTERN` or `--site PATTERN`."""
    if site:
        if second is not None:
            raise CLIError("with --site, give only the PATTERN")
        return None, first
    if second is None:
        raise CLIError("give LIST and PATTERN (or --site PATTERN)")
    return first, second


@app.command("list")
def list_bans(
    list_name: Annotated[str | None, typer.Argument(metavar="[LIST]")] = None,
    site: SiteOption = False,
    as_json: JsonOption = False,
) -> None:
    """A list's bans and the site's (which apply to it too), or only the site's."""
    with open_context() as ctx:
        mlist = _scope(ctx, list_name, site)
        scopes = [None] if mlist is None else [mlist, None]
        rows: list[dict[str, Any]] = [
            {
                "pattern": ban.pattern,
                "kind": bans.pattern_kind(ban.pattern),
                "scope": scope.name if scope is not None else "site",
                "reason": ban.reason,
                "by": ban.created_by,
                "created": ban.created_at,
            }
            for scope in scopes
            for ban in bans.list_bans(ctx.session, scope)
        ]
    emit(rows, ["pattern", "kind", "scope", "reason", "by", "created"], as_json=as_json)


@app.command("add")
def add(
    first: Annotated[str, typer.Argument(metavar="LIST|PATTERN")],
    second: Annotated[str | None, typer.Argument(metavar="[PATTERN]")] = None,
    site: SiteOption = False,
    reason: Annotated[str, typer.Option(help="Why (kept with the ban and in the audit log).")] = "",
) -> None:
    """Ban an address (jane@x.com), a glob (*@spam.example) or a ^regex."""
    list_name, pattern = _split(first, second, site)
    with open_context() as ctx:
        mlist = _scope(ctx, list_name, site)
        ban = ban_acts.ban(ctx, actor(), mlist, pattern, reason=reason)
        where = mlist.display_name if mlist is not None else "every list"
        console.print(f"banned {ban.pattern} on {where}", highlight=False)
        matching = bans.members_matching(ctx.session, mlist, ban.pattern)
        if matching:
            shown = ", ".join(m.address for m in matching[:10])
            more = f" and {len(matching) - 10} more" if len(matching) > 10 else ""
            console.print(
                f"note: {len(matching)} current member(s) match and stay on the roster "
                f"until removed: {shown}{more}",
                highlight=False,
            )


@app.command("remove")
def remove(
    first: Annotated[str, typer.Argument(metavar="LIST|PATTERN")],
    second: Annotated[str | None, typer.Argument(metavar="[PATTERN]")] = None,
    site: SiteOption = False,
) -> None:
    """Lift a ban."""
    list_name, pattern = _split(first, second, site)
    with open_context() as ctx:
        mlist = _scope(ctx, list_name, site)
        ban_acts.unban(ctx, actor(), mlist, pattern)
        console.print(f"lifted the ban on {pattern}", highlight=False)
