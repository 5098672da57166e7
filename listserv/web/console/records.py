# SPDX-License-Identifier: Apache-2.0
"""A list's bans, bouncing members and audit log in the console.

Reading is plain queries; banning, lifting a ban and turning delivery back
on are the acts `acts.bans.ban`, `unban` and `acts.members.enable_delivery`.
The audit log is filtered by actor, action and dates, newest first, and
exported as CSV with the same filters.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from listserv.actors import Actor
from listserv.acts import bans, members
from listserv.context import Context
from listserv.models import AuditEvent, Ban, BounceEvent, DeliveryStatus, MailingList, Member
from listserv.web.console.access import ListAccess, list_page
from listserv.web.console.held import PAGE_SIZE, filter_query, page_asked, paging
from listserv.web.pages import Page
from listserv.web.signin.visitor import Visitor

AUDIT_COLUMNS = (
    "at",
    "actor",
    "action",
    "target",
    "channel",
    "auth",
    "outcome",
    "source",
    "detail",
)


def bans_page(
    session: Session,
    visitor: Visitor,
    found: ListAccess,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Page:
    rows = session.scalars(
        select(Ban).where(Ban.list_id == found.mlist.id).order_by(Ban.pattern)
    ).all()
    return list_page(
        "web/bans.html",
        visitor,
        found,
        "Bans",
        status=status,
        notice=notice,
        errors=errors,
        bans=rows,
    )


def change_ban(ctx: Context, actor: Actor, mlist: MailingList, form: dict[str, str]) -> str:
    pattern = form.get("pattern", "")
    if form.get("action") == "unban":
        lifted = bans.unban(ctx, actor, mlist, pattern)
        return f"The ban on {lifted.pattern} is lifted."
    added = bans.ban(ctx, actor, mlist, pattern, reason=form.get("reason", ""))
    return f"{added.pattern} is banned from {mlist.display_name}."


def bounces_page(
    session: Session,
    visitor: Visitor,
    found: ListAccess,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Page:
    mlist = found.mlist
    bouncing = session.scalars(
        select(Member)
        .where(
            Member.list_id == mlist.id,
            or_(
                Member.bounce_score > 0,
                Member.delivery_status == DeliveryStatus.DISABLED_BOUNCING,
            ),
        )
        .order_by(Member.bounce_score.desc(), Member.address_key)
        .limit(500)
    ).all()
    events = session.scalars(
        select(BounceEvent)
        .where(BounceEvent.list_id == mlist.id)
        .order_by(BounceEvent.id.desc())
        .limit(PAGE_SIZE)
    ).all()
    return list_page(
        "web/bounces.html",
        visitor,
        found,
        "Bounces",
        status=status,
        notice=notice,
        errors=errors,
        bouncing=bouncing,
        events=events,
        threshold=mlist.bounce_score_threshold,
    )


def enable(ctx: Context, actor: Actor, mlist: MailingList, address: str) -> str:
    members.enable_delivery(ctx, actor, mlist, address)
    return f"Delivery to {address} is on again; its bounce score is cleared."


def _day(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    since: str = ""
    until: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, params: dict[str, str]) -> AuditFilter:
        return cls(
            actor=params.get("actor", "").strip().lower()[:320],
            action=params.get("action", "").strip()[:64],
            since=params.get("since", "").strip()[:10],
            until=params.get("until", "").strip()[:10],
            page=page_asked(params),
        )

    def errors(self) -> dict[str, str]:
        found = {}
        for key in ("since", "until"):
            value = getattr(self, key)
            if value and _day(value) is None:
                found[key] = "Enter the date as YYYY-MM-DD, for example 2026-12-01."
        return found

    def where(self, mlist: MailingList) -> list[Any]:
        clauses: list[Any] = [AuditEvent.list_name == mlist.name]
        if self.actor:
            clauses.append(AuditEvent.actor == self.actor)
        if self.action:
            clauses.append(AuditEvent.action == self.action)
        since, until = _day(self.since), _day(self.until)
        if since is not None:
            clauses.append(AuditEvent.at >= since)
        if until is not None:
            clauses.append(AuditEvent.at < until + timedelta(days=1))
        return clauses

    def query(self) -> str:
        return filter_query({k: getattr(self, k) for k in ("actor", "action", "since", "until")})


def audit_page(session: Session, visitor: Visitor, found: ListAccess, chosen: AuditFilter) -> Page:
    mlist = found.mlist
    where = chosen.where(mlist)
    total = session.scalar(select(func.count()).select_from(AuditEvent).where(*where)) or 0
    paged = paging(total, chosen.page)
    rows = session.scalars(
        select(AuditEvent)
        .where(*where)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(PAGE_SIZE)
        .offset((paged.page - 1) * PAGE_SIZE)
    ).all()
    actions = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.list_name == mlist.name)
        .distinct()
        .order_by(AuditEvent.action)
    ).all()
    errors = chosen.errors()
    return list_page(
        "web/audit.html",
        visitor,
        found,
        "Audit log",
        status=400 if errors else 200,
        rows=rows,
        paging=paged,
        chosen=chosen,
        actions=actions,
        query=chosen.query(),
        errors=errors,
    )


def audit_csv(session: Session, mlist: MailingList, chosen: AuditFilter) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AUDIT_COLUMNS)
    rows = session.scalars(
        select(AuditEvent)
        .where(*chosen.where(mlist))
        .order_by(AuditEvent.at, AuditEvent.id)
        .execution_options(yield_per=2000)
    )
    for event in rows:
        writer.writerow(
            [
                event.at.isoformat(timespec="seconds"),
                event.actor,
                event.action,
                event.target,
                event.channel,
                event.auth,
                event.outcome,
                event.source,
                json.dumps(event.detail, default=str, ensure_ascii=False),
            ]
        )
    return out.getvalue()
