# SPDX-License-Identifier: Apache-2.0
"""Charts of a community, drawn on the server as SVG: no script, no third-party library.

Input is a list's history (`membership_events`, `posts`, `bounce_events`),
counted per day, week or month by the database itself, so a list of 100,000
members costs one grouped query per chart, not 100,000 rows in Python.
Output is a `Chart`: its points, which the template shows both as an SVG
(`role="img"`, titled) and as a table beside it for screen readers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from html import escape
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from listserv.models import (
    BounceEvent,
    MailingList,
    MembershipChange,
    MembershipEvent,
    Post,
    PostStatus,
    Role,
)

#: The most recent periods a chart shows.
PERIODS = 24
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 220, 56, 36, 12
INK, LINE, GRID = "#1b1b1b", "#005ea2", "#dfe1e2"


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def bucket(session: Session, column: Any, period: Period) -> ColumnElement[str]:
    """The period a timestamp falls in, as YYYY-MM-DD of its first day, on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.date_trunc(period.value, column), "YYYY-MM-DD")
    if period == Period.DAY:
        return func.strftime("%Y-%m-%d", column)
    if period == Period.WEEK:  # the Monday starting the week, as PostgreSQL's date_trunc
        return func.date(column, "weekday 0", "-6 days")
    return func.strftime("%Y-%m-01", column)


@dataclass(frozen=True)
class Chart:
    title: str
    period: Period
    points: tuple[tuple[str, int], ...]  # (first day of the period, value)
    columns: tuple[str, ...] = ("Period", "Value")
    rows: tuple[tuple[Any, ...], ...] = ()  # the table beside the chart
    kind: str = "line"

    @property
    def empty(self) -> bool:
        return not self.points


def members_over_time(session: Session, mlist: MailingList, period: Period) -> Chart:
    """Members at the end of each period, from the joins, leaves and removals of the history.

    A leave whose actor is the member themselves is someone leaving; any
    other (an owner, the bounce processor) is a removal.
    """
    when = bucket(session, MembershipEvent.at, period).label("period")
    kind = case(
        (MembershipEvent.event == MembershipChange.JOIN, "joined"),
        (func.lower(MembershipEvent.actor) == MembershipEvent.address_key, "left"),
        else_="removed",
    ).label("kind")
    rows = session.execute(
        select(when, kind, func.count())
        .where(
            MembershipEvent.list_id == mlist.id,
            MembershipEvent.role == Role.MEMBER,
            MembershipEvent.event.in_((MembershipChange.JOIN, MembershipChange.LEAVE)),
        )
        .group_by(when, kind)
        .order_by(when)
    ).all()
    counted: dict[str, dict[str, int]] = {}
    for label, what, count in rows:
        counted.setdefault(str(label), {})[str(what)] = int(count)
    total = 0
    points, table = [], []
    for label in sorted(counted):
        got = counted[label]
        joined, left, removed = got.get("joined", 0), got.get("left", 0), got.get("removed", 0)
        total += joined - left - removed
        points.append((label, total))
        table.append((label, joined, left, removed, total))
    return Chart(
        "Members over time",
        period,
        tuple(points[-PERIODS:]),
        ("Period starting", "Joined", "Left", "Removed", "Members at the end"),
        tuple(table[-PERIODS:]),
    )


def _per_period(
    session: Session, title: str, column: Any, where: list[Any], period: Period
) -> Chart:
    when = bucket(session, column, period).label("period")
    rows = session.execute(
        select(when, func.count()).where(*where).group_by(when).order_by(when.desc()).limit(PERIODS)
    ).all()
    points = tuple(sorted((str(label), int(count)) for label, count in rows))
    return Chart(title, period, points, ("Week starting", "Count"), points, kind="bars")


def posts_per_week(session: Session, mlist: MailingList) -> Chart:
    where = [Post.list_id == mlist.id, Post.status == PostStatus.ACCEPTED]
    return _per_period(session, "Posts per week", Post.received_at, where, Period.WEEK)


def bounces_per_week(session: Session, mlist: MailingList) -> Chart:
    where = [BounceEvent.list_id == mlist.id]
    return _per_period(session, "Bounces per week", BounceEvent.at, where, Period.WEEK)


def _y(value: int, top: int) -> float:
    plot = HEIGHT - PAD_BOTTOM - PAD_TOP
    return HEIGHT - PAD_BOTTOM - (value / top) * plot if top else HEIGHT - PAD_BOTTOM


def svg(chart: Chart, chart_id: str) -> str:
    """The chart as an inline SVG; presentation attributes only (the CSP forbids inline style)."""
    top = max((v for _, v in chart.points), default=0) or 1
    n = len(chart.points)
    plot_w = WIDTH - PAD_LEFT - 8
    step = plot_w / max(n, 1)
    parts = [
        f'<svg role="img" aria-labelledby="{chart_id}-title" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" class="chart" focusable="false">',
        f'<title id="{chart_id}-title">{escape(chart.title)}: see the table for the figures</title>',
        f'<line x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH - 8}" '
        f'y2="{HEIGHT - PAD_BOTTOM}" stroke="{INK}"/>',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{HEIGHT - PAD_BOTTOM}" '
        f'stroke="{INK}"/>',
        f'<line x1="{PAD_LEFT}" y1="{_y(top, top):.1f}" x2="{WIDTH - 8}" y2="{_y(top, top):.1f}" '
        f'stroke="{GRID}"/>',
        f'<text x="{PAD_LEFT - 6}" y="{_y(top, top) + 5:.1f}" text-anchor="end" '
        f'font-size="13" fill="{INK}">{top}</text>',
        f'<text x="{PAD_LEFT - 6}" y="{HEIGHT - PAD_BOTTOM + 5}" text-anchor="end" '
        f'font-size="13" fill="{INK}">0</text>',
    ]
    if chart.kind == "bars":
        for i, (_, value) in enumerate(chart.points):
            y = _y(value, top)
            parts.append(
                f'<rect x="{PAD_LEFT + i * step + step * 0.15:.1f}" y="{y:.1f}" '
                f'width="{step * 0.7:.1f}" height="{HEIGHT - PAD_BOTTOM - y:.1f}" fill="{LINE}"/>'
            )
    elif n:
        xs = [PAD_LEFT + (i + 0.5) * step for i in range(n)]
        line = " ".join(
            f"{x:.1f},{_y(v, top):.1f}" for x, (_, v) in zip(xs, chart.points, strict=True)
        )
        parts.append(f'<polyline points="{line}" fill="none" stroke="{LINE}" stroke-width="3"/>')
    if n:
        parts.append(
            f'<text x="{PAD_LEFT}" y="{HEIGHT - 10}" font-size="13" fill="{INK}">'
            f"{escape(chart.points[0][0])}</text>"
        )
        parts.append(
            f'<text x="{WIDTH - 8}" y="{HEIGHT - 10}" text-anchor="end" font-size="13" '
            f'fill="{INK}">{escape(chart.points[-1][0])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
