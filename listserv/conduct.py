# SPDX-License-Identifier: Apache-2.0
"""Conduct measures on one member: what is in force, and applying or lifting it.

Communities of practice escalate: a reminder, a notice, a temporary measure,
then removal. The first two are notes on the member; the temporary measures
are moderation (every post held for the moderators) and suspension (no
delivery and no posting), each optionally ending on a date and lifted by
`lift_expired` when it comes. The owners' acts are in `acts/conduct.py`;
this module holds what they and the posting rules share: the words for a
member's standing, whether a post may go straight out, and `apply_measure`,
which changes the row through the roster and audits the measure.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from listserv import audit, roster
from listserv.actors import Actor, system_actor
from listserv.context import Context
from listserv.models import DeliveryStatus, MailingList, Member


class Measure(enum.StrEnum):
    """The audit action of each measure (filter with `listserv audit --action`)."""

    MODERATE = "member-moderate"
    SUSPEND = "member-suspend"
    LIFT = "member-conduct-lift"
    NOTE = "member-conduct-note"


def conduct_view(member: Member) -> dict[str, Any]:
    """The conduct fields of a member, JSON-ready, for audit before/after."""
    return {
        "moderated": member.moderated,
        "moderated_until": member.moderated_until.isoformat() if member.moderated_until else None,
        "delivery_status": member.delivery_status,
        "suspended_until": member.suspended_until.isoformat() if member.suspended_until else None,
        "conduct_note": member.conduct_note,
    }


def describe(member: Member) -> str:
    """One line for `members show` and QUERY: what is in force, until when, why."""
    parts = []
    if member.delivery_status == DeliveryStatus.SUSPENDED:
        until = member.suspended_until
        parts.append(f"suspended until {until:%Y-%m-%d %H:%M} UTC" if until else "suspended")
    if member.moderated:
        until = member.moderated_until
        parts.append(f"moderated until {until:%Y-%m-%d %H:%M} UTC" if until else "moderated")
    text = "; ".join(parts) or "in good standing"
    if member.conduct_note:
        text += f" — {member.conduct_note}"
    return text


def posting_restriction(member: Member, now: datetime) -> str | None:
    """Why a member's post may not go straight out ("suspended", "moderated"), or None.

    Compares the end dates with `now` itself, so a measure that has expired
    but not yet been lifted by the periodic job no longer applies.
    """
    if member.delivery_status == DeliveryStatus.SUSPENDED and (
        member.suspended_until is None or member.suspended_until > now
    ):
        return "suspended"
    if member.moderated and (member.moderated_until is None or member.moderated_until > now):
        return "moderated"
    return None


def apply_measure(
    session: Session,
    actor: Actor,
    mlist: MailingList,
    member: Member,
    changes: dict[str, Any],
    action: str,
    *,
    source: str,
    now: datetime,
) -> dict[str, Any]:
    """Change the conduct fields and audit the measure with them before and after.

    The member's history gets its `change` event through the roster, so
    `members_at` knows a suspended member received nothing.
    """
    before = conduct_view(member)
    changed = roster.change_member(
        session, mlist, member, changes, actor=actor, source=source, now=now
    )
    if changed:
        audit.record_act(
            session,
            actor,
            action,
            list_name=mlist.name,
            target=member.address,
            source=source,
            detail={"before": before, "after": conduct_view(member)},
            at=now,
        )
    return changed


def lift_changes(member: Member, *, moderation: bool, suspension: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if moderation:
        changes.update(moderated=False, moderated_until=None)
    if suspension:
        changes["suspended_until"] = None
        if member.delivery_status == DeliveryStatus.SUSPENDED:
            changes["delivery_status"] = DeliveryStatus.ENABLED
    still_moderated = member.moderated and not moderation
    still_suspended = member.delivery_status == DeliveryStatus.SUSPENDED and not suspension
    if not (still_moderated or still_suspended):
        changes["conduct_note"] = ""
    return changes


def lift_expired(ctx: Context) -> int:
    """Lift every moderation and suspension whose end date has come (periodic job).

    Only measures with a date end by themselves: moderation set without one
    (an owner's standing decision) stays until an owner lifts it.
    """
    session, now = ctx.session, ctx.now
    actor = system_actor()
    due = session.scalars(
        select(Member)
        .where(
            or_(
                Member.moderated_until <= now,
                Member.suspended_until <= now,
            )
        )
        .order_by(Member.id)
    ).all()
    lists: dict[int, MailingList] = {}
    lifted = 0
    for member in due:
        mlist = lists.get(member.list_id) or session.get(MailingList, member.list_id)
        if mlist is None:
            continue
        lists[member.list_id] = mlist
        moderation = member.moderated_until is not None and member.moderated_until <= now
        suspension = member.suspended_until is not None and member.suspended_until <= now
        changes = lift_changes(member, moderation=moderation, suspension=suspension)
        if apply_measure(
            session, actor, mlist, member, changes, Measure.LIFT, source="expiry", now=now
        ):
            lifted += 1
    return lifted
