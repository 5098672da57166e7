# SPDX-License-Identifier: Apache-2.0
"""Reading the archive: months, a month's threads, one post in its thread, a month as mbox.

Input: a session and a list id (the caller has checked access). Output:
plain values for the pages. Every query reads `archive_entries` through an
index that starts with the list, so a page costs the same with 100 or
100,000 posts; only a month's own posts are threaded (JWZ) per request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, literal, select, tuple_
from sqlalchemy.orm import Session

from listserv.archive.threading import Item, thread
from listserv.models import ArchiveEntry, Post, UTCDateTime

#: Threads on one page of a month.
THREADS_PER_PAGE = 50
#: The most posts of one thread shown with a post.
THREAD_LIMIT = 500
#: Posts read per round trip when streaming a month's mbox.
MBOX_BATCH = 200


@dataclass(frozen=True)
class Month:
    month: str  # YYYY-MM
    posts: int

    @property
    def label(self) -> str:
        return datetime.strptime(self.month, "%Y-%m").strftime("%B %Y")


@dataclass(frozen=True)
class Line:
    """A post as a line of a thread listing."""

    post_id: int
    depth: int
    subject: str
    sender: str
    sender_name: str
    date: datetime


@dataclass(frozen=True)
class ThreadView:
    subject: str
    lines: list[Line]
    last: datetime


@dataclass(frozen=True)
class MonthPage:
    month: str
    threads: list[ThreadView]
    page: int
    pages: int
    posts: int
    latest: datetime | None


_COLUMNS = (
    ArchiveEntry.post_id,
    ArchiveEntry.message_id,
    ArchiveEntry.references,
    ArchiveEntry.subject,
    ArchiveEntry.sender,
    ArchiveEntry.sender_name,
    ArchiveEntry.date,
)


def months(session: Session, list_id: int) -> list[Month]:
    """Every month with posts, newest first, with its count."""
    rows = session.execute(
        select(ArchiveEntry.month, func.count())
        .where(ArchiveEntry.list_id == list_id)
        .group_by(ArchiveEntry.month)
        .order_by(ArchiveEntry.month.desc())
    ).all()
    return [Month(str(m), int(n)) for m, n in rows]


def latest_date(session: Session, list_id: int) -> datetime | None:
    found: datetime | None = session.scalar(
        select(func.max(ArchiveEntry.date)).where(ArchiveEntry.list_id == list_id)
    )
    return found


def _threads(rows: list[tuple[object, ...]]) -> list[ThreadView]:
    by_id = {int(str(r[0])): r for r in rows}
    items = [
        Item(
            key=int(str(r[0])),
            message_id=str(r[1]),
            references=str(r[2]).split(),
            subject=str(r[3]),
            date=r[6],  # type: ignore[arg-type]
        )
        for r in rows
    ]
    views: list[ThreadView] = []
    for root in thread(items):
        lines = [_line(by_id[item.key], depth) for depth, item in root.walk()]
        views.append(ThreadView(root.subject(), lines, root.last_date()))
    return views


def _line(row: tuple[object, ...], depth: int) -> Line:
    return Line(int(str(row[0])), depth, str(row[3]), str(row[4]), str(row[5]), row[6])  # type: ignore[arg-type]


def month_page(
    session: Session, list_id: int, month: str, page: int = 1, per_page: int = THREADS_PER_PAGE
) -> MonthPage:
    """The month's threads, the most recently active first, one page of them.

    The page's threads are chosen from the (list, month, thread, date) index
    alone; only their posts are read and threaded, so a month of thousands
    of posts costs what a page of fifty threads does.
    """
    in_month = (ArchiveEntry.list_id == list_id, ArchiveEntry.month == month)
    posts, threads, latest = session.execute(
        select(
            func.count(), func.count(ArchiveEntry.thread_id.distinct()), func.max(ArchiveEntry.date)
        ).where(*in_month)
    ).one()
    pages = max(1, -(-int(threads) // per_page))
    page = min(max(1, page), pages)
    last = func.max(ArchiveEntry.date)
    chosen = [
        int(t)
        for t, _ in session.execute(
            select(ArchiveEntry.thread_id, last)
            .where(*in_month)
            .group_by(ArchiveEntry.thread_id)
            .order_by(last.desc(), ArchiveEntry.thread_id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    ]
    rows = [
        tuple(r)
        for r in session.execute(
            select(*_COLUMNS, ArchiveEntry.thread_id).where(
                *in_month, ArchiveEntry.thread_id.in_(chosen)
            )
        ).all()
    ]
    order = {thread: n for n, thread in enumerate(chosen)}
    views: list[tuple[int, ThreadView]] = []
    for thread_id in chosen:
        group = [r[:-1] for r in rows if r[-1] == thread_id]
        views += [(order[thread_id], view) for view in _threads(group)]
    views.sort(key=lambda v: (v[0], -v[1].last.timestamp()))
    return MonthPage(month, [v for _, v in views], page, pages, int(posts), latest)


@dataclass(frozen=True)
class PostView:
    entry: ArchiveEntry
    raw: bytes
    thread: list[Line]
    previous: int | None
    next: int | None


def _neighbour(session: Session, entry: ArchiveEntry, *, before: bool) -> int | None:
    date, pid = ArchiveEntry.date, ArchiveEntry.post_id
    key, here = tuple_(date, pid), tuple_(literal(entry.date, UTCDateTime()), entry.post_id)
    if before:
        cond, order = key < here, (date.desc(), pid.desc())
    else:
        cond, order = key > here, (date.asc(), pid.asc())
    found = session.scalar(
        select(pid).where(ArchiveEntry.list_id == entry.list_id, cond).order_by(*order).limit(1)
    )
    return None if found is None else int(found)


def post_view(session: Session, list_id: int, post_id: int) -> PostView | None:
    """One archived post with its thread and the posts before and after it in the list."""
    entry = session.get(ArchiveEntry, post_id)
    if entry is None or entry.list_id != list_id:
        return None
    raw = session.scalar(select(Post.raw).where(Post.id == post_id))
    if raw is None:
        return None
    rows = [
        tuple(r)
        for r in session.execute(
            select(*_COLUMNS)
            .where(ArchiveEntry.list_id == list_id, ArchiveEntry.thread_id == entry.thread_id)
            .limit(THREAD_LIMIT)  # no ORDER BY: it would lead SQLite to the date index
        ).all()
    ]
    lines = [line for view in _threads(rows) for line in view.lines]
    return PostView(
        entry,
        raw,
        lines,
        _neighbour(session, entry, before=True),
        _neighbour(session, entry, before=False),
    )


def recent(session: Session, list_id: int, limit: int = 50) -> list[ArchiveEntry]:
    """The latest posts, newest first (the Atom feed)."""
    return list(
        session.scalars(
            select(ArchiveEntry)
            .where(ArchiveEntry.list_id == list_id)
            .order_by(ArchiveEntry.date.desc(), ArchiveEntry.post_id.desc())
            .limit(limit)
        )
    )


def _from_line(sender: str, date: datetime) -> bytes:
    who = "".join(sender.split()) or "MAILER-DAEMON"
    return f"From {who} {date.astimezone(UTC).strftime('%a %b %d %H:%M:%S %Y')}\n".encode()


def mbox_entry(sender: str, date: datetime, raw: bytes) -> bytes:
    """One post in mboxrd framing: the From line, `>`-quoted From lines, a blank line after."""
    body = raw.replace(b"\r\n", b"\n")
    lines = body.split(b"\n")
    quoted = [b">" + line if line.lstrip(b">").startswith(b"From ") else line for line in lines]
    text = b"\n".join(quoted)
    if not text.endswith(b"\n"):
        text += b"\n"
    return _from_line(sender, date) + text + b"\n"


def month_mbox(session: Session, list_id: int, month: str) -> Iterator[bytes]:
    """The month's posts as an mbox, oldest first, read a batch at a time."""
    after: tuple[datetime, int] | None = None
    while True:
        stmt = (
            select(ArchiveEntry.date, ArchiveEntry.post_id, Post.sender, Post.raw)
            .join(Post, Post.id == ArchiveEntry.post_id)
            .where(ArchiveEntry.list_id == list_id, ArchiveEntry.month == month)
            .order_by(ArchiveEntry.date, ArchiveEntry.post_id)
            .limit(MBOX_BATCH)
        )
        if after is not None:
            stmt = stmt.where(
                tuple_(ArchiveEntry.date, ArchiveEntry.post_id)
                > tuple_(literal(after[0], UTCDateTime()), after[1])
            )
        rows = session.execute(stmt).all()
        if not rows:
            return
        for date, post_id, sender, raw in rows:
            yield mbox_entry(sender, date, raw)
            after = (date, post_id)


def has_month(session: Session, list_id: int, month: str) -> bool:
    return (
        session.scalar(
            select(ArchiveEntry.post_id)
            .where(ArchiveEntry.list_id == list_id, ArchiveEntry.month == month)
            .limit(1)
        )
        is not None
    )
