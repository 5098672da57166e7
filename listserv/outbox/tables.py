# SPDX-License-Identifier: Apache-2.0
"""The outbox's two state tables as SQLAlchemy Core handles, and the state groups
every part of the queue asks about (open for a try, not yet finished).

The hot paths are single statements over many rows written in Core, not the ORM,
so the queue's modules share these handles.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table

from listserv.models import OutboxBatch, OutboxJob, OutboxRecipient, OutboxState

#: One row per recipient (personalized and VERP jobs, service mail, batch leftovers).
RECIPIENTS = cast(Table, OutboxRecipient.__table__)
#: One row per SMTP transaction's worth of a bulk job's recipients.
BATCHES = cast(Table, OutboxBatch.__table__)
JOBS = cast(Table, OutboxJob.__table__)

#: States a claim may pick up once due.
OPEN = (OutboxState.QUEUED.value, OutboxState.DEFERRED.value)
#: States that keep a job from being finished.
UNFINISHED = (OutboxState.QUEUED.value, OutboxState.ACTIVE.value, OutboxState.DEFERRED.value)

#: Ids per `IN (…)` list: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 900


def as_utc(value: datetime) -> datetime:
    """A time read back from the database as an aware UTC datetime.

    Columns come back aware, but an aggregate such as `min()` bypasses the column
    type and is naive on SQLite.
    """
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
