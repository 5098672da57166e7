# SPDX-License-Identifier: Apache-2.0
"""inbound leases and results

Inbound messages are leased like outbox rows (lease_owner, lease_until), and
each recipient of a message has one result row, unique, written in the same
transaction as its effects; posts are unique per inbound message and list.
Posts already doubled by two hosts keep their rows; only the later ones lose
the link to the inbound message, so the constraint can hold.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 01:30:51.579420
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import listserv.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inbound_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=400), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.Column("at", listserv.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["inbound_messages.id"],
            name=op.f("fk_inbound_results_inbound_id_inbound_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_results")),
        sa.UniqueConstraint("inbound_id", "recipient", name=op.f("uq_inbound_results_inbound_id")),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lease_owner", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("lease_until", listserv.models.UTCDateTime(timezone=True), nullable=True)
        )

    op.execute(
        "UPDATE posts SET inbound_id = NULL WHERE inbound_id IS NOT NULL AND id NOT IN "
        "(SELECT first_id FROM (SELECT MIN(id) AS first_id FROM posts "
        "WHERE inbound_id IS NOT NULL GROUP BY inbound_id, list_id) AS firsts)"
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_posts_inbound_id"), ["inbound_id", "list_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_posts_inbound_id"), type_="unique")

    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")

    op.drop_table("inbound_results")
