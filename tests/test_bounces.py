# SPDX-License-Identifier: Apache-2.0
"""Bounce processing on a real database: recognising bounces, scoring, disabling, removing.

Bounces go through the router exactly as the processing stage hands them over,
with a clock the test sets, so weeks of bounces run in milliseconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from listserv import bounces, outbox, roster
from listserv.actors import email_actor
from listserv.addresses import parse_recipient
from listserv.config import Settings
from listserv.confirmations.dispatch import confirm
from listserv.context import Context
from listserv.db import make_engine, make_sessionmaker, upgrade
from listserv.delivery import DeliveryWorker
from listserv.lists import get_list, sync_from_config
from listserv.message import parse_message
from listserv.models import (
    AuditEvent,
    BounceEvent,
    DeliveryStatus,
    InboundMessage,
    InboundStatus,
    Member,
    MembershipEvent,
    OutboxJob,
    OutboxRecipient,
    OutboxState,
    PendingRequest,
    Post,
    RequestKind,
    RequestStatus,
    utcnow,
)
from listserv.routing.delivery import Delivery
from listserv.routing.processing import process_one
from listserv.routing.router import route
from listserv.templates import Templates
from tests.actors import as_actor
from tests.conftest import make_settings

BOUNCES = Path(__file__).parent / "data" / "bounces"
BOUNCES_ADDRESS = "sm-cop-bounces@lists.example.gov"
OWNER = "owner@digital.gov"  # the shipped configuration's owner
JANE = "jane@agency.gov"
#: A simulated clock in the past, so the outbox (which runs on the real clock) sees
#: everything the simulated days enqueue as due.
DAY0 = (utcnow() - timedelta(days=120)).replace(hour=9, minute=0, second=0, microsecond=0)


def sample(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


def verp(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"sm-cop-bounces+{local}={domain}@lists.example.gov"


def make_dsn(
    address: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str | None = None,
    to: str = BOUNCES_ADDRESS,
) -> bytes:
    """A Postfix-style RFC 3464 report about one recipient."""
    code = {"5": "550", "4": "450"}[status[0]]
    diagnostic = diagnostic or f"{code} {status} <{address}>: Recipient address rejected"
    text = f"""\
From: MAILER-DAEMON@relay.example.gov (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Thu, 14 Mar 2024 13:55:20 -0400
Message-ID: <{uuid.uuid4().hex}@relay.example.gov>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relay.example.gov.

<{address}>: host mx.example.net said: {diagnostic}

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.gov

Final-Recipient: rfc822; {address}
Original-Recipient: rfc822;{address}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--BOUNDARY
Content-Type: text/rfc822-headers

From: SM-COP <sm-cop@lists.example.gov>
To: sm-cop@lists.example.gov
Subject: [SM-COP] Monthly call

--BOUNDARY--
"""
    return text.replace("\n", "\r\n").encode()


@dataclass
class World:
    """A migrated database with the shipped list, and the stage's collaborators."""

    settings: Settings
    factory: sessionmaker[Session]
    templates: Templates

    @contextmanager
    def ctx(self, now: datetime | None = None) -> Iterator[Context]:
        with self.factory() as session, session.begin():
            yield Context(
                session=session,
                settings=self.settings,
                templates=self.templates,
                now=now or utcnow(),
                source="test",
            )

    def add(self, address: str, **changes: Any) -> int:
        with self.ctx() as ctx:
            mlist = get_list(ctx.session, "sm-cop")
            assert mlist is not None
            member = roster.add_member(ctx.session, mlist, address, actor=as_actor("test", "cli"))
            for key, value in changes.items():
                setattr(member, key, value)
            ctx.session.flush()
            return member.id

    def member(self, address: str) -> Member | None:
        with self.factory() as session:
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            member = roster.find_member(session, mlist, address)
            if member is not None:
                session.expunge(member)
            return member

    def receive(
        self, raw: bytes, rcpt: str = BOUNCES_ADDRESS, *, now: datetime, mail_from: str = ""
    ) -> str:
        """Route one message to a bounces address as the processing stage does."""
        with self.ctx(now) as ctx:
            row = InboundMessage(
                mail_from=mail_from, rcpt_tos=[rcpt], raw=raw, size=len(raw), received_at=now
            )
            ctx.session.add(row)
            ctx.session.flush()
            recipient = parse_recipient(
                rcpt, self.settings.site.domains, self.settings.site.command_address
            )
            assert recipient is not None
            mlist = get_list(ctx.session, recipient.list_name)
            delivery = Delivery(row, parse_message(raw), recipient, mlist, mail_from)
            note = route(ctx, delivery)
            row.status = InboundStatus.DONE
            row.reason = note
            return note

    def process(
        self, raw: bytes, rcpt: str = BOUNCES_ADDRESS, mail_from: str = ""
    ) -> InboundMessage:
        """Store a message and run the real processing stage on it."""
        with self.factory() as session, session.begin():
            row = InboundMessage(mail_from=mail_from, rcpt_tos=[rcpt], raw=raw, size=len(raw))
            session.add(row)
            session.flush()
            inbound_id = row.id
        process_one(self.factory, self.settings, self.templates, inbound_id)
        with self.factory() as session:
            stored = session.get(InboundMessage, inbound_id)
            assert stored is not None
            session.expunge(stored)
            return stored

    def score(self, now: datetime) -> int:
        with self.ctx(now) as ctx:
            return bounces.score_bounces(ctx, now)

    def warn(self, now: datetime) -> int:
        with self.ctx(now) as ctx:
            return bounces.send_warnings(ctx, now)

    def events(self, address: str | None = None) -> list[BounceEvent]:
        with self.factory() as session:
            stmt = select(BounceEvent).order_by(BounceEvent.id)
            if address is not None:
                stmt = stmt.where(BounceEvent.address_key == address)
            found = list(session.scalars(stmt))
            for event in found:
                session.expunge(event)
            return found

    def jobs(self) -> list[tuple[OutboxJob, list[str]]]:
        """Every outbox job with its recipients' addresses."""
        with self.factory() as session:
            result = []
            for job in session.scalars(select(OutboxJob).order_by(OutboxJob.id)):
                rcpts = list(
                    session.scalars(
                        select(OutboxRecipient.address).where(OutboxRecipient.job_id == job.id)
                    )
                )
                session.expunge(job)
                result.append((job, rcpts))
            return result

    def mail_to(self, address: str) -> list[Any]:
        """Service mail queued for `address`, parsed."""
        return [
            message_from_bytes(job.raw, policy=default)
            for job, rcpts in self.jobs()
            if address in rcpts
        ]

    def count(self, model: Any) -> int:
        with self.factory() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def make_world(db_url: str, tmp_path: Path) -> Iterator[Callable[..., World]]:
    """Worlds over the test database; keyword arguments override the list's settings."""
    engines = []

    def make(**list_settings: Any) -> World:
        settings = make_settings(db_url, tmp_path / "var", list=list_settings)
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        engines.append(engine)
        factory = make_sessionmaker(engine)
        with factory() as session, session.begin():
            sync_from_config(session, settings)
        return World(settings, factory, Templates())

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


# --- recognising --------------------------------------------------------------------------------


def test_verp_address_names_the_member_and_the_dsn_says_how_badly(world: World) -> None:
    jane = world.add(JANE)
    note = world.receive(make_dsn(JANE, to=verp(JANE)), verp(JANE), now=DAY0)
    [event] = world.events()
    assert (event.member_id, event.source, event.kind, event.status_code) == (
        jane,
        "verp",
        "permanent",
        "5.1.1",
    )
    assert event.at == DAY0
    assert "Recipient address rejected" in event.diagnostic
    assert note.startswith("bounce recorded: jane@agency.gov permanent")
    # Scored as it was processed, not at the next periodic run.
    assert event.processed is True
    member = world.member(JANE)
    assert member is not None and member.bounce_score == 1.0
    assert member.last_bounce_at == DAY0
    assert world.score(DAY0) == 0  # nothing left for the periodic job


def test_verp_needs_no_parsing_when_the_bounce_is_unreadable(world: World) -> None:
    world.add("hgarcia@agency.gov")
    world.receive(sample("truncated_report.eml"), verp("hgarcia@agency.gov"), now=DAY0)
    [event] = world.events()
    assert (event.address_key, event.source, event.kind) == (
        "hgarcia@agency.gov",
        "verp",
        "permanent",
    )


def test_verp_member_lookup_ignores_the_case_the_mta_used(world: World) -> None:
    world.add("j.smith@agency.gov")
    rcpt = "sm-cop-bounces+J.Smith=Agency.GOV@lists.example.gov"
    world.receive(sample("sendmail_user_unknown.eml"), rcpt, now=DAY0)
    [event] = world.events()
    assert (event.address_key, event.kind, event.status_code) == (
        "j.smith@agency.gov",
        "permanent",
        "5.1.1",
    )


@pytest.mark.parametrize(
    ("name", "address", "status"),
    [
        ("postfix_user_unknown.eml", "jdoe@agency.gov", "5.1.1"),
        ("exim_failed.eml", "rgreen@example.gov", "5.1.1"),
        ("sendmail_user_unknown.eml", "j.smith@agency.gov", "5.1.1"),
        ("office365_ndr.eml", "former.employee@agency.gov", "5.1.10"),
        ("gmail_user_unknown.eml", "j.rivera@agency.gov", "5.1.1"),
        ("qmail_failure.eml", "kpatel@example.gov", "5.1.1"),
    ],
)
def test_each_mta_bounce_at_the_plain_address_finds_the_member(
    world: World, name: str, address: str, status: str
) -> None:
    member_id = world.add(address)
    world.add("bystander@agency.gov")
    note = world.receive(sample(name), now=DAY0)
    [event] = world.events()
    assert (event.member_id, event.source, event.kind, event.status_code) == (
        member_id,
        "dsn",
        "permanent",
        status,
    )
    assert address in note


def test_report_about_several_recipients_records_each_member_once(world: World) -> None:
    for address in ("bwhite@agency.gov", "cjones@army.mil", "ewilson@county.example.gov"):
        world.add(address)
    note = world.receive(sample("multi_recipient.eml"), now=DAY0)
    kinds = {e.address_key: e.kind for e in world.events()}
    assert kinds == {
        "bwhite@agency.gov": "permanent",
        "cjones@army.mil": "policy",
        "ewilson@county.example.gov": "policy",
    }
    assert "dlee@state.example.gov: not a member, ignored" in note


def test_delayed_delivery_notice_is_not_a_bounce(world: World) -> None:
    world.add("mlopez@agency.gov")
    assert world.receive(
        sample("postfix_delayed.eml"), verp("mlopez@agency.gov"), now=DAY0
    ).startswith("not counted: delivery delayed")
    assert "delayed, not counted" in world.receive(sample("postfix_delayed.eml"), now=DAY0)
    assert world.events() == []
    assert world.score(DAY0) == 0
    member = world.member("mlopez@agency.gov")
    assert member is not None and member.bounce_score == 0 and member.last_bounce_at is None


@pytest.mark.parametrize(
    ("name", "rcpt"),
    [
        ("vacation_autoreply.eml", verp("dana.whitfield@agency.gov")),
        ("exchange_automatic_reply.eml", verp("kevin.ortiz@agency.gov")),
        ("vacation_autoreply.eml", BOUNCES_ADDRESS),
    ],
)
def test_auto_replies_are_discarded_never_posts_or_commands(
    world: World, name: str, rcpt: str
) -> None:
    world.add("dana.whitfield@agency.gov")
    world.add("kevin.ortiz@agency.gov")
    jobs_before = world.count(OutboxJob)
    row = world.process(sample(name), rcpt, mail_from="dana.whitfield@agency.gov")
    assert row.status == InboundStatus.DONE
    assert "discarded: auto-reply" in row.reason
    assert world.events() == []
    assert world.count(Post) == 0
    assert world.count(OutboxJob) == jobs_before  # no reply, no confirmation, no relay


def test_mail_that_is_no_bounce_at_the_plain_address_is_discarded(world: World) -> None:
    world.add(JANE)
    spam = (
        b"From: Deals <deals@shop.example.com>\r\nTo: sm-cop-bounces@lists.example.gov\r\n"
        b"Subject: unsubscribe jane@agency.gov\r\nMessage-ID: <1@shop.example.com>\r\n\r\n"
        b"join\r\nunsubscribe\r\n"
    )
    jobs_before = world.count(OutboxJob)
    row = world.process(spam, mail_from="deals@shop.example.com")
    assert row.status == InboundStatus.DONE
    assert "discarded: not a bounce" in row.reason
    assert world.events() == []
    assert world.count(OutboxJob) == jobs_before
    assert world.count(PendingRequest) == 0


@pytest.mark.parametrize("name", ["garbage.bin", "truncated_report.eml"])
def test_unreadable_bounce_is_kept_and_forwarded_to_the_owners(world: World, name: str) -> None:
    row = world.process(sample(name))
    assert row.status == InboundStatus.DONE  # the worker did not fail on it
    assert "kept for the owners: unrecognised bounce" in row.reason
    assert "forwarded to 1 owner(s)" in row.reason
    [event] = world.events()
    assert (event.kind, event.member_id, event.inbound_id) == ("unrecognised", None, row.id)
    [forward] = [job for job, rcpts in world.jobs() if rcpts == [OWNER]]
    assert forward.raw.startswith(b"X-Listserv-Bounce-Forward: sm-cop@lists.example.gov\r\n")
    assert forward.raw.endswith(sample(name))
    # Its own bounce, coming back unreadable, is not forwarded again.
    again = world.process(b"From: MAILER-DAEMON@digital.gov\r\n\r\n" + forward.raw)
    assert "not forwarded" in again.reason


def test_unreadable_bounce_is_only_kept_when_forwarding_is_off(
    make_world: Callable[..., World],
) -> None:
    world = make_world(bounce_forward_unrecognised=False)
    row = world.process(sample("garbage.bin"))
    assert row.status == InboundStatus.DONE
    assert row.reason.endswith(
        f"kept for the owners: unrecognised bounce (listserv inbound, id {row.id})"
    )
    assert world.count(OutboxJob) == 0


def test_bounces_for_non_members_and_unknown_verp_addresses_are_ignored(world: World) -> None:
    world.add(JANE)
    unknown = verp("nobody@agency.gov")
    assert world.receive(make_dsn("nobody@agency.gov", to=unknown), unknown, now=DAY0) == (
        "ignored: VERP address nobody@agency.gov is not a member"
    )
    # A DSN naming Jane at a VERP address for someone else touches neither.
    assert world.receive(make_dsn(JANE, to=unknown), unknown, now=DAY0).startswith("ignored")
    assert world.receive(make_dsn("stranger@agency.gov"), now=DAY0) == (
        "bounce: stranger@agency.gov: not a member, ignored"
    )
    odd = "sm-cop-bounces+not-a-verp-address@lists.example.gov"
    assert "not a member, ignored" in world.receive(make_dsn("x@agency.gov", to=odd), odd, now=DAY0)
    assert world.events() == []
    assert world.score(DAY0) == 0


# --- scoring ------------------------------------------------------------------------------------


def bounce_on(world: World, day: int, address: str = JANE, hour: int = 0, **dsn: Any) -> None:
    world.receive(
        make_dsn(address, to=verp(address), **dsn),
        verp(address),
        now=DAY0 + timedelta(days=day, hours=hour),
    )


def test_score_counts_at_most_one_bounce_a_day(world: World) -> None:
    world.add(JANE)
    bounce_on(world, 0)
    bounce_on(world, 0, hour=5)
    bounce_on(world, 0, hour=9)
    member = world.member(JANE)
    assert member is not None
    assert member.bounce_score == 1.0
    assert member.last_bounce_at == DAY0 + timedelta(hours=9)
    bounce_on(world, 1)
    world.score(DAY0 + timedelta(days=1, hours=1))
    member = world.member(JANE)
    assert member is not None and member.bounce_score == 2.0
    assert all(e.processed for e in world.events())


def test_temporary_bounces_count_half_and_not_at_all_when_configured(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    world.add("tbrown@agency.gov")
    world.receive(sample("mailbox_full_422.eml"), verp("tbrown@agency.gov"), now=DAY0)
    world.score(DAY0)
    member = world.member("tbrown@agency.gov")
    assert member is not None and member.bounce_score == 0.5


def test_temporary_bounces_can_count_for_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(bounce_temporary_score=0)
    world.add("tbrown@agency.gov")
    world.receive(sample("mailbox_full_422.eml"), verp("tbrown@agency.gov"), now=DAY0)
    bounce_on(world, 0, "tbrown@agency.gov", hour=2)  # a permanent one later that day still counts
    world.score(DAY0 + timedelta(hours=3))
    member = world.member("tbrown@agency.gov")
    assert member is not None and member.bounce_score == 1.0


def test_score_goes_stale_after_days_without_bounces(world: World) -> None:
    world.add(JANE)
    bounce_on(world, 0)
    bounce_on(world, 1)
    world.score(DAY0 + timedelta(days=1))
    # Ten days later (stale after 7): the old score is forgotten before the new bounce counts.
    bounce_on(world, 11)
    world.score(DAY0 + timedelta(days=11))
    member = world.member(JANE)
    assert member is not None and member.bounce_score == 1.0
    # With no bounce at all, the periodic run resets it too.
    world.score(DAY0 + timedelta(days=19))
    member = world.member(JANE)
    assert member is not None and member.bounce_score == 0.0
    assert member.last_bounce_at == DAY0 + timedelta(days=11)


def test_policy_bounces_are_recorded_but_never_scored(world: World) -> None:
    world.add("alex.kim@agency.gov")
    world.receive(sample("gmail_dmarc_5726.eml"), verp("alex.kim@agency.gov"), now=DAY0)
    world.add("pat.doe@yahoo.com")
    world.receive(sample("yahoo_dmarc_policy.eml"), now=DAY0)
    assert {(e.address_key, e.kind) for e in world.events()} == {
        ("alex.kim@agency.gov", "policy"),
        ("pat.doe@yahoo.com", "policy"),
    }
    world.score(DAY0)
    for address in ("alex.kim@agency.gov", "pat.doe@yahoo.com"):
        member = world.member(address)
        assert member is not None
        assert (member.bounce_score, member.last_bounce_at) == (0.0, None)
        assert member.delivery_status == DeliveryStatus.ENABLED


def policy_bounce(world: World, address: str, now: datetime) -> None:
    diagnostic = "550 5.7.1 Message rejected due to DMARC policy of the sender's domain"
    world.receive(
        make_dsn(address, status="5.7.1", diagnostic=diagnostic, to=verp(address)),
        verp(address),
        now=now,
    )


def alerts(world: World) -> list[Any]:
    return [m for m in world.mail_to(OWNER) if "policy grounds" in str(m["Subject"])]


def test_many_policy_refusals_alert_the_owners_once_a_day(world: World) -> None:
    members = [f"member{n:02d}@agency.gov" for n in range(60)]
    for address in members:
        world.add(address)
    for address in members[:4]:
        policy_bounce(world, address, DAY0)
    world.score(DAY0)
    assert alerts(world) == []  # four of sixty: below five
    policy_bounce(world, members[4], DAY0 + timedelta(hours=1))
    world.score(DAY0 + timedelta(hours=1))
    [alert] = alerts(world)
    body = alert.get_content()
    assert "5 member(s)" in body and "5.7.1" in body and "member04@agency.gov" in body
    # More the same day: no second alert.
    for address in members[5:9]:
        policy_bounce(world, address, DAY0 + timedelta(hours=3))
    world.score(DAY0 + timedelta(hours=3))
    assert len(alerts(world)) == 1
    # A day later the refusals go on: a second alert.
    for address in members[10:15]:
        policy_bounce(world, address, DAY0 + timedelta(days=1, hours=2))
    world.score(DAY0 + timedelta(days=1, hours=2))
    assert len(alerts(world)) == 2
    assert all(world.member(a).bounce_score == 0 for a in members[:15])  # type: ignore[union-attr]
    with world.factory() as session:
        audited = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "bounce-policy-alert")
        ).all()
        assert [a.actor for a in audited] == ["bounce-processor", "bounce-processor"]


def test_policy_alert_threshold_scales_down_for_small_lists() -> None:
    assert bounces.policy_alert_threshold(1500) == 5
    assert bounces.policy_alert_threshold(30) == 3
    assert bounces.policy_alert_threshold(4) == 2


def reenable_token(message: Any) -> str:
    reply_to = str(message["Reply-To"])
    assert reply_to.startswith("sm-cop-confirm+")
    return reply_to.partition("+")[2].partition("@")[0]


def test_threshold_disables_delivery_and_tells_member_and_owners(world: World) -> None:
    jane = world.add(JANE)
    for day in range(4):
        bounce_on(world, day)
    bounce_on(world, 4, status="4.2.2")  # temporary: half a point
    world.score(DAY0 + timedelta(days=4))
    member = world.member(JANE)
    assert member is not None
    assert (member.bounce_score, member.delivery_status) == (4.5, DeliveryStatus.ENABLED)
    assert world.mail_to(JANE) == []
    bounce_on(world, 5)
    world.score(DAY0 + timedelta(days=5))
    member = world.member(JANE)
    assert member is not None
    assert member.delivery_status == DeliveryStatus.DISABLED_BOUNCING  # disabled, not removed
    assert member.id == jane and member.bounce_score == 5.5
    assert member.last_warning_at == DAY0 + timedelta(days=5)
    [notice] = world.mail_to(JANE)
    assert "stopped" in str(notice["Subject"])
    token = reenable_token(notice)
    assert token in notice.get_content() and "/confirm/" + token in notice.get_content()
    [owner_notice] = world.mail_to(OWNER)
    assert "disabled for bouncing" in str(owner_notice["Subject"])
    assert "listserv bounces enable sm-cop jane@agency.gov" in owner_notice.get_content()
    with world.factory() as session:
        change = session.scalars(
            select(MembershipEvent).where(MembershipEvent.event == "change")
        ).one()
        assert (change.actor, change.channel, change.delivery_status) == (
            "bounce-processor",
            "system",
            "disabled-bouncing",
        )
    # Further bounces while disabled change nothing.
    bounce_on(world, 6)
    world.score(DAY0 + timedelta(days=6))
    member = world.member(JANE)
    assert member is not None and member.bounce_score == 5.5
    assert len(world.mail_to(JANE)) == 1


def disable(world: World, address: str = JANE) -> None:
    for day in range(5):
        bounce_on(world, day, address)
    world.score(DAY0 + timedelta(days=4))
    member = world.member(address)
    assert member is not None and member.delivery_status == DeliveryStatus.DISABLED_BOUNCING


def test_warnings_follow_every_interval_then_removal(world: World) -> None:
    world.add(JANE)
    disable(world)
    disabled_at = DAY0 + timedelta(days=4)
    assert world.warn(disabled_at + timedelta(days=6)) == 0  # not yet a week
    for n in (1, 2, 3):
        assert world.warn(disabled_at + timedelta(days=7 * n)) == 1
        member = world.member(JANE)
        assert member is not None and member.bounce_warnings_sent == n
        assert f"Reminder {n} of 3" in str(world.mail_to(JANE)[-1]["Subject"])
    assert world.warn(disabled_at + timedelta(days=7 * 3 + 1)) == 0
    assert world.warn(disabled_at + timedelta(days=28)) == 1
    assert world.member(JANE) is None
    assert "removed" in str(world.mail_to(JANE)[-1]["Subject"])
    assert "removed for bouncing" in str(world.mail_to(OWNER)[-1]["Subject"])
    with world.factory() as session:
        removal = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "member-remove")
        ).one()
        assert (removal.actor, removal.channel, removal.target) == (
            "bounce-processor",
            "system",
            JANE,
        )
        assert "3 warning(s) unanswered" in removal.detail["reason"]
        pending = session.scalars(
            select(PendingRequest).where(PendingRequest.kind == RequestKind.BOUNCE_REENABLE)
        ).all()
        assert {r.status for r in pending} == {RequestStatus.CANCELLED}


def test_member_turns_delivery_back_on_by_confirming_the_notice(world: World) -> None:
    world.add(JANE)
    disable(world)
    world.warn(DAY0 + timedelta(days=11))
    first, second = world.mail_to(JANE)
    with world.ctx(DAY0 + timedelta(days=12)) as ctx:
        outcome = confirm(ctx, email_actor(JANE), reenable_token(second))
    assert outcome.status == "done", outcome.text
    member = world.member(JANE)
    assert member is not None
    assert (member.delivery_status, member.bounce_score, member.bounce_warnings_sent) == (
        DeliveryStatus.ENABLED,
        0.0,
        0,
    )
    assert member.last_warning_at is None
    with world.ctx(DAY0 + timedelta(days=12)) as ctx:
        assert confirm(ctx, email_actor(JANE), reenable_token(first)).status == "refused"
    assert world.warn(DAY0 + timedelta(days=40)) == 0  # no longer disabled: no warnings


class RefusingRelay:
    """A relay that answers RCPT with the replies given per address (250 for the rest)."""

    def __init__(self, replies: dict[str, tuple[int, str]]) -> None:
        self.replies = replies

    async def send(
        self, sender: str, recipients: Sequence[str], message: bytes, keys: Sequence[str] = ()
    ) -> dict[str, tuple[int, str]]:
        return {r: self.replies.get(r, (250, "2.0.0 Ok")) for r in recipients}

    async def close(self) -> None:
        return None


async def test_relay_refusals_during_delivery_feed_the_same_scoring(world: World) -> None:
    jane = world.add(JANE)
    alex = world.add("alex@agency.gov")
    world.add("bob@agency.gov")
    with world.ctx() as ctx:
        mlist = get_list(ctx.session, "sm-cop")
        assert mlist is not None
        outbox.enqueue(
            ctx.session,
            mail_from=mlist.address("-bounces"),
            recipients=[
                outbox.RecipientSpec(JANE, member_id=jane),
                outbox.RecipientSpec("alex@agency.gov", member_id=alex),
                outbox.RecipientSpec("bob@agency.gov"),
            ],
            raw=b"Subject: [SM-COP] hello\r\n\r\nhello\r\n",
            retry_for=timedelta(hours=1),
            kind="post",
            list_id=mlist.id,
            now=ctx.now,
        )
    relay = RefusingRelay(
        {
            JANE: (550, "5.1.1 <jane@agency.gov>: Recipient address rejected: User unknown"),
            "alex@agency.gov": (554, "5.7.1 Service unavailable; rejected by DMARC policy"),
        }
    )
    worker = DeliveryWorker(world.factory, relay)
    assert await worker.run_once() == 3
    assert {(e.address_key, e.source, e.kind, e.status_code) for e in world.events()} == {
        (JANE, "relay", "permanent", "550"),
        ("alex@agency.gov", "relay", "policy", "554"),
    }
    world.score(utcnow())
    member = world.member(JANE)
    assert member is not None and member.bounce_score == 1.0
    member = world.member("alex@agency.gov")
    assert member is not None and member.bounce_score == 0.0


# --- probes -------------------------------------------------------------------------------------


def probe_job(world: World) -> OutboxJob:
    [job] = [job for job, _ in world.jobs() if job.kind == "probe"]
    return job


def test_probe_is_sent_at_threshold_and_only_its_bounce_disables(
    make_world: Callable[..., World],
) -> None:
    world = make_world(bounce_probe=True)
    world.add(JANE)
    for day in range(5):
        bounce_on(world, day)
    world.score(DAY0 + timedelta(days=4))
    member = world.member(JANE)
    assert member is not None and member.delivery_status == DeliveryStatus.ENABLED
    job = probe_job(world)
    assert job.mail_from.startswith("sm-cop-bounces+probe-")
    assert world.mail_to(OWNER) == []
    bounce_on(world, 5)  # an ordinary bounce while the probe is out: no second probe
    world.score(DAY0 + timedelta(days=5))
    assert probe_job(world).id == job.id
    member = world.member(JANE)
    assert member is not None and member.delivery_status == DeliveryStatus.ENABLED
    note = world.receive(
        make_dsn(JANE, to=job.mail_from), job.mail_from, now=DAY0 + timedelta(days=5, hours=2)
    )
    assert note.startswith("probe bounce recorded")
    world.score(DAY0 + timedelta(days=5, hours=3))
    member = world.member(JANE)
    assert member is not None and member.delivery_status == DeliveryStatus.DISABLED_BOUNCING
    assert len(world.mail_to(JANE)) == 2  # the probe, then the disabled notice
    assert len(world.mail_to(OWNER)) == 1
    assert [e.source for e in world.events()][-1] == "probe"


def test_probe_that_never_bounces_clears_the_score(make_world: Callable[..., World]) -> None:
    world = make_world(bounce_probe=True, bounce_stale_after_days=30)
    world.add(JANE)
    for day in range(5):
        bounce_on(world, day)
    world.score(DAY0 + timedelta(days=4))
    probe_job(world)
    world.score(DAY0 + timedelta(days=10))  # within the wait: still pending
    member = world.member(JANE)
    assert member is not None and member.bounce_score == 5.0
    world.score(DAY0 + timedelta(days=11, hours=1))
    member = world.member(JANE)
    assert member is not None
    assert (member.delivery_status, member.bounce_score) == (DeliveryStatus.ENABLED, 0.0)
    with world.factory() as session:
        probe = session.scalars(
            select(PendingRequest).where(PendingRequest.kind == RequestKind.BOUNCE_PROBE)
        ).one()
        assert (probe.status, probe.resolved_by) == (RequestStatus.EXPIRED, "bounce-processor")
    # A late bounce at the settled probe's address changes nothing.
    job = probe_job(world)
    assert "already settled" in world.receive(
        make_dsn(JANE), job.mail_from, now=DAY0 + timedelta(days=12)
    )


def test_probe_refused_by_the_relay_counts_as_its_bounce(make_world: Callable[..., World]) -> None:
    world = make_world(bounce_probe=True)
    world.add(JANE)
    for day in range(5):
        bounce_on(world, day)
    world.score(DAY0 + timedelta(days=4))
    job = probe_job(world)
    with world.factory() as session, session.begin():
        row = session.scalars(select(OutboxRecipient).where(OutboxRecipient.job_id == job.id)).one()
        row.state = OutboxState.FAILED
        row.last_code = 550
        row.last_reply = "5.1.1 <jane@agency.gov>: Recipient address rejected: User unknown"
    world.score(DAY0 + timedelta(days=4, hours=1))
    member = world.member(JANE)
    assert member is not None and member.delivery_status == DeliveryStatus.DISABLED_BOUNCING
    assert world.events()[-1].source == "probe"
