# SPDX-License-Identifier: Apache-2.0
"""Several hosts on one database, and restarts: every inbound message is processed
once, every member gets one copy, and a restarted service takes back its own leases
at once while another's are waited for (and the wait is logged)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from listserv.app import build_service, prepare_database
from listserv.config import Settings
from listserv.intake.inbound import Arrival, write_arrivals
from listserv.leasing import worker_name
from listserv.models import (
    InboundMessage,
    InboundResult,
    InboundStatus,
    OutboxJob,
    OutboxRecipient,
    OutboxState,
    PendingRequest,
    Post,
    utcnow,
)
from tests.conftest import make_settings, wait_for
from tests.host_helpers import (
    DOMAIN,
    Host,
    copies_per,
    deliver,
    maildir_headers,
    make_host,
    message,
)
from tests.relay_helpers import add_members, enqueue_post

POSTER = "jane.doe@agency.gov"


def postgresql_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several hosts share one PostgreSQL database")


def outbox_open(settings: Settings) -> int:
    engine, factory = prepare_database(settings)
    try:
        with factory() as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        OutboxRecipient.state.in_(
                            (OutboxState.QUEUED, OutboxState.ACTIVE, OutboxState.DEFERRED)
                        )
                    )
                )
                or 0
            )
    finally:
        engine.dispose()


async def start_hosts(hosts: list[Host]) -> None:
    for host in hosts:
        host.start()
    await asyncio.gather(*(host.ready() for host in hosts))


@pytest.mark.slow
@pytest.mark.postgres
async def test_two_hosts_give_each_member_of_a_4000_member_list_one_copy(
    db_url: str, tmp_path: Path
) -> None:
    postgresql_only(db_url)
    settings = make_settings(db_url, tmp_path / "setup")
    engine, factory = prepare_database(settings)
    members = [POSTER] + [f"member{i:04d}@agency{i % 7}.gov" for i in range(4000)]
    add_members(factory, members)
    hosts = [make_host(tmp_path, name, db_url) for name in ("host-a", "host-b")]
    try:
        await start_hosts(hosts)
        _, raw = message(POSTER, f"sm-cop@{DOMAIN}", "Quarterly meeting notes")
        loop = asyncio.get_running_loop()
        # Both hosts are busy as the post arrives (a few requests reach each), so both
        # are looking for work when it is stored.
        noise = [message(POSTER, f"sm-cop-request@{DOMAIN}", "help")[1] for _ in range(6)]
        sends = [deliver([hosts[0].port], POSTER, f"sm-cop@{DOMAIN}", raw, loop.time() + 30)]
        sends += [
            deliver([hosts[i % 2].port], POSTER, f"sm-cop-request@{DOMAIN}", n, loop.time() + 30)
            for i, n in enumerate(noise)
        ]
        assert all(await asyncio.gather(*sends))

        def delivered() -> bool:
            headers = maildir_headers(h.maildir for h in hosts)
            return len(copies_per(headers, subject="Quarterly meeting notes")) >= len(members)

        await wait_for(delivered, timeout=180, interval=0.5)
        await wait_for(lambda: outbox_open(settings) == 0, timeout=60, interval=0.5)
        await asyncio.sleep(1.0)  # anything a second host would do twice, it does by now
        copies = copies_per(maildir_headers(h.maildir for h in hosts), subject="Quarterly")
        with factory() as session:
            posts = session.scalar(select(func.count()).select_from(Post))
            inbound = session.scalars(select(InboundMessage)).all()
    finally:
        for host in hosts:
            host.stop()
        engine.dispose()
    assert set(copies) == set(members)
    assert [a for a, n in copies.items() if n != 1] == []
    assert posts == 1
    assert [(m.status, m.lease_until) for m in inbound] == [(InboundStatus.DONE, None)] * 7


@pytest.mark.slow
@pytest.mark.postgres
async def test_400_joins_split_between_two_hosts_give_400_confirmations(
    db_url: str, tmp_path: Path
) -> None:
    postgresql_only(db_url)
    settings = make_settings(db_url, tmp_path / "setup")
    engine, factory = prepare_database(settings)
    hosts = [make_host(tmp_path, name, db_url) for name in ("host-a", "host-b")]
    joiners = [f"joiner{i:03d}@agency{i % 5}.gov" for i in range(400)]
    try:
        await start_hosts(hosts)
        loop = asyncio.get_running_loop()
        clients = asyncio.Semaphore(20)

        async def join(i: int, address: str) -> bool | None:
            _, raw = message(address, f"sm-cop-request@{DOMAIN}", "subscribe")
            async with clients:
                port = hosts[i % 2].port
                return await deliver(
                    [port], address, f"sm-cop-request@{DOMAIN}", raw, loop.time() + 60
                )

        answers = await asyncio.gather(*(join(i, a) for i, a in enumerate(joiners)))
        assert all(a is True for a in answers)

        def confirmed() -> bool:
            return len(copies_per(maildir_headers(h.maildir for h in hosts))) >= len(joiners)

        await wait_for(confirmed, timeout=120, interval=0.5)
        await wait_for(lambda: outbox_open(settings) == 0, timeout=60, interval=0.5)
        await asyncio.sleep(1.0)
        copies = copies_per(maildir_headers(h.maildir for h in hosts))
        with factory() as session:
            requests = session.scalar(select(func.count()).select_from(PendingRequest))
            results = session.scalar(select(func.count()).select_from(InboundResult))
            by_worker = dict(
                session.execute(
                    select(InboundMessage.lease_owner, func.count()).group_by(
                        InboundMessage.lease_owner
                    )
                ).all()
            )
    finally:
        for host in hosts:
            host.stop()
        engine.dispose()
    assert set(copies) == set(joiners)
    assert [a for a, n in copies.items() if n != 1] == []
    assert requests == results == 400
    assert sum(by_worker.values()) == 400
    print(f"\nprocessed per host: {sorted(by_worker.values())}")


async def test_a_restarted_service_takes_its_own_leases_back_at_once(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows leased for an hour by this host and var dir (as a kill -9 leaves them) are
    processed and delivered as soon as the service starts again."""
    settings = make_settings(db_url, tmp_path / "var", delivery={"lease_seconds": 600})
    engine, factory = prepare_database(settings)
    add_members(factory, [f"m{i}@agency.gov" for i in range(30)])
    job_id = enqueue_post(factory, settings)
    _, raw = message("joiner@agency.gov", f"sm-cop-request@{DOMAIN}", "subscribe")
    write_arrivals(
        factory, [Arrival("joiner@agency.gov", (f"sm-cop-request@{DOMAIN}",), raw, "test")]
    )
    me = worker_name(settings.site.var_dir)
    leased_until = utcnow() + timedelta(hours=1)
    with factory() as session, session.begin():
        session.execute(update(InboundMessage).values(lease_owner=me, lease_until=leased_until))
        session.execute(
            update(OutboxRecipient).values(
                state=OutboxState.ACTIVE, lease_owner=me, lease_until=leased_until
            )
        )
    caplog.set_level(logging.INFO, logger="listserv")
    service = build_service(settings)
    await service.start()
    try:
        assert service.worker_id == me

        def finished() -> bool:
            with factory() as session:
                job = session.get(OutboxJob, job_id)
                waiting = session.scalar(
                    select(func.count()).where(InboundMessage.status == InboundStatus.RECEIVED)
                )
                return job is not None and job.completed_at is not None and waiting == 0

        await wait_for(finished, timeout=30)  # the leases would hold for an hour
        confirmations = copies_per(maildir_headers([settings.delivery.maildir]))
    finally:
        await service.stop()
        engine.dispose()
    assert confirmations["joiner@agency.gov"] == 1
    assert all(confirmations[f"m{i}@agency.gov"] == 1 for i in range(30))
    said = caplog.text
    assert "took back 1 inbound leases" in said
    assert "took back 30 outbox leases" in said


async def test_another_hosts_stalled_leases_are_waited_for_and_the_wait_is_logged(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(db_url, tmp_path / "var")
    engine, factory = prepare_database(settings)
    add_members(factory, [f"m{i}@agency.gov" for i in range(3)])
    job_id = enqueue_post(factory, settings)
    _, raw = message("joiner@agency.gov", f"sm-cop-request@{DOMAIN}", "subscribe")
    write_arrivals(
        factory, [Arrival("joiner@agency.gov", (f"sm-cop-request@{DOMAIN}",), raw, "test")]
    )
    until = utcnow() + timedelta(seconds=3)
    with factory() as session, session.begin():
        session.execute(
            update(InboundMessage).values(lease_owner="host-b:0123456789ab", lease_until=until)
        )
        session.execute(
            update(OutboxRecipient).values(
                state=OutboxState.ACTIVE, lease_owner="host-b:0123456789ab", lease_until=until
            )
        )
    caplog.set_level(logging.INFO, logger="listserv")
    service = build_service(settings)
    await service.start()
    try:
        await asyncio.sleep(1.0)
        with factory() as session:
            assert session.scalar(
                select(func.count()).where(InboundMessage.status == InboundStatus.RECEIVED)
            ), "another host's live lease is not taken"

        def finished() -> bool:
            with factory() as session:
                job = session.get(OutboxJob, job_id)
                return job is not None and job.completed_at is not None

        await wait_for(finished, timeout=30)
        await wait_for(
            lambda: "joiner@agency.gov" in copies_per(maildir_headers([settings.delivery.maildir])),
            timeout=30,
        )
    finally:
        await service.stop()
        engine.dispose()
    stamp = until.isoformat(timespec="seconds")
    assert f"1 inbound messages leased by host-b:0123456789ab wait until {stamp}" in caplog.text
    assert f"3 outbox recipients leased by host-b:0123456789ab wait until {stamp}" in caplog.text
