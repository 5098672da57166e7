# SPDX-License-Identifier: Apache-2.0
"""Delivery of posts and service mail: personalized copies, VERP, bulk batches,
relay outages, 4xx retries with backoff until the deadline, 5xx failures scored
as bounces, SMTPUTF8, and the Maildir relay. The SMTP relay client itself is
tested in test_relays.py."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from listserv import outbox
from listserv.addresses import verp_encode
from listserv.app import Service, build_service
from listserv.config import Settings
from listserv.delivery import DeliveryWorker, JobInfo, SMTPRelay, make_personalizer
from listserv.models import (
    AuditEvent,
    BounceEvent,
    OutboxBatch,
    OutboxJob,
    OutboxRecipient,
    OutboxState,
    utcnow,
)
from tests.conftest import make_settings, read_maildir, wait_for
from tests.relay_helpers import (
    LIST,
    ScriptedRelay,
    add_members,
    enqueue_post,
    shared_copy,
    smtp_delivery,
)

BASE = "http://127.0.0.1:8080"


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def unfinished(service: Service) -> int:
    with service.factory() as session:
        rows = session.scalar(
            select(func.count()).where(OutboxRecipient.state.in_(("queued", "active", "deferred")))
        )
        batches = session.scalar(
            select(func.count()).where(OutboxBatch.state.in_(("queued", "active", "deferred")))
        )
        return int(rows or 0) + int(batches or 0)


def recipient_rows(service: Service) -> dict[str, OutboxRecipient]:
    with service.factory() as session:
        rows = session.scalars(select(OutboxRecipient)).all()
        for row in rows:
            session.expunge(row)
        return {row.address: row for row in rows}


@pytest.fixture
async def relay() -> AsyncIterator[ScriptedRelay]:
    scripted = ScriptedRelay()
    yield scripted
    await scripted.stop()


async def start_service(settings: Settings) -> Service:
    svc = build_service(settings)
    await svc.start()
    return svc


# ------------------------------------------------------------------ personalizer


def test_personalizer_gives_each_member_their_own_one_click_unsubscribe(
    sqlite_settings: Settings,
) -> None:
    personalize = make_personalizer(sqlite_settings)
    shared = shared_copy()
    job = JobInfo(
        1,
        "post",
        1,
        LIST,
        "lists.example.gov",
        "sm-cop-bounces@lists.example.gov",
        shared,
        True,
        True,
        utcnow(),
    )
    row = outbox.Leased(7, 1, "jane@agency.gov", 3, "3.TOKEN", "agency.gov", 0)
    copy = parse(personalize(job, row))
    base = sqlite_settings.web.base_url
    assert copy["List-Unsubscribe"] == (
        f"<{base}/unsubscribe/sm-cop/3.TOKEN>, <mailto:sm-cop-leave@lists.example.gov>"
    )
    assert copy["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The body and every shared header are the shared copy's.
    assert personalize(job, row).endswith(shared[shared.index(b"\r\n\r\n") :])

    service_job = JobInfo(
        2, "service", None, "", "", "listserv@lists.example.gov", b"raw", False, False, utcnow()
    )
    assert personalize(service_job, row) == b"raw"
    bulk_job = JobInfo(3, "post", 1, LIST, "lists.example.gov", "x", shared, False, False, utcnow())
    assert personalize(bulk_job, row) is shared


# ------------------------------------------------------------------ Maildir relay


async def test_maildir_copies_carry_return_path_and_delivered_to(sqlite_settings: Settings) -> None:
    service = await start_service(sqlite_settings)
    try:
        ids = add_members(service.factory, ["jane@agency.gov", "bob@army.mil"])
        enqueue_post(service.factory, sqlite_settings)
        service.outbox_ready.set()
        maildir = sqlite_settings.delivery.maildir
        found = await wait_for(lambda: len(read_maildir(maildir)) == 2 and read_maildir(maildir))
    finally:
        await service.stop()
    by_rcpt = {str(m["Delivered-To"]): m for _, m in found}
    assert set(by_rcpt) == {"jane@agency.gov", "bob@army.mil"}
    jane = by_rcpt["jane@agency.gov"]
    assert jane["Return-Path"] == "<sm-cop-bounces+jane=agency.gov@lists.example.gov>"
    assert f"/unsubscribe/sm-cop/{ids[0]}." in str(jane["List-Unsubscribe"])
    assert f"/unsubscribe/sm-cop/{ids[1]}." in str(by_rcpt["bob@army.mil"]["List-Unsubscribe"])


# ------------------------------------------------------------------ relay outage


@pytest.mark.slow
async def test_post_to_1000_members_survives_outage_4xx_and_5xx(
    relay: ScriptedRelay, sqlite_url: str, tmp_path: Path
) -> None:
    """Refused connections, then 4xx for some and 5xx for others: every member ends
    with exactly one copy or a recorded failure (and a bounce event)."""
    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    service = await start_service(settings)
    addresses = [f"member{i:04d}@agency{i % 7}.gov" for i in range(1000)]
    refused = {a for i, a in enumerate(addresses) if i % 10 == 7}
    slow = {a for i, a in enumerate(addresses) if i % 10 == 3}
    told_later: set[str] = set()

    def answer(address: str) -> str | None:
        if address in refused:
            return "550 5.1.1 no such mailbox"
        if address in slow and address not in told_later:
            told_later.add(address)
            return "451 4.3.0 try again later"
        return None

    relay.rcpt_answer = answer
    try:
        member_ids = dict(zip(addresses, add_members(service.factory, addresses), strict=True))
        job_id = enqueue_post(service.factory, settings)
        service.outbox_ready.set()

        # The relay is down: every recipient is tried and deferred, none lost.
        def all_deferred() -> bool:
            rows = recipient_rows(service)
            return len(rows) == 1000 and all(
                r.state == "deferred" and r.attempts >= 1 for r in rows.values()
            )

        await wait_for(all_deferred, timeout=30)
        assert relay.transactions == []
        await relay.start()
        await wait_for(lambda: unfinished(service) == 0, timeout=60)
        rows = recipient_rows(service)
        with service.factory() as session:
            bounces = session.execute(select(BounceEvent.address, BounceEvent.source)).all()
            job = session.get(OutboxJob, job_id)
            assert job is not None and job.completed_at is not None
            audits = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "delivery-failed")
            ).all()
    finally:
        await service.stop()

    copies = relay.copies()
    for address in addresses:
        if address in refused:
            assert copies[address] == 0
            assert rows[address].state == "failed" and rows[address].last_code == 550
        else:
            assert copies[address] == 1, address
            assert rows[address].state == "sent"
    assert {a for a, _ in bounces} == refused
    assert {s for _, s in bounces} == {"relay"}
    assert all(rows[a].attempts >= 3 for a in slow)  # refused connection, 451, accepted
    assert len(audits) == 1 and audits[0].detail["failed"] == len(refused)
    # Each copy is the member's own, from their VERP address.
    for transaction in relay.transactions[:50]:
        (rcpt,) = transaction.rcpt_tos
        assert transaction.mail_from == verp_encode(LIST, rcpt, "lists.example.gov")
        copy = parse(transaction.data)
        token_prefix = f"/unsubscribe/sm-cop/{member_ids[rcpt]}."
        assert token_prefix in str(copy["List-Unsubscribe"])
        assert copy["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# ------------------------------------------------------------------ backoff, deadline


def test_backoff_doubles_and_the_deadline_turns_deferral_into_failure(
    sqlite_settings: Settings,
) -> None:
    from listserv.app import prepare_database

    engine, factory = prepare_database(sqlite_settings)
    try:
        add_members(factory, ["jane@agency.gov"])
        job_id = enqueue_post(factory, sqlite_settings, retry_for=timedelta(minutes=10))
        with factory() as session:
            job = session.get(OutboxJob, job_id)
            assert job is not None
            deadline = {job_id: outbox.as_utc(job.expires_at)}
        now = utcnow()
        seen: list[timedelta] = []
        for _ in range(5):
            with factory() as session, session.begin():
                claim = outbox.claim(session, "w", limit=10, lease=timedelta(minutes=1), now=now)
                assert len(claim.recipients) == 1, now
                (row,) = claim.recipients
                settled = outbox.record(
                    session, [outbox.Attempt(row, 451, "4.3.0 later")], [], deadline, now
                )
                state = session.get(OutboxRecipient, row.id)
                assert state is not None
                if settled.failures:
                    assert state.state == "failed" and state.last_code == 451
                    break
                assert state.state == "deferred"
                seen.append(outbox.as_utc(state.next_attempt_at) - now)
                # Not due before its time…
                early = now + seen[-1] - timedelta(seconds=1)
                assert not len(outbox.claim(session, "w", limit=10, lease=timedelta(1), now=early))
                now = now + seen[-1]
        assert seen == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
        assert len(settled.failures) == 1  # the fourth try would be past the deadline
    finally:
        engine.dispose()


async def test_relay_deferring_past_the_deadline_fails_and_reports(
    relay: ScriptedRelay, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    relay.rcpt_answer = lambda address: "452 4.2.2 mailbox full"
    await relay.start()
    service = await start_service(settings)
    try:
        add_members(service.factory, ["jane@agency.gov"])
        job_id = enqueue_post(service.factory, settings, retry_for=timedelta(seconds=3))
        service.outbox_ready.set()
        await wait_for(lambda: unfinished(service) == 0, timeout=20)
        row = recipient_rows(service)["jane@agency.gov"]
        with service.factory() as session:
            bounce = session.scalars(select(BounceEvent)).one()
            job = session.get(OutboxJob, job_id)
            assert job is not None and job.completed_at is not None
    finally:
        await service.stop()
    assert row.state == "failed" and row.last_code == 452 and row.attempts >= 2
    assert bounce.kind == "temporary" and bounce.address == "jane@agency.gov"
    assert relay.transactions == []


# ------------------------------------------------------------------ bulk


async def test_bulk_post_goes_in_batches_sorted_by_domain(
    relay: ScriptedRelay, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay, batch_size=100)
    )
    relay.pipelining = True
    addresses = [f"user{i:03d}@{d}" for i in range(80) for d in ("b.gov", "a.mil", "c.gov")]
    refused = {addresses[5], addresses[100]}
    deferred_once = {addresses[7]}
    told: set[str] = set()

    def answer(address: str) -> str | None:
        if address in refused:
            return "550 5.1.1 unknown user"
        if address in deferred_once and address not in told:
            told.add(address)
            return "450 4.2.0 greylisted"
        return None

    relay.rcpt_answer = answer
    await relay.start()
    service = await start_service(settings)
    try:
        add_members(service.factory, addresses)
        enqueue_post(service.factory, settings, personalized=False, batch_size=100)
        with service.factory() as session:
            assert session.scalar(select(func.count()).select_from(OutboxBatch)) == 3
            assert session.scalar(select(func.count()).select_from(OutboxRecipient)) == 0
        service.outbox_ready.set()
        await wait_for(lambda: unfinished(service) == 0, timeout=20)
        status = _status(service)
    finally:
        await service.stop()
    sender = "sm-cop-bounces@lists.example.gov"
    batches = [t for t in relay.transactions if len(t.rcpt_tos) > 1]
    assert len(batches) == 3
    for transaction in batches:
        assert transaction.mail_from == sender
        domains = [r.rpartition("@")[2] for r in transaction.rcpt_tos]
        assert domains == sorted(domains)
        assert "List-Unsubscribe-Post" not in parse(transaction.data)
    copies = relay.copies()
    assert all(copies[a] == 1 for a in addresses if a not in refused)
    assert all(copies[a] == 0 for a in refused)
    assert status.counts["sent"] == len(addresses) - len(refused)
    assert status.counts["failed"] == len(refused)


def _status(service: Service) -> outbox.Status:
    with service.factory() as session:
        return outbox.status(session)


# ------------------------------------------------------------------ SMTPUTF8


async def test_smtputf8_recipient_goes_through_the_relay(
    relay: ScriptedRelay, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    await relay.start()
    service = await start_service(settings)
    try:
        add_members(service.factory, ["josé@agency.gov", "jane@agency.gov"])
        enqueue_post(service.factory, settings)
        service.outbox_ready.set()
        await wait_for(lambda: unfinished(service) == 0, timeout=20)
    finally:
        await service.stop()
    (utf8,) = relay.messages_to("josé@agency.gov")
    assert utf8.mail_from == "sm-cop-bounces+josé=agency.gov@lists.example.gov"
    assert "SMTPUTF8" in utf8.mail_options
    (plain,) = relay.messages_to("jane@agency.gov")
    assert "SMTPUTF8" not in plain.mail_options


async def test_relay_without_smtputf8_fails_only_the_utf8_recipient(
    relay: ScriptedRelay, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    relay.smtputf8 = False
    await relay.start()
    service = await start_service(settings)
    try:
        add_members(service.factory, ["josé@agency.gov", "jane@agency.gov"])
        enqueue_post(service.factory, settings)
        service.outbox_ready.set()
        await wait_for(lambda: unfinished(service) == 0, timeout=20)
        rows = recipient_rows(service)
    finally:
        await service.stop()
    assert rows["josé@agency.gov"].state == "failed"
    assert rows["josé@agency.gov"].last_code == 553
    assert relay.copies() == {"jane@agency.gov": 1}


# ------------------------------------------------------------------ leases


def test_a_restarted_worker_takes_its_own_leases_back_and_others_stay(
    sqlite_settings: Settings,
) -> None:
    from listserv.app import prepare_database

    engine, factory = prepare_database(sqlite_settings)
    try:
        add_members(factory, [f"m{i}@agency.gov" for i in range(4)])
        enqueue_post(factory, sqlite_settings)
        now = utcnow()
        with factory() as session, session.begin():
            ours = outbox.claim(session, "host-a:var1", limit=2, lease=timedelta(hours=1), now=now)
            theirs = outbox.claim(
                session, "host-b:var2", limit=2, lease=timedelta(hours=1), now=now
            )
        assert len(ours) == len(theirs) == 2
        with factory() as session, session.begin():
            # Nothing is due: both leases run for an hour.
            assert not len(outbox.claim(session, "w", limit=10, lease=timedelta(1), now=now))
            held = outbox.held_by_others(session, "host-a:var1", now)
            assert [(h.owner, h.count) for h in held] == [("host-b:var2", 2)]
            assert outbox.take_back(session, "host-a:var1", now, timedelta(seconds=15)) == 2
            # Taken back, the rows are still leased: another host cannot send them into
            # its own Maildir while the copies a crash left sit in ours.
            later = now + timedelta(seconds=5)
            assert not len(
                outbox.claim(
                    session, "host-c:var3", limit=10, lease=timedelta(seconds=15), now=later
                )
            )
            held = outbox.held_by_others(session, "host-a:var1", now)
            assert sorted((h.owner, h.count) for h in held) == [("host-b:var2", 2)]
            assert outbox.renew(session, "host-a:var1", now + timedelta(seconds=15)) == 2
            again = outbox.claim(
                session, "host-a:var1", limit=10, lease=timedelta(1), now=now, returned=True
            )
            assert again.returned == 2
            assert not len(
                outbox.claim(session, "host-a:var1", limit=10, lease=timedelta(seconds=15), now=now)
            )
        assert sorted(r.id for r in again.recipients) == sorted(r.id for r in ours.recipients)
    finally:
        engine.dispose()


async def test_worker_stop_settles_answers_and_hands_back_its_leases(
    relay: ScriptedRelay, sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    relay.data_delay = 0.02
    await relay.start()
    from listserv.app import prepare_database

    engine, factory = prepare_database(settings)
    add_members(factory, [f"m{i}@agency.gov" for i in range(300)])
    enqueue_post(factory, settings)
    client = SMTPRelay("127.0.0.1", relay.port, connections=2)
    worker = DeliveryWorker(
        factory,
        client,
        personalize=make_personalizer(settings),
        concurrency=2,
        depth=2,
        claim_size=100,
    )
    stopping, wakeup = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(worker.run(stopping, wakeup))
    try:
        await wait_for(lambda: len(relay.transactions) >= 20, timeout=20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        delivered = set(relay.copies())
        with factory() as session:
            rows = session.execute(
                select(OutboxRecipient.address, OutboxRecipient.state, OutboxRecipient.lease_until)
            ).all()
    finally:
        await client.close()
        engine.dispose()
    sent = {a for a, state, _ in rows if state == OutboxState.SENT}
    assert sent and sent <= delivered
    # Whatever is still active was handed back: its lease has already run out.
    now = utcnow()
    assert all(
        outbox.as_utc(until) < now for _, state, until in rows if state == OutboxState.ACTIVE
    )


# ------------------------------------------------------------------ end to end


async def test_post_through_the_posting_address_reaches_each_member_by_smtp(
    relay: ScriptedRelay, sqlite_url: str, tmp_path: Path
) -> None:
    from tests.conftest import make_message, send

    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    relay.pipelining = True
    await relay.start()
    service = await start_service(settings)
    try:
        ids = dict(
            zip(
                ["jane.doe@agency.gov", "bob@army.mil"],
                add_members(service.factory, ["jane.doe@agency.gov", "bob@army.mil"]),
                strict=True,
            )
        )
        await send(service, make_message(subject="Hello, list"))
        await wait_for(lambda: len(relay.transactions) == 2, timeout=20)
    finally:
        await service.stop()
    for transaction in relay.transactions:
        (rcpt,) = transaction.rcpt_tos
        assert transaction.mail_from == verp_encode(LIST, rcpt, "lists.example.gov")
        copy = parse(transaction.data)
        assert copy["Subject"] == "[SM-COP] Hello, list"
        assert f"/unsubscribe/sm-cop/{ids[rcpt]}." in str(copy["List-Unsubscribe"])
        assert copy["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert copy["List-Id"] == "SM-COP <sm-cop.lists.example.gov>"
