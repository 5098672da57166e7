# SPDX-License-Identifier: Apache-2.0
"""a member's change of address: the membership history keeps the key they had before

An `address` event in `membership_events` carries the new address and, in
`previous_address_key`, the old one, so the history of one member reads
through both. Rows written before this have no previous address ("").

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("membership_events") as batch:
        batch.add_column(
            sa.Column(
                "previous_address_key", sa.String(length=320), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("membership_events") as batch:
        batch.drop_column("previous_address_key")
