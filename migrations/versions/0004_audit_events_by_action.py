# SPDX-License-Identifier: Apache-2.0
"""audit events by action

An index for counting audit rows of one action (the `limit-tripped` rows
that `/metrics` reads at every scrape) without scanning the whole log.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-07 01:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_action_at", "audit_events", ["action", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_events_action_at", table_name="audit_events")
