# SPDX-License-Identifier: Apache-2.0
"""Bounces end to end: a post goes out with a VERP return path, its bounce comes back
over SMTP into the running service, and the member's score moves as it is processed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from listserv import bounces, periodic, roster
from listserv.app import Service, build_service
from listserv.lists import get_list
from listserv.models import BounceEvent, InboundMessage, Member, Post
from tests.actors import as_actor
from tests.conftest import (
    mail_to,
    make_message,
    make_settings,
    read_maildir,
    send,
    settle,
    wait_for,
)
from tests.relay_helpers import ScriptedRelay, add_members, enqueue_post, smtp_delivery
from tests.test_bounces import make_dsn, sample

JANE = "jane@agency.gov"
BOB = "bob@agency.gov"


def add_member(service: Service, address: str) -> int:
    with service.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        return roster.add_member(session, mlist, address, actor=as_actor("test", "cli")).id


def events(service: Service) -> list[BounceEvent]:
    with service.factory() as session:
        found = list(session.scalars(select(BounceEvent).order_by(BounceEvent.id)))
        for event in found:
            session.expunge(event)
        return found


def last_inbound(service: Service) -> InboundMessage:
    with service.factory() as session:
        row = session.scalars(select(InboundMessage).order_by(InboundMessage.id.desc())).first()
        assert row is not None
        session.expunge(row)
        return row


def run_bounce_job(service: Service) -> int:
    """The periodic job exactly as the service runs it (one round, its own transaction)."""
    [job] = [job for job in periodic.HOUSEKEEPING if job.name == "bounces"]
    assert job.run is bounces.housekeeping
    keeper = periodic.Housekeeper(service.factory, service.settings, service.templates)
    return keeper.once(job)


async def test_verp_round_trip_from_post_to_scored_bounce(service: Service) -> None:
    jane = add_member(service, JANE)
    add_member(service, BOB)
    post = make_message(sender=f"Bob <{BOB}>", subject="Monthly call", body="Agenda attached.\n")
    assert await send(service, post) == {}
    [copy] = await mail_to(service, JANE)
    return_path = str(copy["Return-Path"]).strip("<>")
    assert return_path == "sm-cop-bounces+jane=agency.gov@lists.example.gov"

    dsn = make_dsn(JANE, to=return_path)
    assert await send(service, dsn, mail_from="", rcpt_to=return_path) == {}
    accepted = time.monotonic()
    await wait_for(lambda: score_of(service, jane) == 1.0, timeout=5, interval=0.01)
    scored_after = time.monotonic() - accepted
    assert scored_after < 1.0, f"scored {scored_after:.2f} s after the 250"
    await settle(service)
    [event] = events(service)
    assert (event.member_id, event.source, event.kind, event.status_code) == (
        jane,
        "verp",
        "permanent",
        "5.1.1",
    )
    assert last_inbound(service).reason.endswith("bounce recorded: jane@agency.gov permanent 5.1.1")

    assert event.processed
    # The periodic job finds nothing left to score, and changes nothing.
    assert run_bounce_job(service) == 0
    assert score_of(service, jane) == 1.0


def score_of(service: Service, member_id: int) -> float:
    with service.factory() as session:
        member = session.get(Member, member_id)
        assert member is not None
        return member.bounce_score


async def test_plain_bounces_address_takes_a_dsn_and_survives_garbage(service: Service) -> None:
    add_member(service, "jdoe@agency.gov")
    bounces_address = "sm-cop-bounces@lists.example.gov"
    assert await send(service, sample("garbage.bin"), mail_from="", rcpt_to=bounces_address) == {}
    await settle(service)
    garbage = last_inbound(service)
    assert garbage.status == "done" and "kept for the owners" in garbage.reason
    # The worker carries on with the next message.
    raw = sample("postfix_user_unknown.eml")
    assert await send(service, raw, mail_from="", rcpt_to=bounces_address) == {}
    await settle(service)
    unreadable, dsn = events(service)
    assert (unreadable.kind, unreadable.member_id, unreadable.inbound_id) == (
        "unrecognised",
        None,
        garbage.id,
    )
    assert (dsn.address_key, dsn.source, dsn.kind) == ("jdoe@agency.gov", "dsn", "permanent")
    # The owner got the unreadable one forwarded.
    [forwarded] = await mail_to(service, "owner@digital.gov")
    assert forwarded["X-Listserv-Bounce-Forward"] == "sm-cop@lists.example.gov"


async def test_auto_reply_to_a_verp_address_is_neither_post_nor_command(service: Service) -> None:
    add_member(service, "dana.whitfield@agency.gov")
    rcpt = "sm-cop-bounces+dana.whitfield=agency.gov@lists.example.gov"
    raw = sample("vacation_autoreply.eml")
    assert await send(service, raw, mail_from="dana.whitfield@agency.gov", rcpt_to=rcpt) == {}
    await settle(service)
    assert "discarded: auto-reply" in last_inbound(service).reason
    assert events(service) == []
    with service.factory() as session:
        assert session.scalars(select(Post)).all() == []
    assert read_maildir(service.settings.delivery.maildir) == []


@pytest.fixture
async def strict_service(db_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    """The service with a list that disables at the first bounce."""
    settings = make_settings(db_url, tmp_path / "var", list={"bounce_score_threshold": 1})
    svc = build_service(settings)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def test_disabled_member_is_told_and_turns_delivery_back_on_by_reply(
    strict_service: Service,
) -> None:
    service = strict_service
    jane = add_member(service, JANE)
    rcpt = "sm-cop-bounces+jane=agency.gov@lists.example.gov"
    assert await send(service, make_dsn(JANE, to=rcpt), mail_from="", rcpt_to=rcpt) == {}
    await settle(service)
    run_bounce_job(service)
    service.outbox_ready.set()
    [notice] = await mail_to(service, JANE)
    [owner_notice] = await mail_to(service, "owner@digital.gov")
    assert "disabled for bouncing" in owner_notice["Subject"]
    assert notice["Return-Path"] == "<sm-cop-bounces@lists.example.gov>"
    with service.factory() as session:
        member = session.get(Member, jane)
        assert member is not None and member.delivery_status == "disabled-bouncing"

    reply = make_message(
        sender=f"Jane <{JANE}>", to=notice["Reply-To"], subject="Re: " + notice["Subject"]
    )
    assert await send(service, reply) == {}
    await settle(service)
    with service.factory() as session:
        member = session.get(Member, jane)
        assert member is not None
        assert (member.delivery_status, member.bounce_score) == ("enabled", 0.0)


async def test_a_relay_refusal_scores_its_member_as_the_delivery_settles(
    sqlite_url: str, tmp_path: Path
) -> None:
    relay = ScriptedRelay(
        rcpt_answer=lambda a: "550 5.1.1 <jane@agency.gov>: User unknown" if a == JANE else None
    )
    await relay.start()
    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    service = build_service(settings)
    await service.start()
    try:
        jane, bob = add_members(service.factory, [JANE, BOB])
        enqueue_post(service.factory, settings)
        service.outbox_ready.set()
        await wait_for(lambda: score_of(service, jane) == 1.0, timeout=10, interval=0.02)
        [event] = events(service)
        assert (event.member_id, event.source, event.kind, event.status_code) == (
            jane,
            "relay",
            "permanent",
            "550",
        )
        assert event.processed and score_of(service, bob) == 0.0
        assert run_bounce_job(service) == 0
    finally:
        await service.stop()
        await relay.stop()
