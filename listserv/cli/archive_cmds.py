# SPDX-License-Identifier: Apache-2.0
"""`listserv archive list|export|purge|delete|import|reindex`: the list's records on the host.

`export` writes a FOIA-ready directory (records.py); `purge` applies each
list's retention period now (the service also does it hourly); `delete`
removes single posts. Both deletions are refused under legal hold and are
audited with what was deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from listserv.acts import archive
from listserv.cli.common import (
    CLIError,
    actor,
    console,
    emit,
    errors,
    open_context,
    require_list,
)
from listserv.cli.options import JsonOption, ListArgument, parse_when
from listserv.lists import get_list
from listserv.models import Post, PostStatus
from listserv.records import retention

app = typer.Typer(
    help="The archive: list, export for records requests, retention.", no_args_is_help=True
)

STATUSES = [s.value for s in PostStatus]


@app.command("list")
def list_posts(
    list_name: ListArgument,
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(STATUSES)}.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Received at or after (UTC).")] = None,
    until: Annotated[
        str | None, typer.Option(help="Received before; a date includes that day.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Posts of a list (all statuses unless --status), newest first."""
    if status is not None and status not in STATUSES:
        raise CLIError(f"--status must be one of {', '.join(STATUSES)}")
    start = parse_when(since, option="--since") if since else None
    end = parse_when(until, end_of_day=True, option="--until") if until else None
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        stmt = (
            select(
                Post.id,
                Post.received_at,
                Post.status,
                Post.sender,
                Post.subject,
                Post.message_id,
                Post.sha256,
                Post.recipient_count,
                Post.reason,
            )
            .where(Post.list_id == mlist.id)
            .order_by(Post.received_at.desc(), Post.id.desc())
            .limit(max(limit, 1))
        )
        if status:
            stmt = stmt.where(Post.status == status)
        if start:
            stmt = stmt.where(Post.received_at >= start)
        if end:
            stmt = stmt.where(Post.received_at < end)
        rows = [
            {
                "id": r.id,
                "received": r.received_at,
                "status": r.status,
                "sender": r.sender,
                "subject": r.subject,
                "message_id": r.message_id,
                "sha256": r.sha256,
                "recipients": r.recipient_count,
                "reason": r.reason,
            }
            for r in ctx.session.execute(stmt)
        ]
        title = f"{mlist.display_name}: {len(rows)} post(s)"
    emit(
        rows,
        ["id", "received", "status", "sender", "subject", "recipients"],
        as_json=as_json,
        title=title,
    )


@app.command("export")
def export(
    list_name: ListArgument,
    since: Annotated[str, typer.Option(help="First day (or moment) of the period, UTC.")],
    until: Annotated[
        str, typer.Option(help="Last day of the period (included), or a moment (excluded).")
    ],
    out: Annotated[Path, typer.Option("--out", help="A new or empty directory.")],
    include_held: Annotated[
        bool, typer.Option("--include-held", help="Also posts held for moderation.")
    ] = False,
    include_rejected: Annotated[
        bool, typer.Option("--include-rejected", help="Also rejected posts.")
    ] = False,
    include_discarded: Annotated[
        bool, typer.Option("--include-discarded", help="Also discarded posts.")
    ] = False,
    recipients: Annotated[
        bool,
        typer.Option(
            "--recipients/--no-recipients",
            help="Write who received each accepted post (recipients/*.csv).",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the totals as JSON.")] = False,
) -> None:
    """Every post of a period as an mbox and .eml files, with a manifest of SHA-256 hashes."""
    start = parse_when(since, option="--since")
    end = parse_when(until, end_of_day=True, option="--until")
    statuses = [PostStatus.ACCEPTED]
    statuses += [PostStatus.HELD] if include_held else []
    statuses += [PostStatus.REJECTED] if include_rejected else []
    statuses += [PostStatus.DISCARDED] if include_discarded else []
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        try:
            result = archive.export_records(
                ctx,
                actor(),
                mlist,
                out,
                since=start,
                until=end,
                statuses=statuses,
                recipients=recipients,
            )
        except OSError as exc:
            raise CLIError(f"cannot write {out}: {exc.strerror or exc}") from None
    totals = result.totals
    if as_json:
        emit([{"directory": str(out), **totals}], [], as_json=True)
        return
    by_status = ", ".join(f"{n} {s}" for s, n in totals["by_status"].items())
    console.print(
        f"exported {totals['messages']} message(s) of {result.manifest['display_name']} "
        f"({by_status}) to {out}; check with: cd {out} && sha256sum -c SHA256SUMS",
        highlight=False,
    )


@app.command("purge")
def purge(
    list_name: Annotated[
        str | None, typer.Argument(metavar="[LIST]", help="One list (default: every list).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count; delete nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete posts older than each list's retention_days now (lists under legal hold: none)."""
    with open_context() as ctx:
        targets = None
        if list_name is not None:
            targets = [require_list(ctx.session, list_name)]
        results = archive.purge(ctx, actor(), targets, dry_run=dry_run)
        rows: list[dict[str, Any]] = []
        for result in results:
            mlist = get_list(ctx.session, result.list_name)
            rows.append(
                {
                    "list": result.list_name,
                    "retention_days": mlist.retention_days if mlist else 0,
                    "cutoff": result.cutoff,
                    "legal_hold": result.held,
                    ("would_delete" if dry_run else "deleted"): result.posts,
                    "by_status": result.by_status,
                }
            )
    emit(
        rows,
        [
            "list",
            "retention_days",
            "cutoff",
            "legal_hold",
            "would_delete" if dry_run else "deleted",
        ],
        as_json=as_json,
    )


@app.command("delete")
def delete(
    list_name: ListArgument,
    post_ids: Annotated[
        list[int], typer.Argument(metavar="POST_ID...", help="Post ids (archive list).")
    ],
    reason: Annotated[str, typer.Option(help="Recorded in the audit log.")] = "",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete posts from the archive (refused under legal hold); audited."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        retention.check_no_hold(mlist, "deleting posts")
        found = set(
            ctx.session.scalars(
                select(Post.id).where(Post.list_id == mlist.id, Post.id.in_(post_ids))
            )
        )
        missing = sorted(set(post_ids) - found)
        if missing:
            raise CLIError(f"no post {', '.join(map(str, missing))} on {mlist.display_name}")
        if not yes:
            try:
                confirmed = typer.confirm(
                    f"Delete {len(found)} post(s) from {mlist.display_name}?", default=False
                )
            except typer.Abort:
                confirmed = False
            if not confirmed:
                raise CLIError("nothing was deleted (confirm, or pass --yes)")
        count = archive.delete_posts(ctx, actor(), mlist, sorted(found), reason=reason)
    console.print(f"deleted {count} post(s) from {list_name}", highlight=False)


@app.command("import")
def import_archive(
    list_name: ListArgument,
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE...", help="mbox files or LISTSERV notebooks (LIST.LOGyymm)."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and count; write nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Bring an old archive in as accepted posts: dates, senders, Message-IDs, threads kept.

    A Message-ID the list already has is skipped; an entry without a sender or
    date is reported with its file and position and not imported. The whole
    import is one transaction: if it stops, nothing of it stays.
    """
    total = sum(f.stat().st_size for f in files if f.is_file())
    bar = Progress(
        TextColumn("importing"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=not errors.is_terminal,
    )
    with open_context() as ctx, bar:
        mlist = require_list(ctx.session, list_name)
        task = bar.add_task("importing", total=total)
        result = archive.import_archive(
            ctx,
            actor(),
            mlist,
            files,
            dry_run=dry_run,
            progress=lambda read: bar.update(task, completed=read),
        )
        if dry_run:
            ctx.session.rollback()
    if as_json:
        emit([result.as_dict()], [], as_json=True)
        return
    for bad in result.unreadable:
        errors.print(
            f"{bad.source}: entry {bad.position} (line {bad.line}) unreadable: {bad.reason}",
            highlight=False,
        )
    verb = "would import" if dry_run else "imported"
    console.print(
        f"{verb} {result.imported}, skipped {result.skipped} already archived, "
        f"{len(result.unreadable)} unreadable",
        highlight=False,
    )


@app.command("reindex")
def reindex(list_name: ListArgument) -> None:
    """Build archive pages and search entries for accepted posts that have none."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name)
        count = archive.reindex(ctx, actor(), mlist)
    console.print(f"archived {count} post(s) of {list_name} for the web", highlight=False)
