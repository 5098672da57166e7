# SPDX-License-Identifier: Apache-2.0
"""Policy alerts: many members' servers refusing our mail is the list's problem, not theirs.

This many distinct members refusing on policy grounds (DMARC, reputation,
content: 5.7.x) in POLICY_WINDOW — or POLICY_SHARE of the receiving members,
if that is fewer, but at least POLICY_MIN_MEMBERS — alerts the owners, at
most once per POLICY_WINDOW. Such refusals never count against a member.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from listserv import audit, notices, roster
from listserv.bounces.probes import BOUNCE_PROCESSOR
from listserv.context import Context
from listserv.dsn import BounceKind
from listserv.models import AuditEvent, BounceEvent, DeliveryStatus, MailingList, Member, Role

POLICY_WINDOW = timedelta(hours=24)
POLICY_MEMBERS = 5
POLICY_SHARE = 0.10
POLICY_MIN_MEMBERS = 2


def policy_alert_threshold(receiving_members: int) -> int:
    """Distinct members whose policy refusals within a day make an alert."""
    share = math.ceil(POLICY_SHARE * receiving_members)
    return max(POLICY_MIN_MEMBERS, min(POLICY_MEMBERS, share))


def policy_alert(ctx: Context, mlist: MailingList) -> bool:
    """One alert to the owners when many members refuse our mail on policy grounds."""
    since = ctx.now - POLICY_WINDOW
    rows = ctx.session.execute(
        select(BounceEvent.address_key, BounceEvent.status_code, BounceEvent.diagnostic)
        .where(
            BounceEvent.list_id == mlist.id,
            BounceEvent.kind == BounceKind.POLICY,
            BounceEvent.at > since,
        )
        .order_by(BounceEvent.at.desc(), BounceEvent.id.desc())
    ).all()
    refusing = {row[0] for row in rows}
    receiving = (
        ctx.session.scalar(
            select(func.count())
            .select_from(Member)
            .where(
                Member.list_id == mlist.id,
                Member.role == Role.MEMBER,
                Member.delivery_status == DeliveryStatus.ENABLED,
            )
        )
        or 0
    )
    needed = policy_alert_threshold(int(receiving))
    if len(refusing) < needed:
        return False
    already = ctx.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.list_name == mlist.name,
            AuditEvent.action == "bounce-policy-alert",
            AuditEvent.at > since,
        )
    )
    if already:
        return False
    samples = _samples(rows)
    owners = roster.members(ctx.session, mlist, Role.OWNER)
    for owner in owners:
        notices.send_notice(
            ctx,
            "bounce_policy_alert.txt.j2",
            owner.address,
            mlist=mlist,
            members=len(refusing),
            window_hours=int(POLICY_WINDOW.total_seconds() // 3600),
            samples=samples,
        )
    audit.record_act(
        ctx.session,
        BOUNCE_PROCESSOR,
        "bounce-policy-alert",
        list_name=mlist.name,
        target=mlist.posting_address,
        source=ctx.source,
        outcome="alerted",
        detail={"members": len(refusing), "needed": needed, "owners": len(owners)},
        at=ctx.now,
    )
    return True


def _samples(rows: Iterable[Any], limit: int = 5) -> list[dict[str, str]]:
    """A few distinct refusals, newest first, for the owners to see what went wrong."""
    seen: set[str] = set()
    samples: list[dict[str, str]] = []
    for key, status, diagnostic in rows:
        if key in seen:
            continue
        seen.add(key)
        samples.append({"address": key, "status": status or "", "diagnostic": diagnostic or ""})
        if len(samples) >= limit:
            break
    return samples
