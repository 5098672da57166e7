# SPDX-License-Identifier: Apache-2.0
"""Conduct measures: moderate or suspend a member until a date, note, lift.

These are the owners' steps of escalation (see `conduct.py` for what is in
force and how it is applied). Each act checks that the actor is an owner,
that an end date is in the future, and audits the measure with the conduct
fields before and after.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from listserv import conduct
from listserv.actors import Actor
from listserv.acts.errors import Invalid
from listserv.acts.members import Change, change_fields, find
from listserv.acts.permissions import Need, require
from listserv.conduct import Measure
from listserv.context import Context
from listserv.models import DeliveryStatus, MailingList, Member


def _future(ctx: Context, until: datetime | None, what: str) -> None:
    if until is not None and until <= ctx.now:
        raise Invalid(f"the end of the {what} must be in the future", field="until")


def _apply(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    member: Member,
    changes: dict[str, Any],
    measure: Measure,
) -> Change:
    require(ctx.session, actor, mlist, Need.MANAGE)
    before = conduct.apply_measure(
        ctx.session, actor, mlist, member, changes, measure, source=ctx.source, now=ctx.now
    )
    return Change(member, before)


def moderate(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    address: str,
    *,
    until: datetime | None,
    note: str,
) -> Change:
    """Hold every post of this member for the moderators, until a date (None: until lifted)."""
    member = find(ctx, mlist, address)
    _future(ctx, until, "moderation")
    changes = {"moderated": True, "moderated_until": until, "conduct_note": note.strip()}
    return _apply(ctx, actor, mlist, member, changes, Measure.MODERATE)


def suspend(
    ctx: Context, actor: Actor, mlist: MailingList, address: str, *, until: datetime, note: str
) -> Change:
    """Stop delivery to and posting by this member until a date; they stay on the roster."""
    member = find(ctx, mlist, address)
    _future(ctx, until, "suspension")
    changes = {
        "delivery_status": DeliveryStatus.SUSPENDED,
        "suspended_until": until,
        "conduct_note": note.strip(),
    }
    return _apply(ctx, actor, mlist, member, changes, Measure.SUSPEND)


def note(ctx: Context, actor: Actor, mlist: MailingList, address: str, *, text: str) -> Change:
    """Record a reminder or notice on the member (the first steps of escalation)."""
    member = find(ctx, mlist, address)
    return _apply(ctx, actor, mlist, member, {"conduct_note": text.strip()}, Measure.NOTE)


def lift(ctx: Context, actor: Actor, mlist: MailingList, address: str) -> Change:
    """End moderation and suspension now; the note is cleared (the audit log keeps it)."""
    member = find(ctx, mlist, address)
    changes = conduct.lift_changes(member, moderation=True, suspension=True)
    return _apply(ctx, actor, mlist, member, changes, Measure.LIFT)


def unmoderate(ctx: Context, actor: Actor, mlist: MailingList, address: str) -> Change:
    """Stop holding this member's posts: a plain setting (a suspension, a note stay)."""
    member = find(ctx, mlist, address)
    require(ctx.session, actor, mlist, Need.MANAGE)
    return change_fields(ctx, actor, mlist, member, {"moderated": False, "moderated_until": None})
