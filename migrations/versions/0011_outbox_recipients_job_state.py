# SPDX-License-Identifier: Apache-2.0
"""outbox recipients indexed by job and state, as outbox batches already are

Finishing a job asks whether any of its rows is still queued, active or deferred,
and counts its failed rows. Indexed by job alone, the database read every row of
the job to answer (SQLite visits them in id order, so the sent ones first): at a
million-member post, 150 ms a look, once a second, inside the writer's
transaction. With the state in the index both are answered from it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 20:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_recipients") as batch:
        batch.create_index("ix_outbox_recipients_job_state", ["job_id", "state"], unique=False)
        batch.drop_index("ix_outbox_recipients_job")


def downgrade() -> None:
    with op.batch_alter_table("outbox_recipients") as batch:
        batch.create_index("ix_outbox_recipients_job", ["job_id"], unique=False)
        batch.drop_index("ix_outbox_recipients_job_state")
