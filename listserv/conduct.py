# SPDX-License-Identifier: Apache-2.0
"""Conduct enforcement: moderation and suspension of one member, until a date.

Communities of practice escalate: a reminder, a notice, a temporary measure,
then removal. The first two are notes on the member (`note_member`); the
temporary measures are moderation (every post held for the moderators) and
suspension (no delivery and no posting), each optionally ending on a date
and lifted by `lift_expired` when it comes; removal is `roster.remove_member`.

Input is a member row and what an owner decided; output is the changed row,
its membership history (through `roster.change_member`, so a suspension is
visible to `members_at` — a suspended member received nothing) and an audit
record naming the measure with the conduct fields before and after. Callers
(CLI, email commands, web) have already proved the actor is an owner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from listserv import audit, roster
from listserv.context import Context
from listserv.models import DeliveryStatus, MailingList, Member

#: Audit actions this module writes (filter with `listserv audit --action`).
ACTIONS = ("member-moderate", "member-suspend", "member-conduct-lift", "member-conduct-note")


class ConductError(ValueError):
    """A measure that cannot be applied as asked (e.g. an end date in the past)."""


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


def _apply(
    ctx: Context,
    mlist: MailingList,
    member: Member,
    changes: dict[str, Any],
    action: str,
    *,
    actor: str,
    auth: str,
) -> dict[str, Any]:
    return _apply_in(
        ctx.session,
        mlist,
        member,
        changes,
        action,
        actor=actor,
        auth=auth,
        channel=ctx.channel,
        source=ctx.source,
        now=ctx.now,
    )


def _apply_in(
    session: Session,
    mlist: MailingList,
    member: Member,
    changes: dict[str, Any],
    action: str,
    *,
    actor: str,
    auth: str,
    channel: str,
    source: str,
    now: datetime,
) -> dict[str, Any]:
    before = conduct_view(member)
    changed = roster.change_member(
        session,
        mlist,
        member,
        changes,
        actor=actor,
        channel=channel,
        auth=auth,
        source=source,
        now=now,
    )
    if changed:
        audit.record(
            session,
            action,
            channel=channel,
            list_name=mlist.name,
            actor=actor,
            target=member.address,
            source=source,
            auth=auth,
            detail={"before": before, "after": conduct_view(member)},
            at=now,
        )
    return changed


def _future(until: datetime | None, now: datetime, what: str) -> None:
    if until is not None and until <= now:
        raise ConductError(f"the end of the {what} must be in the future")


def moderate_member(
    ctx: Context,
    mlist: MailingList,
    member: Member,
    *,
    until: datetime | None,
    note: str,
    actor: str,
    auth: str,
) -> dict[str, Any]:
    """Hold every post of this member for the moderators, until a date (None: until lifted)."""
    _future(until, ctx.now, "moderation")
    return _apply(
        ctx,
        mlist,
        member,
        {"moderated": True, "moderated_until": until, "conduct_note": note.strip()},
        "member-moderate",
        actor=actor,
        auth=auth,
    )


def suspend_member(
    ctx: Context,
    mlist: MailingList,
    member: Member,
    *,
    until: datetime,
    note: str,
    actor: str,
    auth: str,
) -> dict[str, Any]:
    """Stop delivery to and posting by this member until a date; they stay on the roster."""
    _future(until, ctx.now, "suspension")
    return _apply(
        ctx,
        mlist,
        member,
        {
            "delivery_status": DeliveryStatus.SUSPENDED,
            "suspended_until": until,
            "conduct_note": note.strip(),
        },
        "member-suspend",
        actor=actor,
        auth=auth,
    )


def note_member(
    ctx: Context, mlist: MailingList, member: Member, *, note: str, actor: str, auth: str
) -> dict[str, Any]:
    """Record a reminder or notice on the member (the first steps of escalation)."""
    return _apply(
        ctx,
        mlist,
        member,
        {"conduct_note": note.strip()},
        "member-conduct-note",
        actor=actor,
        auth=auth,
    )


def _lift_changes(member: Member, *, moderation: bool, suspension: bool) -> dict[str, Any]:
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


def lift_conduct(
    ctx: Context, mlist: MailingList, member: Member, *, actor: str, auth: str
) -> dict[str, Any]:
    """End moderation and suspension now; the note is cleared (the audit log keeps it)."""
    return _apply(
        ctx,
        mlist,
        member,
        _lift_changes(member, moderation=True, suspension=True),
        "member-conduct-lift",
        actor=actor,
        auth=auth,
    )


def lift_expired(session: Session, now: datetime) -> int:
    """Lift every moderation and suspension whose end date has come (periodic job).

    Only measures with a date end by themselves: moderation set without one
    (an owner's standing decision) stays until an owner lifts it.
    """
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
        changes = _lift_changes(member, moderation=moderation, suspension=suspension)
        if _apply_in(
            session,
            mlist,
            member,
            changes,
            "member-conduct-lift",
            actor="system",
            auth="",
            channel="system",
            source="expiry",
            now=now,
        ):
            lifted += 1
    return lifted
