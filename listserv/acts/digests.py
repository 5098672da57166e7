# SPDX-License-Identifier: Apache-2.0
"""Sending a list's digest now (Mailman's `digests --send`), as an owner asks.

The periodic job sends digests when they are due; this act sends one at once,
for the posts since the last digest, and is audited `digest-send` with what it
found. A dry run says what would go and changes nothing.
"""

from __future__ import annotations

from listserv import audit, digests
from listserv.actors import Actor
from listserv.acts.permissions import Need, require
from listserv.context import Context
from listserv.digests import DigestRun
from listserv.models import MailingList


def send_now(ctx: Context, actor: Actor, mlist: MailingList, *, dry_run: bool = False) -> DigestRun:
    require(ctx.session, actor, mlist, Need.MANAGE)
    run = digests.send_digest(ctx, mlist, on_demand=True, dry_run=dry_run)
    if not dry_run:
        audit.record_act(
            ctx.session,
            actor,
            "digest-send",
            list_name=mlist.name,
            target=mlist.name,
            source=ctx.source,
            detail={"posts": run.posts, "recipients": run.recipients, "queued": run.queued},
            at=ctx.now,
        )
    return run
