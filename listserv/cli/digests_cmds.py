# SPDX-License-Identifier: Apache-2.0
"""`listserv digests send`: a list's digest now, without waiting for the day to end."""

from __future__ import annotations

from typing import Annotated

import typer

from listserv.acts import digests as digest_acts
from listserv.cli.common import actor, console, emit, open_context, require_list
from listserv.lists import all_lists

app = typer.Typer(help="Digests for members on DIGEST.", no_args_is_help=True)


@app.command("send")
def send(
    list_name: Annotated[
        str | None, typer.Argument(metavar="[LIST]", help="One list (default: every list).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count posts and recipients; send nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (an array).")] = False,
) -> None:
    """Send the digest of the posts since the last one, to every member on DIGEST."""
    with open_context() as ctx:
        targets = [require_list(ctx.session, list_name)] if list_name else all_lists(ctx.session)
        who = actor()
        runs = [digest_acts.send_now(ctx, who, mlist, dry_run=dry_run) for mlist in targets]
    rows = [
        {
            "list": run.list_name,
            "posts": run.posts,
            "recipients": run.recipients,
            "sent": run.queued,
            "dry_run": dry_run,
        }
        for run in runs
    ]
    if as_json:
        emit(rows, list(rows[0]) if rows else [], as_json=True)
        return
    for run in runs:
        if dry_run:
            verb = "would send" if run.posts and run.recipients else "would send nothing:"
        else:
            verb = "sent" if run.queued else "sent nothing:"
        console.print(
            f"{run.list_name}: {verb} {run.posts} post(s) to {run.recipients} digest member(s)",
            highlight=False,
        )
