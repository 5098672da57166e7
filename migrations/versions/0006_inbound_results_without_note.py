# SPDX-License-Identifier: Apache-2.0
"""inbound results without a note

What became of each recipient is already the inbound message's `reason`; the
result row is now claimed with one INSERT … ON CONFLICT DO NOTHING before the
work, so it carries only its key and who did the work.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_results", schema=None) as batch_op:
        batch_op.drop_column("note")


def downgrade() -> None:
    with op.batch_alter_table("inbound_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
