# SPDX-License-Identifier: Apache-2.0
"""`listserv members sync` and `members remove --file`: many members at once.

Both read any roster format `members import` reads; the acts
(`acts.sync`) do the work, so each removal is audited as a single one is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from listserv.acts import imports, sync
from listserv.cli.common import CLIError, actor, console, open_context, require_list
from listserv.cli.member_files import REFUSED_EXIT, report_problems
from listserv.cli.options import ForceOption, RosterFileArgument, RosterFormatOption, WelcomeOption
from listserv.roster.files import RosterFile, RosterFileError, decode


def read_roster_text(file: str) -> str:
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {file}: {exc.strerror or exc}") from None
    return decode(data)


def roster_file(text: str, fmt: str, file: str) -> RosterFile:
    try:
        return RosterFile(text, fmt)
    except RosterFileError as exc:
        raise CLIError(f"{file}: {exc}") from None


def remove_listed(list_name: str, file: str, reason: str, dry_run: bool, as_json: bool) -> None:
    """`members remove LIST --file F`: every member the file names."""
    source = roster_file(read_roster_text(file), "auto", file)
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        result = sync.remove_members(ctx, actor(), mlist, source, reason=reason, dry_run=dry_run)
    if as_json:
        report = {
            "list": list_name,
            "dry_run": dry_run,
            "removed": result.removed,
            "not_members": result.not_members,
            "invalid_lines": result.invalid,
        }
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        return
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{list_name}: {verb} {len(result.removed)}; not members {len(result.not_members)}; "
        f"not addresses {len(result.invalid)}",
        highlight=False,
    )
    for address in result.not_members:
        console.print(f"  not a member: {address}", highlight=False)
    for text in result.invalid:
        console.print(f"  not an address: {text}", highlight=False)


def sync_members(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    file: RosterFileArgument,
    fmt: RosterFormatOption = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would change; change nothing.")
    ] = False,
    force: ForceOption = False,
    welcome: WelcomeOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Make the members exactly the file's addresses: add the missing, remove the extra.

    Additions are judged as `members import` judges them (eligibility, bans,
    duplicates); owners and moderators are not touched. Exits 3 when a line was
    refused (the rest still applied).
    """
    text = read_roster_text(file)
    fmt = fmt.strip().lower()
    roster_file(text, fmt, file)  # a file that is no roster fails before anything changes
    options = imports.ImportOptions(force=force, welcome=welcome, dry_run=dry_run, label=file)
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        report = sync.sync_members(ctx, actor(), mlist, text, fmt, options)
    plan = report.plan
    if as_json:
        summary = {
            **plan.summary(),
            "list": list_name,
            "dry_run": dry_run,
            "removed": len(report.removal.removed),
            "removed_addresses": report.removal.removed,
            "added_addresses": [m.address for m in plan.to_add],
            "refused_lines": [p.as_dict() for p in plan.refused],
            "duplicate_lines": [p.as_dict() for p in plan.duplicates],
        }
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    else:
        verb = ("would add", "would remove") if dry_run else ("added", "removed")
        console.print(
            f"{list_name}: {verb[0]} {len(plan.to_add)}, {verb[1]} {len(report.removal.removed)}, "
            f"unchanged {len(plan.already)}, refused {len(plan.refused)}",
            highlight=False,
        )
        for new in plan.to_add:
            console.print(f"  + {new.address}", highlight=False)
        for gone in report.removal.removed:
            console.print(f"  - {gone}", highlight=False)
        report_problems(plan)
    if plan.refused:
        raise typer.Exit(code=REFUSED_EXIT)
