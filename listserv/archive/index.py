# SPDX-License-Identifier: Apache-2.0
"""Keeping `archive_entries` — and so the search index — in step with the accepted posts.

`add_post` is called where a post becomes accepted (`posting.fanout.accept_post`,
the one place the rules' accept and a moderator's approval meet) and the
importers call `archive_entries` a batch at a time; `remove_posts` is called by `records.retention`,
the only deletion path, in the deleting transaction. Held, rejected and
discarded posts never get an entry, so they are never shown or found.

Threads are kept incrementally: a post joins the thread of the nearest post
it refers to; else, when its subject says it is a reply, the thread of the
latest post with the same subject in the last `SUBJECT_WINDOW`; else it
begins one. A post that arrives after its replies (imports, slow mail)
takes in the threads those replies began. The pages run the full JWZ
algorithm (`threading`) over what they show; `thread_id` only says which
posts to show together. Rows are written with Core inserts, since an
import writes thousands a second.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from listserv.archive import headers
from listserv.archive.parts import readable_text
from listserv.archive.threading import base_subject, is_reply_subject, references_of
from listserv.models import ArchiveEntry, Post, PostStatus

#: How far back a reply without References looks for a post with its subject.
SUBJECT_WINDOW = timedelta(days=60)


def _chunks(values: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def _known_threads(
    session: Session, list_id: int, rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Thread of each archived post the rows refer to, by Message-ID."""
    wanted = sorted({ref for row in rows for ref in row["references"].split()})
    known: dict[str, int] = {}
    for chunk in _chunks(wanted):
        for mid, thread in session.execute(
            select(ArchiveEntry.message_id, ArchiveEntry.thread_id).where(
                ArchiveEntry.list_id == list_id, ArchiveEntry.message_id.in_(chunk)
            )
        ):
            known.setdefault(mid, int(thread))
    return known


def _subject_threads(
    session: Session, list_id: int, rows: Sequence[dict[str, Any]]
) -> dict[str, list[tuple[datetime, int]]]:
    """Recent (date, thread) of archived posts with the subjects of the rows' replies."""
    subjects = sorted(
        {r["base_subject"] for r in rows if r["base_subject"] and is_reply_subject(r["subject"])}
    )
    found: dict[str, list[tuple[datetime, int]]] = {}
    if not subjects:
        return found
    earliest = min(r["date"] for r in rows) - SUBJECT_WINDOW
    latest = max(r["date"] for r in rows)
    for chunk in _chunks(subjects):
        for subject, date, thread in session.execute(
            select(ArchiveEntry.base_subject, ArchiveEntry.date, ArchiveEntry.thread_id).where(
                ArchiveEntry.list_id == list_id,
                ArchiveEntry.base_subject.in_(chunk),
                ArchiveEntry.date >= earliest,
                ArchiveEntry.date <= latest,
            )
        ):
            found.setdefault(subject, []).append((date, int(thread)))
    return found


def _choose_threads(
    rows: Sequence[dict[str, Any]],
    known: dict[str, int],
    by_subject: dict[str, list[tuple[datetime, int]]],
) -> None:
    for row in rows:
        thread = next((known[r] for r in reversed(row["references"].split()) if r in known), None)
        subject, date = row["base_subject"], row["date"]
        if thread is None and subject and is_reply_subject(row["subject"]):
            recent = [
                c for c in by_subject.get(subject, ()) if date - SUBJECT_WINDOW <= c[0] <= date
            ]
            if recent:
                thread = max(recent)[1]
        row["thread_id"] = row["post_id"] if thread is None else thread
        if row["message_id"]:
            known.setdefault(row["message_id"], row["thread_id"])
        if subject:
            by_subject.setdefault(subject, []).append((date, row["thread_id"]))
    # A row whose parent came later in the same rows joins the parent's thread.
    by_id = {r["message_id"]: r for r in rows if r["message_id"]}
    changed = True
    while changed:
        changed = False
        for row in rows:
            parent = by_id.get(row["parent_message_id"])
            if row["thread_id"] == row["post_id"] and parent is not None and parent is not row:
                old, new = row["post_id"], parent["thread_id"]
                if new != old:
                    for other in rows:
                        if other["thread_id"] == old:
                            other["thread_id"] = new
                    changed = True


def _adopt_orphans(session: Session, list_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Threads begun by replies to these posts (which arrived first) become their threads."""
    by_id = {r["message_id"]: r for r in rows if r["message_id"]}
    written = {r["post_id"] for r in rows}
    moves: dict[int, int] = {}
    for chunk in _chunks(sorted(by_id)):
        for head, parent in session.execute(
            select(ArchiveEntry.post_id, ArchiveEntry.parent_message_id).where(
                ArchiveEntry.list_id == list_id,
                ArchiveEntry.parent_message_id.in_(chunk),
                ArchiveEntry.thread_id == ArchiveEntry.post_id,
            )
        ):
            if head not in written:
                moves[int(head)] = by_id[parent]["thread_id"]
    for head, thread in moves.items():
        session.execute(
            update(ArchiveEntry)
            .where(ArchiveEntry.list_id == list_id, ArchiveEntry.thread_id == head)
            .values(thread_id=thread)
            .execution_options(synchronize_session=False)
        )


def entry_values(
    msg: Message,
    *,
    post_id: int,
    list_id: int,
    date: datetime,
    message_id: str,
    subject: str,
    sender: str,
    sender_name: str,
) -> dict[str, Any]:
    """A post's entry as read from its message (its thread not yet chosen)."""
    refs = references_of(headers.header(msg, "References"), headers.header(msg, "In-Reply-To"))
    return {
        "post_id": post_id,
        "list_id": list_id,
        "date": date,
        "month": date.strftime("%Y-%m"),
        "thread_id": post_id,
        "message_id": message_id[:998],
        "references": " ".join(refs)[:10_000],
        "parent_message_id": (refs[-1] if refs else "")[:998],
        "subject": subject,
        "base_subject": base_subject(subject),
        "sender": sender,
        "sender_name": sender_name,
        "body": readable_text(msg),
    }


def archive_entries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Choose the threads of new entries of one list (in date order) and write them.

    One query for the posts they refer to, one for subjects, one insert, one
    for replies that arrived first: an import writes a batch at a time.
    """
    if not rows:
        return
    list_id = rows[0]["list_id"]
    known = _known_threads(session, list_id, rows)
    _choose_threads(rows, known, _subject_threads(session, list_id, rows))
    session.execute(insert(ArchiveEntry), list(rows))
    _adopt_orphans(session, list_id, rows)


def add_post(session: Session, post: Post, msg: Message | None = None) -> bool:
    """Archive an accepted post for reading and search (once); False if it is not accepted."""
    if post.status != PostStatus.ACCEPTED:
        return False
    session.flush()
    exists = session.scalar(select(ArchiveEntry.post_id).where(ArchiveEntry.post_id == post.id))
    if exists is not None:
        return True
    values = entry_values(
        msg if msg is not None else headers.parse_raw(post.raw),
        post_id=post.id,
        list_id=post.list_id,
        date=post.received_at,
        message_id=post.message_id,
        subject=post.subject,
        sender=post.sender,
        sender_name=post.sender_name,
    )
    archive_entries(session, [values])
    return True


def analyze(session: Session) -> None:
    """Fresh planner statistics after a large import (the database's own ANALYZE).

    Both planners choose between the full-text index and reading newest first
    by how common a word is; without statistics they guess, and a guess made
    on an empty table is wrong for 100,000 posts.
    """
    session.execute(text("ANALYZE archive_entries"))
    session.execute(text("ANALYZE posts"))


def remove_posts(session: Session, post_ids: Sequence[int]) -> None:
    """Take posts out of the archive and its search index (the caller deletes the posts)."""
    if post_ids:
        session.execute(delete(ArchiveEntry).where(ArchiveEntry.post_id.in_(list(post_ids))))


def reindex(session: Session, list_id: int, *, batch: int = 500) -> int:
    """Entries for accepted posts that have none (posts archived before the web archive)."""
    done = 0
    last = 0
    while True:
        ids = list(
            session.scalars(
                select(Post.id)
                .outerjoin(ArchiveEntry, ArchiveEntry.post_id == Post.id)
                .where(
                    Post.list_id == list_id,
                    Post.status == PostStatus.ACCEPTED,
                    ArchiveEntry.post_id.is_(None),
                    Post.id > last,
                )
                .order_by(Post.id)
                .limit(batch)
            )
        )
        if not ids:
            return done
        for post_id in ids:
            post = session.get(Post, post_id)
            if post is not None and add_post(session, post):
                done += 1
                session.expunge(post)
            last = max(last, post_id)
