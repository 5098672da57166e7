# SPDX-License-Identifier: Apache-2.0
"""Claiming inbound messages: workers take disjoint leases, a worker that lost its
lease does nothing, a message processed once finds its work done if anyone tries
again, and a stalled lease is reported once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from listserv import periodic
from listserv.app import prepare_database
from listserv.config import Settings
from listserv.db import reader_of
from listserv.intake.inbound import Arrival, write_arrivals
from listserv.leasing import HeldLease, LeaseLog, acquire_identity, hold_round, worker_name
from listserv.lists import get_list
from listserv.models import (
    InboundMessage,
    InboundResult,
    InboundStatus,
    OutboxJob,
    PendingRequest,
    Post,
    utcnow,
)
from listserv.routing.claiming import (
    claim_inbound,
    inbound_held_by_others,
    renew_inbound,
    take_back_inbound,
)
from listserv.routing.processing import process_batch
from listserv.templates import Templates
from tests.host_helpers import DOMAIN, message
from tests.relay_helpers import add_members

LEASE = timedelta(seconds=15)


@pytest.fixture
def db(settings: Settings) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    engine, factory = prepare_database(settings)
    yield engine, factory
    engine.dispose()


def store(factory: sessionmaker[Session], count: int, to: str = "sm-cop-request") -> list[int]:
    arrivals = []
    for i in range(count):
        sender = f"joiner{i}@agency.gov"
        _, raw = message(sender, f"{to}@{DOMAIN}", "subscribe")
        arrivals.append(Arrival(sender, (f"{to}@{DOMAIN}",), raw, "test"))
    return write_arrivals(factory, arrivals)


def claim(
    factory: sessionmaker[Session], worker: str, limit: int = 10, now: datetime | None = None
) -> list[int]:
    with factory() as session, session.begin():
        return claim_inbound(session, worker, limit=limit, lease=LEASE, now=now or utcnow())


def test_two_workers_claim_disjoint_messages_oldest_first(
    db: tuple[Engine, sessionmaker[Session]],
) -> None:
    _, factory = db
    ids = store(factory, 6)
    first = claim(factory, "host-a:1", limit=4)
    second = claim(factory, "host-b:2", limit=4)
    assert first == ids[:4]
    assert second == ids[4:]
    assert claim(factory, "host-c:3") == [], "a live lease is nobody else's"


def test_a_worker_that_lost_its_lease_does_nothing_with_the_message(
    db: tuple[Engine, sessionmaker[Session]], settings: Settings
) -> None:
    _, factory = db
    [inbound_id] = store(factory, 1)
    assert claim(factory, "host-a:1") == [inbound_id]
    # host-a stalls past its lease; host-b takes the message over.
    later = utcnow() + LEASE + timedelta(seconds=1)
    assert claim(factory, "host-b:2", now=later) == [inbound_id]
    templates = Templates()
    assert process_batch(factory, settings, templates, [inbound_id], "host-a:1") == {}
    assert process_batch(factory, settings, templates, [inbound_id], "host-b:2") == {
        inbound_id: InboundStatus.DONE
    }
    with factory() as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None and row.lease_owner == "host-b:2" and row.lease_until is None
        assert session.scalar(select(func.count()).select_from(PendingRequest)) == 1


def test_a_second_processing_of_one_message_finds_the_work_done(
    db: tuple[Engine, sessionmaker[Session]], settings: Settings
) -> None:
    """The result row is unique per message and recipient: whoever processes the
    message again (the row set back to `received`) writes no second post or job."""
    _, factory = db
    add_members(factory, ["jane.doe@agency.gov", "m1@agency.gov"])
    _, raw = message("jane.doe@agency.gov", f"sm-cop@{DOMAIN}", "Notes")
    [inbound_id] = write_arrivals(
        factory, [Arrival("jane.doe@agency.gov", (f"sm-cop@{DOMAIN}",), raw, "test")]
    )
    templates = Templates()
    assert claim(factory, "host-a:1") == [inbound_id]
    process_batch(factory, settings, templates, [inbound_id], "host-a:1")
    with factory() as session, session.begin():
        session.execute(
            update(InboundMessage).values(
                status=InboundStatus.RECEIVED, lease_owner="", lease_until=None
            )
        )
    assert claim(factory, "host-b:2") == [inbound_id]
    assert process_batch(factory, settings, templates, [inbound_id], "host-b:2") == {
        inbound_id: InboundStatus.DONE
    }
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Post)) == 1
        assert session.scalar(select(func.count()).select_from(OutboxJob)) == 1
        results = session.execute(select(InboundResult.recipient, InboundResult.worker)).all()
        row = session.get(InboundMessage, inbound_id)
    assert results == [("sm-cop:post:", "host-a:1")]
    assert row is not None and "already processed" in row.reason


def test_messages_a_batch_did_not_reach_are_free_at_once(
    db: tuple[Engine, sessionmaker[Session]], settings: Settings
) -> None:
    _, factory = db
    ids = store(factory, 3)
    assert claim(factory, "host-a:1") == ids
    statuses = process_batch(factory, settings, Templates(), ids, "host-a:1", budget=0.0)
    assert list(statuses) == ids[:1]
    assert claim(factory, "host-b:2") == ids[1:], "no wait for host-a's lease"


def test_heartbeat_renews_and_a_restart_takes_its_own_leases_back(
    db: tuple[Engine, sessionmaker[Session]],
) -> None:
    _, factory = db
    ids = store(factory, 2)
    now = utcnow()
    claim(factory, "host-a:1", now=now)
    with factory() as session, session.begin():
        assert renew_inbound(session, "host-a:1", now + timedelta(hours=1)) == 2
        assert [h.count for h in inbound_held_by_others(session, "host-b:2", now)] == [2]
    assert claim(factory, "host-b:2", now=now + LEASE * 2) == [], "renewed"
    with factory() as session, session.begin():
        assert take_back_inbound(session, "host-a:1", now) == 2
    assert claim(factory, "host-a:1", now=now) == ids


def test_identity_is_host_and_var_dir_and_a_second_process_gets_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = acquire_identity(tmp_path / "var")
    try:
        assert first.durable and first.name == worker_name(tmp_path / "var")
        assert worker_name(tmp_path / "var") != worker_name(tmp_path / "other")
        with caplog.at_level(logging.WARNING, logger="listserv"):
            second = acquire_identity(tmp_path / "var")
        assert not second.durable and second.name != first.name
        assert "another listserv process works from" in caplog.text
    finally:
        first.close()
    again = acquire_identity(tmp_path / "var")
    assert again.durable and again.name == first.name
    again.close()


def test_a_stalled_lease_is_reported_once_and_a_live_one_never(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = utcnow()
    watch = LeaseLog(LEASE)
    live = HeldLease("inbound messages", "host-a:1", 3, now + timedelta(seconds=14))
    stalled = HeldLease("inbound messages", "host-b:2", 5, now + timedelta(seconds=4))
    with caplog.at_level(logging.INFO, logger="listserv"):
        assert watch.report([live, stalled], now) == 1
        assert watch.report([live, stalled], now + timedelta(seconds=1)) == 0
    assert "5 inbound messages leased by host-b:2 wait until" in caplog.text
    assert "host-a:1" not in caplog.text


def test_one_round_of_a_periodic_job_runs_at_a_time_across_hosts(
    db: tuple[Engine, sessionmaker[Session]], settings: Settings
) -> None:
    """While another host runs a job's round (it holds the round's lock), this host's
    round of the same job does nothing; the next round runs as usual."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite runs every round under its one writer lock")
    _, factory = db
    keeper = periodic.Housekeeper(factory, settings, Templates())
    job = periodic.Job("digests", lambda ctx: 1, timedelta(minutes=10))
    with factory() as other, other.begin():
        assert hold_round(other, "digests")
        assert keeper.once(job) == 0
        assert keeper.once(periodic.Job("bounces", lambda ctx: 1, timedelta(1))) == 1
    assert keeper.once(job) == 1


def test_a_reader_neither_waits_for_a_writer_nor_holds_one_up(
    db: tuple[Engine, sessionmaker[Session]],
) -> None:
    """While a write transaction is open, a reader session reads the last committed
    state at once (on SQLite: a deferred BEGIN, no writer lock)."""
    _, factory = db
    store(factory, 2)
    reader = reader_of(factory)
    with factory() as writer, writer.begin():
        writer.execute(update(InboundMessage).values(reason="being processed"))
        started = time.monotonic()
        with reader() as session:
            reasons = list(session.scalars(select(InboundMessage.reason)))
        assert time.monotonic() - started < 1.0
    assert reasons == ["", ""]


def test_a_message_that_fails_is_kept_failed_alone_and_the_batch_goes_on(
    db: tuple[Engine, sessionmaker[Session]], settings: Settings
) -> None:
    """The middle message of a batch breaks a constraint (its post exists already):
    it is rolled back alone and kept as failed, the others are done in the same
    commit, and no lease is left behind."""
    _, factory = db
    add_members(factory, ["jane.doe@agency.gov"])
    arrivals = []
    for subject in ("First", "Second", "Third"):
        _, raw = message("jane.doe@agency.gov", f"sm-cop@{DOMAIN}", subject)
        arrivals.append(Arrival("jane.doe@agency.gov", (f"sm-cop@{DOMAIN}",), raw, "test"))
    ids = write_arrivals(factory, arrivals)
    with factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        session.add(Post(list_id=mlist.id, inbound_id=ids[1], status="accepted", raw=b""))
    assert claim(factory, "host-a:1") == ids
    statuses = process_batch(factory, settings, Templates(), ids, "host-a:1", budget=10)
    assert statuses == {
        ids[0]: InboundStatus.DONE,
        ids[1]: InboundStatus.FAILED,
        ids[2]: InboundStatus.DONE,
    }
    with factory() as session:
        rows = {r.id: r for r in session.scalars(select(InboundMessage))}
        results = set(session.scalars(select(InboundResult.inbound_id)))
    assert "processing failed" in rows[ids[1]].reason
    assert all(r.lease_until is None for r in rows.values())
    assert results == {ids[0], ids[2]}, "the failed message's result row is rolled back too"
