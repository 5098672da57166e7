# SPDX-License-Identifier: Apache-2.0
"""The outbox: everything the service sends, and each recipient's delivery state.

Input is a finished message (service mail) or a post's shared decorated copy plus
its recipients; output is rows that delivery workers lease, send and settle. States
follow Postfix: queued → active → sent | deferred (retried with doubling backoff
until the job's deadline) | failed.

Two shapes of state, because a bulk copy is the same for everyone:

- `outbox_recipients`: one row per recipient, for personalized and VERP jobs (each
  recipient has a transaction of their own) and for service mail.
- `outbox_batches`: one row per SMTP transaction's worth of a bulk job's recipients
  (sorted by domain), so 100,000 bulk recipients cost 200 row writes per state change
  instead of 100,000. A recipient the relay defers or refuses leaves its batch and
  goes on as an `outbox_recipients` row.

The hot paths (adding 100,000 recipients, claiming, settling) are single SQL
statements over many rows, written with SQLAlchemy Core or the driver's executemany:
the ORM would spend more time building objects than the database spends writing.

- `jobs`: queueing a job and its recipients;
- `leases`: claiming due work, renewing and releasing leases;
- `settling`: recording the relay's answers, finishing jobs;
- `schedule`: the retry backoff and the job's deadline;
- `views`: what `listserv outbox status` and `retry` show and do;
- `tables`: the Core table handles and state groups they share.
"""

from __future__ import annotations

from listserv.outbox.jobs import BULK_BATCH, RecipientSpec, add_recipients, enqueue, queue_mail
from listserv.outbox.leases import (
    Claim,
    Leased,
    LeasedBatch,
    claim,
    held_by_others,
    renew,
    take_back,
)
from listserv.outbox.schedule import BACKOFF_MAX, BACKOFF_START, backoff, next_due
from listserv.outbox.settling import (
    Attempt,
    BatchAttempt,
    Failure,
    FinishedJob,
    Settled,
    finish_jobs,
    record,
)
from listserv.outbox.tables import as_utc
from listserv.outbox.views import JobStatus, Status, retry_now, status

__all__ = [
    "BACKOFF_MAX",
    "BACKOFF_START",
    "BULK_BATCH",
    "Attempt",
    "BatchAttempt",
    "Claim",
    "Failure",
    "FinishedJob",
    "JobStatus",
    "Leased",
    "LeasedBatch",
    "RecipientSpec",
    "Settled",
    "Status",
    "add_recipients",
    "as_utc",
    "backoff",
    "claim",
    "enqueue",
    "finish_jobs",
    "held_by_others",
    "next_due",
    "queue_mail",
    "record",
    "renew",
    "retry_now",
    "status",
    "take_back",
]
