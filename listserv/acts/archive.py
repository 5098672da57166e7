# SPDX-License-Identifier: Apache-2.0
"""The archive as records: export a period, purge, delete posts, import an old archive.

Owners export and delete their list's posts; the retention purge of every
list at once is the site's. Every deletion is refused under a legal hold and
leaves a disposition record in the audit log (`records.retention`); every
export is audited with its period, totals and the manifest's SHA-256.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from listserv import audit
from listserv.actors import Actor
from listserv.acts.errors import Invalid, NotFound
from listserv.acts.permissions import Need, require
from listserv.archive import importers
from listserv.archive import index as archive_index
from listserv.context import Context
from listserv.models import MailingList, Post, PostStatus
from listserv.records import export, retention


def export_records(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    out: Path,
    *,
    since: datetime,
    until: datetime,
    statuses: Sequence[PostStatus],
    recipients: bool = True,
) -> export.ExportResult:
    """Every post of a period as an mbox and .eml files with a manifest of SHA-256 hashes."""
    require(ctx.session, actor, mlist, Need.MANAGE)
    try:
        result = export.export_archive(
            ctx.session,
            mlist,
            out,
            since=since,
            until=until,
            statuses=list(statuses),
            recipients=recipients,
            generated_by=actor.address,
            now=ctx.now,
        )
    except export.ExportError as exc:
        raise Invalid(str(exc), field="out") from None
    audit.record_act(
        ctx.session,
        actor,
        "archive-export",
        list_name=mlist.name,
        target=str(out.resolve()),
        source=ctx.source,
        detail={
            "period": result.manifest["period"],
            "statuses": result.manifest["statuses"],
            "totals": result.totals,
            "manifest_sha256": export.sha256_file(out / "manifest.json"),
        },
        at=ctx.now,
    )
    return result


def purge(
    ctx: Context,
    actor: Actor,
    mlists: Sequence[MailingList] | None = None,
    *,
    dry_run: bool = False,
) -> list[retention.PurgeResult]:
    """Apply the retention period now: to the given lists (owners), or every list (site)."""
    if mlists is None:
        require(ctx.session, actor, None, Need.ADMINISTER)
    for mlist in mlists or ():
        require(ctx.session, actor, mlist, Need.MANAGE)
    return retention.purge_expired(ctx.session, ctx.now, lists=mlists, actor=actor, dry_run=dry_run)


def delete_posts(
    ctx: Context, actor: Actor, mlist: MailingList, post_ids: Sequence[int], *, reason: str = ""
) -> int:
    """Delete posts of this list from the archive (any status); all named must exist."""
    require(ctx.session, actor, mlist, Need.MANAGE)
    retention.check_no_hold(mlist, "deleting posts")
    found = set(
        ctx.session.scalars(select(Post.id).where(Post.list_id == mlist.id, Post.id.in_(post_ids)))
    )
    missing = sorted(set(post_ids) - found)
    if missing:
        raise NotFound(
            f"no post {', '.join(map(str, missing))} on {mlist.display_name}", field="id"
        )
    return retention.delete_posts(ctx, actor, mlist, sorted(found), reason=reason)


#: An import this large refreshes the planner's statistics when it ends.
ANALYZE_AFTER = 1000


def import_archive(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    files: Sequence[Path],
    *,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda read: None,
) -> importers.ImportResult:
    """An old archive's messages (mbox or LISTSERV notebooks) as accepted posts.

    All of it happens in the caller's one transaction: an import that fails
    leaves nothing behind. `progress` hears the bytes read so far.
    """
    require(ctx.session, actor, mlist, Need.MANAGE)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise Invalid(f"no such file: {', '.join(missing)}", field="file")
    importer = importers.Importer(ctx.session, mlist, ctx.now, actor.address, dry_run=dry_run)
    done = 0
    for path in files:
        end = 0
        for entry in importers.read_archive(path):
            importer.add(entry)
            end = entry.end
            progress(done + end)
        done += path.stat().st_size
        progress(done)
    result = importer.finish()
    if result.imported >= ANALYZE_AFTER and not dry_run:
        archive_index.analyze(ctx.session)
    if not dry_run:
        audit.record_act(
            ctx.session,
            actor,
            "archive-import",
            list_name=mlist.name,
            target=mlist.name,
            source=ctx.source,
            detail={
                "files": [str(f.resolve()) for f in files],
                **result.as_dict(),
                "unreadable": [u.as_dict() for u in result.unreadable[:1000]],
            },
            at=ctx.now,
        )
    return result


def reindex(ctx: Context, actor: Actor, mlist: MailingList) -> int:
    """Archive entries for accepted posts that have none (posts from before the web archive)."""
    require(ctx.session, actor, mlist, Need.MANAGE)
    return archive_index.reindex(ctx.session, mlist.id)
