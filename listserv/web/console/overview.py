# SPDX-License-Identifier: Apache-2.0
"""/admin and a list's dashboard: what waits for the person, and how the community grows.

Reads only. Counts come from the database (indexed by list and status), the
charts from `charts`; the members chart is kept in memory until the roster
changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listserv.acts.permissions import Need
from listserv.models import (
    MailingList,
    Member,
    PendingRequest,
    Post,
    PostStatus,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.web.console import charts
from listserv.web.console.access import ListAccess, visible_lists
from listserv.web.console.search import roster_version
from listserv.web.pages import Memo, Page
from listserv.web.signin.pages import console_page
from listserv.web.signin.visitor import Visitor


@dataclass(frozen=True)
class Counts:
    members: int
    held: int
    requests: int


def member_count(session: Session, memo: Memo, mlist: MailingList) -> int:
    """Counting 100,000 index entries costs milliseconds: kept until the roster changes."""
    version = roster_version(session)
    key = ("member-count", mlist.id)
    count: int | None = memo.get(key, version)
    if count is None:
        count = session.scalar(
            select(func.count()).where(Member.list_id == mlist.id, Member.role == Role.MEMBER)
        )
        count = int(count or 0)
        memo.put(key, version, count)
    return count


def counts(session: Session, memo: Memo, mlist: MailingList) -> Counts:
    members = member_count(session, memo, mlist)
    held = session.scalar(
        select(func.count()).where(Post.list_id == mlist.id, Post.status == PostStatus.HELD)
    )
    requests = session.scalar(
        select(func.count()).where(
            PendingRequest.list_id == mlist.id,
            PendingRequest.kind == RequestKind.SUBSCRIBE,
            PendingRequest.status == RequestStatus.AWAITING_APPROVAL,
        )
    )
    return Counts(members, held or 0, requests or 0)


def admin_page(session: Session, memo: Memo, visitor: Visitor) -> Page:
    found = visible_lists(session, visitor)
    rows = [(each, counts(session, memo, each.mlist)) for each in found]
    return console_page(
        "web/admin.html", visitor, title="Lists you manage", rows=rows, MANAGE=Need.MANAGE
    )


def members_chart(
    session: Session, memo: Memo, mlist: MailingList, by: charts.Period
) -> charts.Chart:
    """Grouping the whole history takes a while on a big list: kept until the roster changes."""
    version = roster_version(session)
    key = ("members-chart", mlist.id, by)
    chart: charts.Chart | None = memo.get(key, version)
    if chart is None:
        chart = charts.members_over_time(session, mlist, by)
        memo.put(key, version, chart)
    return chart


def dashboard_page(
    session: Session, memo: Memo, visitor: Visitor, found: ListAccess, period: str
) -> Page:
    try:
        by = charts.Period(period)
    except ValueError:
        by = charts.Period.WEEK
    mlist = found.mlist
    shown = [
        members_chart(session, memo, mlist, by),
        charts.posts_per_week(session, mlist),
        charts.bounces_per_week(session, mlist),
    ]
    return console_page(
        "web/admin_list.html",
        visitor,
        title=mlist.display_name,
        list=mlist,
        access=found,
        counts=counts(session, memo, mlist),
        charts=[(chart, charts.svg(chart, f"chart-{i}")) for i, chart in enumerate(shown)],
        period=by.value,
        periods=[p.value for p in charts.Period],
    )
