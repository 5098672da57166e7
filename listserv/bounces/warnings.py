# SPDX-License-Identifier: Apache-2.0
"""After disabling: the member's notices with a re-enable token, then removal.

`send_warnings` (periodic) repeats the disabled notice every
`bounce_warning_interval_days`; each carries a fresh token whose
confirmation turns delivery back on (acts.confirmed.confirm_reenable). After
`bounce_warnings` unanswered notices the member is removed, and the owners are
told at each step.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from listserv import notices, roster
from listserv.bounces.probes import ACTOR, BOUNCE_PROCESSOR, list_by_id, settle_request
from listserv.confirmations.pending import new_request
from listserv.context import Context
from listserv.models import (
    DeliveryStatus,
    MailingList,
    Member,
    PendingRequest,
    RequestKind,
    RequestStatus,
    Role,
)


def bounce_context(ctx: Context, now: datetime | None = None) -> Context:
    """The periodic job's context, audited as the bounce processor."""
    return replace(ctx, now=now or ctx.now, source=ACTOR)


def tell_member(ctx: Context, mlist: MailingList, member: Member) -> None:
    """The disabled notice (warning 0) or a later warning, with a fresh re-enable token."""
    interval = timedelta(days=mlist.bounce_warning_interval_days)
    remaining = max(0, mlist.bounce_warnings - member.bounce_warnings_sent)
    removal_at = ctx.now + interval * (remaining + 1)
    _, token = new_request(
        ctx,
        mlist,
        RequestKind.BOUNCE_REENABLE,
        member.address,
        {"member_id": member.id, "warning": member.bounce_warnings_sent},
        expires_at=removal_at,
    )
    confirm_address = mlist.address(f"-confirm+{token}")
    notices.send_notice(
        ctx,
        "bounce_disabled.txt.j2",
        member.address,
        mlist=mlist,
        reply_to=confirm_address,
        warning=member.bounce_warnings_sent,
        warnings=mlist.bounce_warnings,
        removal_date=f"{removal_at:%Y-%m-%d}",
        token=token,
        confirm_address=confirm_address,
        confirm_url=f"{ctx.settings.web.base_url}/confirm/{token}",
    )


def tell_owners(ctx: Context, mlist: MailingList, event: str, address: str, **details: Any) -> int:
    owners = roster.members(ctx.session, mlist, Role.OWNER)
    for owner in owners:
        notices.send_notice(
            ctx,
            "bounce_owner_notice.txt.j2",
            owner.address,
            mlist=mlist,
            event=event,
            address=address,
            threshold=mlist.bounce_score_threshold,
            warnings=mlist.bounce_warnings,
            interval_days=mlist.bounce_warning_interval_days,
            **details,
        )
    return len(owners)


def send_warnings(ctx: Context, now: datetime | None = None) -> int:
    """Warn members whose delivery bounces are disabled; remove them after the last warning.

    Returns how many members were warned or removed.
    """
    ctx = bounce_context(ctx, now)
    acted = 0
    lists: dict[int, MailingList | None] = {}
    disabled = ctx.session.scalars(
        select(Member)
        .where(
            Member.role == Role.MEMBER,
            Member.delivery_status == DeliveryStatus.DISABLED_BOUNCING,
        )
        .order_by(Member.id)
        .with_for_update(skip_locked=True)
    ).all()
    for member in disabled:
        mlist = list_by_id(ctx, lists, member.list_id)
        if mlist is None:
            continue
        interval = timedelta(days=mlist.bounce_warning_interval_days)
        if member.last_warning_at is not None and ctx.now < member.last_warning_at + interval:
            continue
        acted += 1
        if member.bounce_warnings_sent >= mlist.bounce_warnings:
            _remove(ctx, mlist, member)
            continue
        member.bounce_warnings_sent += 1
        member.last_warning_at = ctx.now
        tell_member(ctx, mlist, member)
    return acted


def _remove(ctx: Context, mlist: MailingList, member: Member) -> None:
    address, score, warned = member.address, member.bounce_score, member.bounce_warnings_sent
    last = member.last_bounce_at
    cancel_bounce_requests(ctx, mlist, member.address_key, "the member was removed for bouncing")
    roster.remove_member(
        ctx.session,
        mlist,
        member,
        actor=BOUNCE_PROCESSOR,
        source=ctx.source,
        reason=(
            f"delivery disabled for bouncing (score {score:g}, last bounce "
            f"{last:%Y-%m-%d} UTC); {warned} warning(s) unanswered"
            if last is not None
            else f"delivery disabled for bouncing; {warned} warning(s) unanswered"
        ),
        now=ctx.now,
    )
    notices.send_notice(ctx, "bounce_removed.txt.j2", address, mlist=mlist)
    tell_owners(ctx, mlist, "removed", address, score=score, status="", diagnostic="")


def cancel_bounce_requests(ctx: Context, mlist: MailingList, address_key: str, reason: str) -> None:
    for request in ctx.session.scalars(
        select(PendingRequest).where(
            PendingRequest.list_id == mlist.id,
            PendingRequest.address_key == address_key,
            PendingRequest.kind.in_((RequestKind.BOUNCE_REENABLE, RequestKind.BOUNCE_PROBE)),
            PendingRequest.status == RequestStatus.PENDING,
        )
    ):
        settle_request(ctx, request, RequestStatus.CANCELLED, reason)
