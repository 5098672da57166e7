# SPDX-License-Identifier: Apache-2.0
"""`listserv members import|export`: rosters in and out as files.

`import` reads CSV, plain, LISTSERV REVIEW or Mailman rosters
(`roster.files`), and `acts.imports` judges every line and writes all of it
or nothing in one bulk transaction; this module shows the progress on a
terminal and prints the plan (every refused line with its reason). `export`
writes the roster as CSV (`roster.export`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from listserv.acts import imports
from listserv.cli.common import CLIError, actor, console, errors, open_context, require_list
from listserv.models import Role
from listserv.roster.export import roster_rows, write_export
from listserv.roster.files import FORMATS, RosterFile, RosterFileError
from listserv.roster.plan import ImportPlan

ROLES = [r.value for r in Role]

#: `members import`'s exit status when some lines were refused (the rest were added).
REFUSED_EXIT = 3


class _Bars:
    """The import's progress as two bars on standard error (nothing when it is not a terminal)."""

    def __init__(self, progress: Progress, lines: int) -> None:
        self.progress = progress
        self.checking = progress.add_task("checking", total=lines)
        self.inserting: TaskID | None = None
        self.done = 0

    def checked(self, lines: int) -> None:
        self.progress.update(self.checking, completed=lines)

    def adding(self, total: int) -> None:
        self.inserting = self.progress.add_task("adding", total=total)

    def added(self, done: int) -> None:
        if self.inserting is not None:
            self.progress.advance(self.inserting, done - self.done)
        self.done = done


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        disable=not errors.is_terminal,
    )


def import_members(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    file: Annotated[str, typer.Argument(metavar="FILE", help="The roster file, or - for stdin.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="auto (default), csv, plain, listserv (REVIEW output) or mailman."
        ),
    ] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Add addresses outside the eligibility rule too.")
    ] = False,
    welcome: Annotated[
        bool, typer.Option("--welcome", help="Mail the welcome message to each new member.")
    ] = False,
    audit_each: Annotated[
        bool,
        typer.Option(
            "--audit-each/--audit-summary",
            help="An audit row per member added (default), or only the import's summary.",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Add members from a file, with a count and every line not imported.

    Good lines are added in one transaction even when others are refused; the
    exit status is then 3, so a script can tell (0: every line imported or
    already a member; 1: nothing was done).
    """
    fmt = fmt.strip().lower()
    if fmt != "auto" and fmt not in FORMATS:
        raise CLIError(f"--format must be auto or one of {', '.join(FORMATS)}")
    with contextlib.ExitStack() as stack:
        path = Path(file)
        if file == "-":  # read twice (encoding, then records): spool standard input
            spool = stack.enter_context(tempfile.NamedTemporaryFile(prefix="listserv-import-"))
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
            spool.flush()
            path = Path(spool.name)
        try:
            source = RosterFile.from_path(path, fmt)
        except OSError as exc:
            raise CLIError(f"cannot read {file}: {exc.strerror or exc}") from None
        except RosterFileError as exc:
            raise CLIError(f"{file}: {exc}") from None
        _import(list_name, file, source, force, welcome, dry_run, audit_each, as_json)


def _import(
    list_name: str,
    file: str,
    source: RosterFile,
    force: bool,
    welcome: bool,
    dry_run: bool,
    audit_each: bool,
    as_json: bool,
) -> None:
    options = imports.ImportOptions(
        force=force, welcome=welcome, dry_run=dry_run, audit_each=audit_each, label=file
    )
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        with _progress() as progress:
            bars = _Bars(progress, source.size)
            plan = imports.import_members(ctx, actor(), mlist, source, options, bars)
    _report_import(plan, mlist_name=list_name, dry_run=dry_run, as_json=as_json)
    if plan.refused:
        raise typer.Exit(code=REFUSED_EXIT)


def _report_import(plan: ImportPlan, *, mlist_name: str, dry_run: bool, as_json: bool) -> None:
    summary = {**plan.summary(), "list": mlist_name, "dry_run": dry_run}
    if as_json:
        summary["refused_lines"] = [p.as_dict() for p in plan.refused]
        summary["duplicate_lines"] = [p.as_dict() for p in plan.duplicates]
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return
    verb = "would add" if dry_run else "added"
    console.print(
        f"{mlist_name}: {plan.records} records read ({plan.format}); {verb} {len(plan.to_add)}, "
        f"already members {len(plan.already)}, duplicates in file {len(plan.duplicates)}, "
        f"refused {len(plan.refused)}"
        + (f"; {plan.ignored} header/footer lines ignored" if plan.ignored else ""),
        highlight=False,
    )
    report_problems(plan)


def report_problems(plan: ImportPlan) -> None:
    """Every refused or duplicate line, with its reason."""
    problems = sorted([*plan.refused, *plan.duplicates], key=lambda p: p.line)
    if problems:
        table = Table(title="Lines not imported")
        for column in ("line", "text", "reason"):
            table.add_column(column)
        for problem in problems:
            table.add_row(str(problem.line), problem.text, problem.reason)
        console.print(table)


def export_members(
    list_name: Annotated[str, typer.Argument(metavar="LIST")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (default: standard output).")
    ] = None,
    role: Annotated[
        str | None, typer.Option(help=f"Only this role: {', '.join(ROLES)} (default: all).")
    ] = None,
) -> None:
    """The roster as CSV: address, name, title, role, delivery, status, joined."""
    if role is not None and role not in ROLES:
        raise CLIError(f"--role must be one of {', '.join(ROLES)}")
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        rows = roster_rows(ctx.session, mlist.id, Role(role) if role else None)
        if out is None:
            write_export(rows, sys.stdout)
            return
        try:
            with out.open("w", encoding="utf-8", newline="") as handle:
                count = write_export(rows, handle)
        except OSError as exc:
            raise CLIError(f"cannot write {out}: {exc.strerror or exc}") from None
    console.print(f"exported {count} row(s) of {mlist.display_name} to {out}", highlight=False)
