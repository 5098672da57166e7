# SPDX-License-Identifier: Apache-2.0
"""The archive as records: export a period for a records request, purge, delete posts.

Owners export and delete their list's posts; the retention purge of every
list at once is the site's. Every deletion is refused under a legal hold and
leaves a disposition record in the audit log (`records.retention`); every
export is audited with its period, totals and the manifest's SHA-256.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from listserv import audit
from listserv.actors import Actor
from listserv.acts.errors import Invalid, NotFound
from listserv.acts.permissions import Need, require
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
