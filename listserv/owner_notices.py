# SPDX-License-Identifier: Apache-2.0
"""Owners hear of joins and leaves, as LISTSERV's SUBSCRIBE/SIGNOFF notices and
Mailman's `admin_notify_mchanges` tell them.

Per list, `notify_owners`: `each` mails the owners at every join, leave and removal
for bounces; `daily` mails one summary a day of the roster's changes, read from
the membership history; `none` mails nothing; `auto` (the default) is `each`
under :data:`DAILY_FROM` members, else `daily`, so a large list's owners are not
buried in mail. A notice says what an owner may see anyway on the roster: the
address, the name and title given, when, and by which way (mail, web, bounces).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from listserv import notices, roster
from listserv.context import Context
from listserv.models import (
    MailingList,
    Member,
    MembershipChange,
    MembershipEvent,
    NotifyOwners,
    Role,
)

#: Members from which `auto` sends one summary a day instead of a mail per change.
DAILY_FROM = 5000

#: How often the summary goes out in `daily` mode.
SUMMARY_INTERVAL = timedelta(days=1)

#: The words a notice uses for what happened.
JOINED, LEFT, REMOVED_FOR_BOUNCES = "joined", "left", "was removed because mail to it bounced"


def _large(ctx: Context, mlist: MailingList) -> bool:
    """At least DAILY_FROM members: an index range scan that stops there, not a full count."""
    found = ctx.session.scalar(
        select(Member.id)
        .where(Member.list_id == mlist.id, Member.role == Role.MEMBER)
        .order_by(Member.id)
        .offset(DAILY_FROM - 1)
        .limit(1)
    )
    return found is not None


def mode(ctx: Context, mlist: MailingList) -> NotifyOwners:
    """The list's setting, with `auto` decided by the list's size."""
    chosen = NotifyOwners(mlist.notify_owners)
    if chosen is not NotifyOwners.AUTO:
        return chosen
    return NotifyOwners.DAILY if _large(ctx, mlist) else NotifyOwners.EACH


def roster_changed(
    ctx: Context,
    mlist: MailingList,
    address: str,
    what: str,
    *,
    how: str = "",
    name: str = "",
    title: str = "",
) -> int:
    """Tell each owner at once, if the list says `each`; the number of notices sent."""
    if mode(ctx, mlist) is not NotifyOwners.EACH:
        return 0
    owners = roster.members(ctx.session, mlist, Role.OWNER)
    for owner in owners:
        notices.send_notice(
            ctx,
            "owner_roster_notice.txt.j2",
            owner.address,
            mlist=mlist,
            address=address,
            what=what,
            how=how,
            name=name,
            title=title,
        )
    return len(owners)


def _describe(event: MembershipEvent) -> str:
    if event.event == MembershipChange.JOIN:
        return JOINED
    if event.actor == "bounces" or event.channel == "bounces":
        return REMOVED_FOR_BOUNCES
    return LEFT


def send_summary(ctx: Context, mlist: MailingList) -> int:
    """The day's joins and leaves in one mail to each owner, if the list says `daily`."""
    since = mlist.owners_notified_at
    if since is not None and ctx.now - since < SUMMARY_INTERVAL:
        return 0
    mlist.owners_notified_at = ctx.now
    if since is None or mode(ctx, mlist) is not NotifyOwners.DAILY:
        return 0  # the first run only sets the mark: no summary of the whole past
    events = ctx.session.scalars(
        select(MembershipEvent)
        .where(
            MembershipEvent.list_id == mlist.id,
            MembershipEvent.role == Role.MEMBER,
            MembershipEvent.event.in_([MembershipChange.JOIN, MembershipChange.LEAVE]),
            MembershipEvent.at > since,
            MembershipEvent.at <= ctx.now,
        )
        .order_by(MembershipEvent.at, MembershipEvent.id)
    ).all()
    if not events:
        return 0
    changes = [
        {"at": e.at, "address": e.address, "what": _describe(e), "how": e.channel} for e in events
    ]
    owners = roster.members(ctx.session, mlist, Role.OWNER)
    for owner in owners:
        notices.send_notice(
            ctx,
            "owner_roster_summary.txt.j2",
            owner.address,
            mlist=mlist,
            changes=changes,
            joined=sum(1 for c in changes if c["what"] == JOINED),
            left=sum(1 for c in changes if c["what"] != JOINED),
            since=since,
        )
    return len(owners)


def send_summaries(ctx: Context) -> int:
    """The periodic job: every list's summary that is due."""
    return sum(
        send_summary(ctx, mlist)
        for mlist in ctx.session.scalars(select(MailingList).order_by(MailingList.id))
    )
