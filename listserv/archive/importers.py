# SPDX-License-Identifier: Apache-2.0
"""Bringing an old archive in: mbox files and LISTSERV notebooks, as accepted posts.

Readers stream a file and yield one `Entry` per message with where it began:
mbox (Mailman 2 pipermail, Mailman 3 exports, Google Takeout; a `From `
line after a blank line starts a message, `>From` is unquoted) and
LISTSERV notebooks (`LIST.LOGyymm`: messages separated by a line of `=`).
`Importer` turns each entry into an accepted `Post` with its original bytes,
date, sender and Message-ID, archives it (`archive.index`, which threads it),
and skips a Message-ID the list already has. An entry without a sender or
a date is unreadable: reported with its file and position, never stored.
Everything happens in the caller's transaction, so an import that stops
leaves nothing half-done. Memory stays flat: files are read a line at a time
and rows are written with Core inserts, so the session keeps none of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from listserv.archive import headers, index
from listserv.models import MailingList, Post, PostStatus

_NOTEBOOK_NAME = re.compile(r"\.log\d{4}[a-z]?$", re.IGNORECASE)
_NOTEBOOK_SEPARATOR = re.compile(rb"^={20,}\s*$")
_FROM_LINE = re.compile(rb"^From \S+ +(.*\d{4})\s*$")
_QUOTED_FROM = re.compile(rb"^>(>*From )")


@dataclass(frozen=True)
class Entry:
    source: str
    position: int  # the message's number in its file, from 1
    line: int  # the line it starts on, from 1
    raw: bytes
    envelope_date: datetime | None = None
    end: int = 0  # bytes of the file read so far (for progress)


def _asctime(text: bytes) -> datetime | None:
    try:
        when = parsedate_to_datetime(text.decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def read_mbox(path: Path) -> Iterator[Entry]:
    """Messages of an mbox file, in order; `>From ` lines unquoted (mboxrd)."""
    lines: list[bytes] = []
    position, start, envelope, read = 0, 0, None, 0
    previous_blank = True
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            read += len(line)
            found = _FROM_LINE.match(line) if previous_blank else None
            if found:
                if position:
                    yield Entry(path.name, position, start, b"".join(lines), envelope, read)
                position, start, lines = position + 1, number, []
                envelope = _asctime(found.group(1))
            elif position:
                lines.append(_QUOTED_FROM.sub(rb"\1", line))
            previous_blank = not line.strip()
    if position:
        yield Entry(path.name, position, start, b"".join(lines), envelope, read)


def read_notebook(path: Path) -> Iterator[Entry]:
    """Messages of a LISTSERV notebook, separated by lines of `=`."""
    lines: list[bytes] = []
    position, start, read = 0, 1, 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            read += len(line)
            if _NOTEBOOK_SEPARATOR.match(line):
                if any(chunk.strip() for chunk in lines):
                    position += 1
                    yield Entry(path.name, position, start, b"".join(lines), None, read)
                lines, start = [], number + 1
            else:
                lines.append(line)
    if any(chunk.strip() for chunk in lines):
        yield Entry(path.name, position + 1, start, b"".join(lines), None, read)


def is_notebook(path: Path) -> bool:
    """A LISTSERV notebook by its name (`LIST.LOG2403`) or by its first line of `=`."""
    if _NOTEBOOK_NAME.search(path.name):
        return True
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                return bool(_NOTEBOOK_SEPARATOR.match(line))
    return False


def read_archive(path: Path) -> Iterator[Entry]:
    return read_notebook(path) if is_notebook(path) else read_mbox(path)


@dataclass(frozen=True)
class Unreadable:
    source: str
    position: int
    line: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "entry": self.position,
            "line": self.line,
            "reason": self.reason,
        }


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0
    unreadable: list[Unreadable] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "unreadable": [u.as_dict() for u in self.unreadable],
            "dry_run": self.dry_run,
        }


def _text(value: str, limit: int) -> str:
    return value.replace("\x00", "")[:limit]


@dataclass
class _Pending:
    entry: Entry
    msg: Message
    post: dict[str, Any]


class Importer:
    """Writes entries of one list's old archive as accepted posts, once each, in batches."""

    #: Entries written per round of statements.
    BATCH = 500
    #: On PostgreSQL, fresh statistics when the import has written this many, then
    #: twice as many, and so on: the lookups of each batch (Message-IDs, subjects,
    #: replies) are planned on them, and psycopg prepares a statement that runs
    #: often, so a plan made on the empty table (a scan) would be kept as it grows.
    FIRST_ANALYZE = 2000

    def __init__(
        self, session: Session, mlist: MailingList, now: datetime, by: str, *, dry_run: bool
    ) -> None:
        self.session, self.list_id, self.now, self.by = session, mlist.id, now, by
        self.result = ImportResult(dry_run=dry_run)
        #: Message-IDs counted in a dry run (a real import finds its own in the database).
        self.seen: set[str] = set()
        self.pending: list[_Pending] = []
        self.next_analyze = self.FIRST_ANALYZE
        self.postgresql = session.get_bind().dialect.name == "postgresql"

    def _refuse(self, entry: Entry, reason: str) -> None:
        self.result.unreadable.append(Unreadable(entry.source, entry.position, entry.line, reason))

    def add(self, entry: Entry) -> None:
        msg = headers.parse_raw(entry.raw)
        if not entry.raw.strip() or not msg.keys():
            self._refuse(entry, "not a message")
            return
        name, address = headers.sender(msg)
        when = headers.date(msg) or entry.envelope_date
        if not address or when is None:
            self._refuse(entry, "no From address" if not address else "no date")
            return
        message_id = "".join(headers.header(msg, "Message-ID").split())[:998]
        if not message_id:
            message_id = f"<{hashlib.sha256(entry.raw).hexdigest()[:32]}@imported.invalid>"
        post = {
            "list_id": self.list_id,
            "status": PostStatus.ACCEPTED,
            "reason": f"imported from {entry.source}",
            "sender": _text(address, 320),
            "sender_name": _text(name, 200),
            "subject": _text(headers.header(msg, "Subject"), 10_000),
            "message_id": message_id,
            "in_reply_to": "".join(headers.header(msg, "In-Reply-To").split())[:998],
            "date": when,
            "raw": entry.raw,
            "sha256": hashlib.sha256(entry.raw).hexdigest(),
            "received_at": when,
            "decided_at": self.now,
            "decided_by": self.by,
        }
        self.pending.append(_Pending(entry, msg, post))
        if len(self.pending) >= self.BATCH:
            self._write()

    def finish(self) -> ImportResult:
        self._write()
        return self.result

    def _known(self, ids: list[str]) -> set[str]:
        return set(
            self.session.scalars(
                select(Post.message_id).where(
                    Post.list_id == self.list_id, Post.message_id.in_(ids)
                )
            )
        )

    def _write(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        known = self._known(sorted({p.post["message_id"] for p in batch})) | self.seen
        fresh: list[_Pending] = []
        for item in batch:
            mid = item.post["message_id"]
            if mid in known:
                self.result.skipped += 1
                continue
            known.add(mid)
            fresh.append(item)
        self.result.imported += len(fresh)
        if self.result.dry_run:
            self.seen |= {p.post["message_id"] for p in fresh}
            return
        if not fresh:
            return
        fresh.sort(key=lambda p: (p.post["received_at"], p.entry.source, p.entry.position))
        ids = self.session.scalars(
            insert(Post).returning(Post.id, sort_by_parameter_order=True),
            [p.post for p in fresh],
        ).all()
        rows = [
            index.entry_values(
                item.msg,
                post_id=post_id,
                list_id=self.list_id,
                date=item.post["received_at"],
                message_id=item.post["message_id"],
                subject=item.post["subject"],
                sender=item.post["sender"],
                sender_name=item.post["sender_name"],
            )
            for item, post_id in zip(fresh, ids, strict=True)
        ]
        index.archive_entries(self.session, rows)
        if self.postgresql and self.result.imported >= self.next_analyze:
            index.analyze(self.session)
            self.next_analyze *= 2
