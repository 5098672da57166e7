# SPDX-License-Identifier: Apache-2.0
"""`listserv outbox status|retry`: the operator's view of what waits to be delivered."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from listserv import outbox
from listserv.app import prepare_database
from listserv.cli import app
from listserv.models import OutboxRecipient, utcnow
from tests.conftest import make_settings
from tests.relay_helpers import add_members, enqueue_post, write_config


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, list(args), env={"LISTSERV_CONFIG": str(config), "LISTSERV_DATABASE_URL": None}
    )
    return result.exit_code, result.output


def test_status_counts_states_and_retry_makes_deferred_mail_due(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(db_url, tmp_path / "var")
    config = write_config(tmp_path, db_url, {})
    engine, factory = prepare_database(settings)
    try:
        add_members(factory, [f"m{i}@agency.gov" for i in range(5)])
        job_id = enqueue_post(factory, settings)
        now = utcnow()
        with factory() as session, session.begin():
            claim = outbox.claim(session, "w", limit=5, lease=timedelta(minutes=1), now=now)
            first = sorted(claim.recipients, key=lambda r: r.id)
            answers = [(250, "ok"), (250, "ok"), (451, "later"), (451, "later"), (550, "no")]
            outbox.record(
                session,
                [outbox.Attempt(r, c, t) for r, (c, t) in zip(first, answers, strict=True)],
                [],
                {job_id: now + timedelta(days=5)},
                now,
            )

        add_members(factory, ["x@army.mil", "y@army.mil", "z@army.mil"])
        enqueue_post(factory, settings, personalized=False)  # the 8 members, one batch

        code, output = run(config, "outbox", "status", "--json")
        assert code == 0, output
        report = json.loads(output)
        assert report["jobs"] == 2 and report["unfinished_jobs"] == 2
        assert report["counts"] == {
            "queued": 8,
            "active": 0,
            "deferred": 2,
            "sent": 2,
            "failed": 1,
        }
        assert report["oldest_deferred"] is not None
        personal = next(j for j in report["unfinished"] if j["job"] == job_id)
        assert personal["list"] == "sm-cop" and personal["deferred"] == 2
        assert personal["next_retry"] > now.isoformat()

        code, output = run(config, "outbox", "status")
        assert code == 0 and "deferred 2" in output and "Unfinished jobs" in output

        code, output = run(config, "outbox", "retry")
        assert code == 0 and "2 deferred recipient(s) are due now" in output
        with factory() as session:
            due = session.scalars(
                select(OutboxRecipient.next_attempt_at).where(OutboxRecipient.state == "deferred")
            ).all()
        assert len(due) == 2 and all(outbox.as_utc(d) <= utcnow() for d in due)
    finally:
        engine.dispose()
