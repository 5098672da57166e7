# SPDX-License-Identifier: Apache-2.0
"""Bans: an owner bars an address or pattern from a list; a site admin from every list.

The pattern is checked (`bans.normalise_pattern`) before it is stored, and
each addition and removal is audited with the ban before or after. Members
who already match stay on the roster — removing them is a separate,
deliberate act — but they can no longer post or rejoin.
"""

from __future__ import annotations

from typing import Any

from listserv import audit
from listserv.actors import Actor
from listserv.acts.errors import Conflict, Invalid, NotFound
from listserv.acts.permissions import Need, require
from listserv.bans import BanError, find_ban, normalise_pattern, pattern_kind
from listserv.context import Context
from listserv.models import Ban, MailingList


def _view(ban: Ban, mlist: MailingList | None) -> dict[str, Any]:
    return {
        "pattern": ban.pattern,
        "kind": pattern_kind(ban.pattern),
        "scope": mlist.name if mlist is not None else "site",
        "reason": ban.reason,
    }


def _need(mlist: MailingList | None) -> Need:
    return Need.MANAGE if mlist is not None else Need.ADMINISTER


def ban(
    ctx: Context, actor: Actor, mlist: MailingList | None, pattern: str, *, reason: str = ""
) -> Ban:
    """Store a ban on a list (or site-wide for None); audited `ban-add`."""
    require(ctx.session, actor, mlist, _need(mlist))
    try:
        stored = normalise_pattern(pattern)
    except BanError as exc:
        raise Invalid(str(exc), field="pattern") from None
    where = mlist.display_name if mlist is not None else "the site"
    if find_ban(ctx.session, mlist, stored) is not None:
        raise Conflict(f"{stored} is already banned on {where}", field="pattern")
    stored_ban = Ban(
        list_id=mlist.id if mlist is not None else None,
        pattern=stored,
        reason=reason.strip(),
        created_by=actor.address[:320],
        created_at=ctx.now,
    )
    ctx.session.add(stored_ban)
    ctx.session.flush()
    ctx.memo.bans.clear()  # the batch's later messages see the new ban
    audit.record_act(
        ctx.session,
        actor,
        "ban-add",
        list_name=mlist.name if mlist is not None else "",
        target=stored,
        source=ctx.source,
        detail={"after": _view(stored_ban, mlist)},
        at=ctx.now,
    )
    return stored_ban


def unban(ctx: Context, actor: Actor, mlist: MailingList | None, pattern: str) -> Ban:
    """Lift a ban (NotFound if there is none); audited `ban-remove`.

    The pattern is looked up as typed and in its stored form, so `UNBAN
    Jane@Example.COM` finds the ban stored as `jane@example.com`.
    """
    candidates = [pattern.strip()]
    try:
        candidates.append(normalise_pattern(pattern))
    except BanError:
        pass
    require(ctx.session, actor, mlist, _need(mlist))
    found = next(
        (b for b in (find_ban(ctx.session, mlist, c) for c in candidates) if b is not None),
        None,
    )
    if found is None:
        where = mlist.display_name if mlist is not None else "the site"
        raise NotFound(f"{pattern.strip()} is not banned on {where}.", field="pattern")
    before = _view(found, mlist)
    ctx.session.delete(found)
    ctx.session.flush()
    ctx.memo.bans.clear()
    audit.record_act(
        ctx.session,
        actor,
        "ban-remove",
        list_name=mlist.name if mlist is not None else "",
        target=found.pattern,
        source=ctx.source,
        detail={"before": before},
        at=ctx.now,
    )
    return found
