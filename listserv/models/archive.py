# SPDX-License-Identifier: Apache-2.0
"""The archive's reading copy of each accepted post: what pages, threads and search read.

Every column is derived from the accepted post's original bytes (`posts.raw`)
and can be rebuilt from them; nothing here is new information. A row exists
exactly while its post is accepted and kept: it is written when the post is
accepted (`archive.index`) and deleted with the post (`records.retention`, and
the foreign key's cascade behind it). The full-text index hangs off this
table and so follows it in the same transaction: on SQLite an FTS5 table
with external content kept by triggers (`archive_fts`), on PostgreSQL a
generated `tsvector` column (`document`) with a GIN index. Both are made by
the migration only, because neither can be said in portable SQLAlchemy;
`SEARCH_OBJECTS` tells the schema comparison to leave them out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from listserv.models.base import Base

#: Tables and columns of the search index that live outside the models.
SEARCH_OBJECTS = frozenset({"archive_fts", "document", "ix_archive_entries_document"})


def include_in_schema(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's `include_object`: leave out the FTS5 tables and the tsvector column."""
    return not (name in SEARCH_OBJECTS or (name or "").startswith("archive_fts_"))


class ArchiveEntry(Base):
    """One accepted post as the archive shows it, with the thread it belongs to."""

    __tablename__ = "archive_entries"
    __table_args__ = (
        Index("ix_archive_entries_list_date", "list_id", "date", "post_id"),
        Index("ix_archive_entries_list_month", "list_id", "month", "thread_id", "date"),
        Index("ix_archive_entries_list_thread", "list_id", "thread_id"),
        Index("ix_archive_entries_list_message_id", "list_id", "message_id"),
        Index("ix_archive_entries_list_parent", "list_id", "parent_message_id"),
        Index("ix_archive_entries_list_base_subject", "list_id", "base_subject"),
    )

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    #: When the list received it (for an imported post, the date it was sent).
    date: Mapped[datetime] = mapped_column()
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM of `date`, UTC
    #: The post that began its thread (its own id when it began one).
    thread_id: Mapped[int] = mapped_column()
    message_id: Mapped[str] = mapped_column(String(998), default="")
    #: The Message-IDs it refers to, oldest first, space-separated (References, In-Reply-To).
    references: Mapped[str] = mapped_column(Text, default="")
    parent_message_id: Mapped[str] = mapped_column(String(998), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    #: The subject without Re:/Fwd: and the list's tag, for threads by subject.
    base_subject: Mapped[str] = mapped_column(String(200), default="")
    sender: Mapped[str] = mapped_column(String(320), default="")
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    #: The readable text of the post (text parts, HTML parts as text), for search.
    body: Mapped[str] = mapped_column(Text, default="")
