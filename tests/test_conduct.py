# SPDX-License-Identifier: Apache-2.0
"""Conduct measures: moderation and suspension until a date, lifted at that date."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from listserv import conduct, periodic, roster
from listserv.acts import conduct as conduct_acts
from listserv.acts.errors import Invalid
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import AuditEvent, DeliveryStatus, MailingList, Member, MembershipEvent
from tests.actors import as_actor
from tests.admin_helpers import run_cli, write_config

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _setup(ctx_factory: Callable[..., Context]) -> tuple[Context, MailingList, Member]:
    ctx = ctx_factory(now=T0)
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    member = roster.add_member(
        ctx.session,
        mlist,
        "jane.doe@agency.gov",
        now=T0 - timedelta(days=30),
        actor=as_actor("test", "cli"),
    )
    ctx.session.commit()
    return ctx, mlist, member


def test_suspension_stops_delivery_and_lifts_itself_at_the_date(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx, mlist, member = _setup(ctx_factory)
    until = T0 + timedelta(days=14)
    changed = conduct_acts.suspend(
        ctx,
        as_actor("owner@digital.gov", "cli", "host"),
        mlist,
        member.address,
        until=until,
        note="second notice: personal attacks",
    ).before
    assert set(changed) == {"delivery_status", "suspended_until", "conduct_note"}
    ctx.session.commit()
    assert member.delivery_status == DeliveryStatus.SUSPENDED
    assert conduct.posting_restriction(member, T0) == "suspended"
    receiving = [
        a for batch in roster.iter_receiving_members(ctx.session, mlist.id) for _, a, _ in batch
    ]
    assert receiving == []
    # The history says a suspended member received nothing.
    assert roster.members_at(ctx.session, mlist, T0 + timedelta(days=1)) == []
    assert "suspended until 2025-03-15" in conduct.describe(member)

    # A day before the date nothing is lifted; at the date it is.
    assert conduct.lift_expired(replace(ctx, now=until - timedelta(days=1))) == 0
    assert conduct.lift_expired(replace(ctx, now=until)) == 1
    ctx.session.commit()
    assert member.delivery_status == DeliveryStatus.ENABLED
    assert member.suspended_until is None and member.conduct_note == ""
    assert conduct.posting_restriction(member, until) is None
    assert [e.address for e in roster.members_at(ctx.session, mlist, until)] == [
        "jane.doe@agency.gov"
    ]
    lifted = ctx.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "member-conduct-lift")
    )
    assert lifted is not None
    assert (lifted.actor, lifted.channel, lifted.at) == ("system", "system", until)
    assert lifted.detail["before"]["conduct_note"] == "second notice: personal attacks"
    assert lifted.detail["after"]["delivery_status"] == "enabled"
    # Run again: nothing left to lift.
    assert conduct.lift_expired(replace(ctx, now=until + timedelta(days=1))) == 0


def test_moderation_until_a_date_and_standing_moderation(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx, mlist, member = _setup(ctx_factory)
    conduct_acts.moderate(
        ctx,
        as_actor("owner@digital.gov", "cli", "host"),
        mlist,
        member.address,
        until=T0 + timedelta(days=7),
        note="reminder ignored",
    )
    other = roster.add_member(
        ctx.session, mlist, "john@army.mil", now=T0, actor=as_actor("test", "cli")
    )
    conduct_acts.moderate(
        ctx, as_actor("owner@digital.gov", "cli", "host"), mlist, other.address, until=None, note=""
    )
    ctx.session.commit()
    assert conduct.posting_restriction(member, T0) == "moderated"
    # A moderated member still receives posts.
    assert member.delivery_status == DeliveryStatus.ENABLED
    # Expired but not yet lifted: the date alone already frees the member.
    assert conduct.posting_restriction(member, T0 + timedelta(days=8)) is None
    assert conduct.lift_expired(replace(ctx, now=T0 + timedelta(days=8))) == 1
    ctx.session.commit()
    assert (member.moderated, member.moderated_until, member.conduct_note) == (False, None, "")
    # Moderation without a date stays until an owner lifts it.
    assert other.moderated is True
    conduct_acts.lift(ctx, as_actor("owner@digital.gov", "cli", "host"), mlist, other.address)
    assert other.moderated is False


def test_lifting_one_measure_keeps_the_other_and_its_note(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx, mlist, member = _setup(ctx_factory)
    conduct_acts.moderate(
        ctx,
        as_actor("o@digital.gov", "cli", "host"),
        mlist,
        member.address,
        until=T0 + timedelta(days=30),
        note="notice",
    )
    conduct_acts.suspend(
        ctx,
        as_actor("o@digital.gov", "cli", "host"),
        mlist,
        member.address,
        until=T0 + timedelta(days=3),
        note="temporary removal",
    )
    assert conduct.lift_expired(replace(ctx, now=T0 + timedelta(days=3))) == 1
    assert member.delivery_status == DeliveryStatus.ENABLED
    assert member.moderated is True
    assert member.conduct_note == "temporary removal"


def test_measures_need_a_future_date_and_every_step_is_audited(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx, mlist, member = _setup(ctx_factory)
    with pytest.raises(Invalid):
        conduct_acts.suspend(
            ctx, as_actor("o@digital.gov", "cli", "host"), mlist, member.address, until=T0, note=""
        )
    conduct_acts.note(
        ctx,
        as_actor("o@digital.gov", "cli", "host"),
        mlist,
        member.address,
        text="reminder: stay on topic",
    )
    conduct_acts.moderate(
        ctx,
        as_actor("o@digital.gov", "cli", "host"),
        mlist,
        member.address,
        until=None,
        note="notice",
    )
    conduct_acts.lift(ctx, as_actor("o@digital.gov", "cli", "host"), mlist, member.address)
    ctx.session.flush()
    actions = [
        a
        for a in ctx.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target == member.address)
            .order_by(AuditEvent.id)
        )
        if a != "member-add"
    ]
    assert actions == [
        "member-change",
        "member-conduct-note",
        "member-change",
        "member-moderate",
        "member-change",
        "member-conduct-lift",
    ]
    events = ctx.session.scalars(
        select(MembershipEvent.event).where(MembershipEvent.address_key == member.address_key)
    ).all()
    assert events == ["join", "change", "change", "change"]


def test_housekeeping_lists_the_conduct_and_retention_jobs() -> None:
    jobs = {job.name: job.run for job in periodic.HOUSEKEEPING}
    assert jobs["lift-conduct"] is conduct.lift_expired
    assert "retention" in jobs


def test_members_set_and_show_on_the_command_line(
    ctx_factory: Callable[..., Context], db_url: str, tmp_path: Path
) -> None:
    ctx, _, _ = _setup(ctx_factory)
    ctx.session.close()
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")

    def cli(*args: str):  # type: ignore[no-untyped-def]
        return run_cli(config, *args)

    future = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    result = cli(
        "members",
        "set",
        "sm-cop",
        "Jane.Doe@agency.gov",
        "--suspend-until",
        future,
        "--note",
        "temporary removal after notice",
    )
    assert result.code == 0, result.stderr
    shown = cli("members", "show", "sm-cop", "jane.doe@agency.gov", "--json").json()[0]
    assert shown["status"] == "suspended"
    assert shown["suspended_until"].startswith(future)
    assert shown["conduct_note"] == "temporary removal after notice"
    assert shown["conduct"].startswith(f"suspended until {future}")
    assert [c["action"] for c in shown["conduct_history"]] == ["member-suspend"]
    table = cli("members", "show", "sm-cop", "jane.doe@agency.gov")
    assert "suspended until" in table.stdout and "temporary removal" in table.stdout

    # --enable does not quietly end a suspension.
    refused = cli("members", "set", "sm-cop", "jane.doe@agency.gov", "--enable")
    assert refused.code == 1 and "use --lift" in refused.stderr
    assert cli("members", "set", "sm-cop", "jane.doe@agency.gov", "--lift").code == 0
    assert (
        cli(
            "members", "set", "sm-cop", "jane.doe@agency.gov", "--delivery", "digest", "--moderated"
        ).code
        == 0
    )
    shown = cli("members", "show", "sm-cop", "jane.doe@agency.gov", "--json").json()[0]
    assert (shown["status"], shown["delivery"], shown["moderated"]) == ("enabled", "digest", True)
    # A reminder is a note; a later measure without --note keeps it.
    assert cli("members", "set", "sm-cop", "jane.doe@agency.gov", "--note", "reminder").code == 0
    assert (
        cli("members", "set", "sm-cop", "jane.doe@agency.gov", "--moderate-until", future).code == 0
    )
    shown = cli("members", "show", "sm-cop", "jane.doe@agency.gov", "--json").json()[0]
    assert (shown["conduct_note"], shown["moderated_until"][:10]) == ("reminder", future)
    assert [c["action"] for c in shown["conduct_history"]] == [
        "member-suspend",
        "member-conduct-lift",
        "member-moderate",
        "member-conduct-note",
        "member-moderate",
    ]

    # Bad input: one line on stderr, non-zero exit.
    for args, message in [
        (("--suspend-until", "2001-01-01"), "must be in the future"),
        (("--suspend-until", "next week"), "is not a date"),
        (("--delivery", "sometimes"), "--delivery must be"),
        ((), "nothing to change"),
        (("--lift", "--moderated"), "cannot be combined"),
    ]:
        bad = cli("members", "set", "sm-cop", "jane.doe@agency.gov", *args)
        assert bad.code != 0, args
        assert message in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    nobody = cli("members", "set", "sm-cop", "nobody@agency.gov", "--lift")
    assert nobody.code == 1 and "is not a member" in nobody.stderr


def test_enable_clears_the_bounce_record(
    ctx_factory: Callable[..., Context], db_url: str, tmp_path: Path
) -> None:
    ctx, mlist, member = _setup(ctx_factory)
    roster.change_member(
        ctx.session,
        mlist,
        member,
        {
            "delivery_status": DeliveryStatus.DISABLED_BOUNCING,
            "bounce_score": 6.0,
            "bounce_warnings_sent": 2,
        },
        actor=as_actor("test", "system"),
    )
    ctx.session.commit()
    ctx.session.close()
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    assert run_cli(config, "members", "set", "sm-cop", "jane.doe@agency.gov", "--enable").code == 0
    shown = run_cli(config, "members", "show", "sm-cop", "jane.doe@agency.gov", "--json").json()[0]
    assert (shown["status"], shown["bounce_score"], shown["bounce_warnings_sent"]) == (
        "enabled",
        0.0,
        0,
    )
    audit = run_cli(
        config, "audit", "--target", "jane.doe@agency.gov", "--action", "member-change", "--json"
    ).json()
    assert audit[-1]["channel"] == "cli" and audit[-1]["auth"] == "host"
    assert audit[-1]["detail"]["before"]["delivery_status"] == "disabled-bouncing"
    assert audit[-1]["detail"]["after"]["delivery_status"] == "enabled"
