# SPDX-License-Identifier: Apache-2.0
"""the web archive (archive_access, archive entries and their full-text index) and digests
(a schedule and size threshold per list, MIME or plain text per member)

On SQLite the index is an FTS5 table over `archive_entries` (external
content) kept by triggers; on PostgreSQL a generated tsvector column with a
GIN index. Either way a row leaves the index in the transaction that deletes
it. Entries for posts already accepted are built by `listserv archive
reindex`, which reads the original bytes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import listserv.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_INDEX = (
    "CREATE VIRTUAL TABLE archive_fts USING fts5(subject, sender, sender_name, body, "
    "content='archive_entries', content_rowid='post_id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER archive_entries_fts_insert AFTER INSERT ON archive_entries BEGIN "
    "INSERT INTO archive_fts(rowid, subject, sender, sender_name, body) "
    "VALUES (new.post_id, new.subject, new.sender, new.sender_name, new.body); END",
    "CREATE TRIGGER archive_entries_fts_delete AFTER DELETE ON archive_entries BEGIN "
    "INSERT INTO archive_fts(archive_fts, rowid, subject, sender, sender_name, body) "
    "VALUES ('delete', old.post_id, old.subject, old.sender, old.sender_name, old.body); END",
    "CREATE TRIGGER archive_entries_fts_update AFTER UPDATE OF subject, sender, sender_name, "
    "body ON archive_entries BEGIN "
    "INSERT INTO archive_fts(archive_fts, rowid, subject, sender, sender_name, body) "
    "VALUES ('delete', old.post_id, old.subject, old.sender, old.sender_name, old.body); "
    "INSERT INTO archive_fts(rowid, subject, sender, sender_name, body) "
    "VALUES (new.post_id, new.subject, new.sender, new.sender_name, new.body); END",
)

POSTGRESQL_INDEX = (
    "ALTER TABLE archive_entries ADD COLUMN document tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', coalesce(subject, '')), 'A') || "
    "setweight(to_tsvector('simple', coalesce(sender, '') || ' ' || coalesce(sender_name, '')),"
    " 'B') || "
    "setweight(to_tsvector('english', coalesce(body, '')), 'D')) STORED",
    "CREATE INDEX ix_archive_entries_document ON archive_entries USING gin (document)",
)


def upgrade() -> None:
    with op.batch_alter_table("mailing_lists") as batch:
        batch.add_column(
            sa.Column(
                "archive_access", sa.String(length=8), nullable=False, server_default="members"
            )
        )
        batch.add_column(
            sa.Column(
                "digest_schedule", sa.String(length=8), nullable=False, server_default="daily"
            )
        )
        batch.add_column(sa.Column("digest_hour", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("digest_size_kb", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("members") as batch:
        batch.add_column(
            sa.Column("digest_format", sa.String(length=8), nullable=False, server_default="mime")
        )
    op.create_table(
        "archive_entries",
        sa.Column("post_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("date", listserv.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("references", sa.Text(), nullable=False),
        sa.Column("parent_message_id", sa.String(length=998), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("base_subject", sa.String(length=200), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["mailing_lists.id"],
            name=op.f("fk_archive_entries_list_id_mailing_lists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_archive_entries_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("post_id", name=op.f("pk_archive_entries")),
    )
    for name, columns in (
        ("ix_archive_entries_list_date", ["list_id", "date", "post_id"]),
        ("ix_archive_entries_list_month", ["list_id", "month", "thread_id", "date"]),
        ("ix_archive_entries_list_thread", ["list_id", "thread_id"]),
        ("ix_archive_entries_list_message_id", ["list_id", "message_id"]),
        ("ix_archive_entries_list_parent", ["list_id", "parent_message_id"]),
        ("ix_archive_entries_list_base_subject", ["list_id", "base_subject"]),
    ):
        op.create_index(name, "archive_entries", columns, unique=False)
    statements = SQLITE_INDEX if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_INDEX
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS archive_fts")
    op.drop_table("archive_entries")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("digest_format")
    with op.batch_alter_table("mailing_lists") as batch:
        batch.drop_column("digest_size_kb")
        batch.drop_column("digest_hour")
        batch.drop_column("digest_schedule")
        batch.drop_column("archive_access")
