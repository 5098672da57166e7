# SPDX-License-Identifier: Apache-2.0
"""owners hear of joins and leaves: notify_owners and the daily summary's mark

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import listserv.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailing_lists") as batch:
        batch.add_column(
            sa.Column("notify_owners", sa.String(length=8), nullable=False, server_default="auto")
        )
        batch.add_column(
            sa.Column(
                "owners_notified_at", listserv.models.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("mailing_lists") as batch:
        batch.drop_column("owners_notified_at")
        batch.drop_column("notify_owners")
