# SPDX-License-Identifier: Apache-2.0
"""Retention and legal hold: old posts go, a hold blocks every deletion, audit stays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from listserv import periodic
from listserv.acts import lists as list_acts
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import AuditEvent, InboundMessage, MailingList, Post, PostStatus
from listserv.records import retention
from tests.actors import as_actor
from tests.admin_helpers import run_cli, write_config
from tests.test_records_export import add_post

NOW = datetime.now(UTC).replace(microsecond=0)  # the CLI runs on the real clock


@pytest.fixture
def aged(ctx_factory: Callable[..., Context]) -> tuple[Context, MailingList]:
    """Posts of every status, 400 and 10 days old; the list keeps a year."""
    ctx = ctx_factory(now=NOW)
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    n = 0
    for age in (400, 10):
        for status in PostStatus:
            n += 1
            post = add_post(ctx, mlist, n, status, NOW - timedelta(days=age))
            inbound = InboundMessage(
                mail_from="jane.doe@agency.gov",
                rcpt_tos=["sm-cop@lists.example.gov"],
                raw=post.raw,
                received_at=post.received_at,
            )
            ctx.session.add(inbound)
            ctx.session.flush()
            post.inbound_id = inbound.id
    list_acts.change_settings(ctx, as_actor("root@host", "cli"), mlist, {"retention_days": 365})
    ctx.session.commit()
    return ctx, mlist


def _post_count(ctx: Context) -> int:
    return int(ctx.session.scalar(select(func.count()).select_from(Post)) or 0)


def test_retention_purges_old_posts_of_every_status_with_their_inbound_copies(
    aged: tuple[Context, MailingList],
) -> None:
    ctx, mlist = aged
    dry = retention.purge_list(ctx.session, mlist, NOW, dry_run=True)
    assert dry.posts == 4 and _post_count(ctx) == 8
    result = retention.purge_list(ctx.session, mlist, NOW)
    ctx.session.commit()
    assert result.by_status == {"accepted": 1, "held": 1, "rejected": 1, "discarded": 1}
    assert _post_count(ctx) == 4
    assert ctx.session.scalar(select(func.count()).select_from(InboundMessage)) == 4
    remaining = ctx.session.scalars(select(Post.received_at)).all()
    assert all(r > NOW - timedelta(days=365) for r in remaining)
    [record] = ctx.session.scalars(select(AuditEvent).where(AuditEvent.action == "archive-purge"))
    assert record.detail["count"] == 4
    assert sorted(p["message_id"] for p in record.detail["posts"]) == [
        f"<post{n}@agency.gov>" for n in (1, 2, 3, 4)
    ]


def test_zero_retention_keeps_everything(aged: tuple[Context, MailingList]) -> None:
    ctx, mlist = aged
    mlist.retention_days = 0
    assert retention.purge_list(ctx.session, mlist, NOW + timedelta(days=9999)).posts == 0
    assert _post_count(ctx) == 8


def test_legal_hold_blocks_purge_list_delete_and_post_delete(
    aged: tuple[Context, MailingList],
) -> None:
    ctx, mlist = aged
    list_acts.change_settings(
        ctx, as_actor("counsel@agency.gov", "cli"), mlist, {"legal_hold": True}
    )
    result = retention.purge_list(ctx.session, mlist, NOW)
    assert (result.held, result.posts) == (True, 0)
    assert retention.apply_retention(replace(ctx, now=NOW)) == 0
    with pytest.raises(retention.LegalHoldError, match="legal hold"):
        retention.delete_list(ctx, as_actor("root@host", "cli", "host"), mlist)
    post_id = ctx.session.scalars(select(Post.id)).first()
    assert post_id is not None
    with pytest.raises(retention.LegalHoldError):
        retention.delete_posts(ctx, as_actor("owner@digital.gov", "cli", "host"), mlist, [post_id])
    assert _post_count(ctx) == 8
    # Lifted: the same purge now runs.
    list_acts.change_settings(
        ctx, as_actor("counsel@agency.gov", "cli"), mlist, {"legal_hold": False}
    )
    assert retention.apply_retention(replace(ctx, now=NOW)) == 4
    changes = ctx.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "list-change").order_by(AuditEvent.id)
    ).all()
    assert [c.detail["after"] for c in changes[-2:]] == [
        {"legal_hold": True},
        {"legal_hold": False},
    ]


def test_no_housekeeping_job_deletes_audit_records(aged: tuple[Context, MailingList]) -> None:
    ctx, _ = aged
    before = set(ctx.session.scalars(select(AuditEvent.id)))
    far = replace(ctx, now=NOW + timedelta(days=365 * 50))
    for job in periodic.HOUSEKEEPING:
        job.run(far)
    ctx.session.commit()
    after = set(ctx.session.scalars(select(AuditEvent.id)))
    assert before and before <= after
    assert _post_count(ctx) == 0  # the retention job did run


def test_lists_delete_and_archive_purge_on_the_command_line(
    aged: tuple[Context, MailingList], db_url: str, tmp_path: Path
) -> None:
    ctx, _ = aged
    ctx.session.close()
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    assert run_cli(config, "lists", "set", "sm-cop", "legal_hold=true").code == 0
    purge = run_cli(config, "archive", "purge", "--json").json()
    assert purge == [
        {
            "list": "sm-cop",
            "retention_days": 365,
            "cutoff": purge[0]["cutoff"],
            "legal_hold": True,
            "deleted": 0,
            "by_status": {},
        }
    ]
    post_ids = [str(p["id"]) for p in run_cli(config, "archive", "list", "sm-cop", "--json").json()]
    refused = run_cli(config, "archive", "delete", "sm-cop", post_ids[0], "--yes")
    assert refused.code == 1 and "legal hold" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert run_cli(config, "lists", "set", "sm-cop", "legal_hold=false").code == 0
    dry = run_cli(config, "archive", "purge", "sm-cop", "--dry-run", "--json").json()
    assert dry[0]["would_delete"] == 4
    done = run_cli(config, "archive", "purge", "sm-cop", "--json").json()
    assert done[0]["deleted"] == 4
    left = [str(p["id"]) for p in run_cli(config, "archive", "list", "sm-cop", "--json").json()]
    assert len(left) == 4
    unconfirmed = run_cli(config, "archive", "delete", "sm-cop", left[0])
    assert unconfirmed.code == 1 and "nothing was deleted" in unconfirmed.stderr
    assert run_cli(config, "archive", "delete", "sm-cop", left[0], input="y\n").code == 0
    missing = run_cli(config, "archive", "delete", "sm-cop", "999999", "--yes")
    assert missing.code == 1 and "no post 999999" in missing.stderr
    actions = [e["action"] for e in run_cli(config, "audit", "--list", "sm-cop", "--json").json()]
    assert "archive-purge" in actions and "post-delete" in actions


def test_lists_delete_is_confirmed_refused_for_configured_lists_and_audited(
    ctx_factory: Callable[..., Context], db_url: str, tmp_path: Path
) -> None:
    ctx_factory().session.close()
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    configured = run_cli(config, "lists", "delete", "sm-cop", "--yes")
    assert configured.code == 1 and "defined in" in configured.stderr
    created = run_cli(
        config,
        "lists",
        "create",
        "foia-team",
        "--display-name",
        "FOIA Team",
        "--owner",
        "lead@agency.gov",
        "--set",
        "retention_days=30",
    )
    assert created.code == 0, created.stderr
    assert run_cli(config, "members", "add", "foia-team", "a@agency.gov", "--no-welcome").code == 0
    run_cli(config, "lists", "set", "foia-team", "legal_hold=true")
    held = run_cli(config, "lists", "delete", "foia-team", "--yes")
    assert held.code == 1 and "under legal hold" in held.stderr
    run_cli(config, "lists", "set", "foia-team", "legal_hold=false")
    declined = run_cli(config, "lists", "delete", "foia-team", input="n\n")
    assert declined.code == 1 and "was not deleted" in declined.stderr
    assert run_cli(config, "lists", "delete", "foia-team", input="y\n").code == 0
    names = [entry["name"] for entry in run_cli(config, "lists", "list", "--json").json()]
    assert names == ["sm-cop"]
    [deleted] = run_cli(config, "audit", "--action", "list-delete", "--json").json()
    assert deleted["list"] == "foia-team"
    assert deleted["detail"]["contents"]["members"] == 1
    # The list's own audit trail outlives it.
    trail = run_cli(config, "audit", "--list", "foia-team", "--json").json()
    assert [e["action"] for e in trail][:2] == ["list-create", "owner-add"]
