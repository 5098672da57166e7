# SPDX-License-Identifier: Apache-2.0
"""`listserv outbox status|retry`: what is waiting to be delivered, and a nudge for it."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import select

from listserv import outbox
from listserv.cli.common import console, emit, open_context
from listserv.models import MailingList, OutboxState

app = typer.Typer(help="Outgoing mail: delivery state and retries.", no_args_is_help=True)

_STATES = [s.value for s in OutboxState]


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@app.command("status")
def status(
    limit: Annotated[int, typer.Option(help="Unfinished jobs to list.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recipients per delivery state, the oldest deferral, and every unfinished job."""
    with open_context() as ctx:
        report = outbox.status(ctx.session, job_limit=limit)
        names = dict(ctx.session.execute(select(MailingList.id, MailingList.name)).all())
    jobs = [
        {
            "job": job.id,
            "kind": job.kind,
            "list": names.get(job.list_id, "") if job.list_id is not None else "",
            "created": job.created_at,
            "recipients": job.recipients,
            **{state: job.counts.get(state, 0) for state in _STATES},
            "next_retry": job.next_retry,
            "gives_up": job.expires_at,
        }
        for job in report.unfinished
    ]
    if as_json:
        document: dict[str, Any] = {
            "jobs": report.jobs,
            "unfinished_jobs": report.unfinished_jobs,
            "counts": report.counts,
            "oldest_deferred": _when(report.oldest_deferred),
            "next_retry": _when(report.next_retry),
            "unfinished": [
                {k: _when(v) if isinstance(v, datetime) else v for k, v in row.items()}
                for row in jobs
            ],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    counts = ", ".join(f"{state} {report.counts.get(state, 0)}" for state in _STATES)
    console.print(
        f"{report.jobs} job(s), {report.unfinished_jobs} unfinished; recipients: {counts}",
        highlight=False,
    )
    if report.oldest_deferred is not None:
        console.print(
            f"oldest deferred mail was queued {report.oldest_deferred:%Y-%m-%d %H:%M} UTC; "
            f"next retry {report.next_retry:%Y-%m-%d %H:%M:%S} UTC",
            highlight=False,
        )
    if jobs:
        emit(
            jobs,
            ["job", "kind", "list", "created", "recipients", *_STATES, "next_retry"],
            as_json=False,
            title="Unfinished jobs",
        )


@app.command("retry")
def retry() -> None:
    """Make every deferred recipient due now; the running service retries within a second."""
    with open_context() as ctx:
        count = outbox.retry_now(ctx.session, ctx.now)
    console.print(f"{count} deferred recipient(s) are due now", highlight=False)
