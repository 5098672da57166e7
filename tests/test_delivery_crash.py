# SPDX-License-Identifier: Apache-2.0
"""Crash safety and shared work: a delivery process killed with SIGKILL halfway
through a 5,000-member post resumes at once (on SQLite and PostgreSQL alike: it
takes back its own leases) without re-sending what the relay accepted (except what
was in flight), and two workers on PostgreSQL share one job."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from listserv.app import prepare_database
from listserv.config import PROJECT_ROOT, Settings
from listserv.delivery import DeliveryWorker, SendResult, SMTPRelay, make_personalizer
from listserv.models import OutboxJob, OutboxRecipient
from tests.conftest import make_settings, wait_for
from tests.relay_helpers import (
    ScriptedRelay,
    add_members,
    enqueue_post,
    smtp_delivery,
    write_config,
)


def start_server(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, LISTSERV_CONFIG=str(config))
    env.pop("LISTSERV_DATABASE_URL", None)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "listserv", "serve", "--no-web"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
async def test_sigkill_mid_job_resends_only_what_was_in_flight(db_url: str, tmp_path: Path) -> None:
    relay = ScriptedRelay(pipelining=True, data_delay=0.002)
    await relay.start()
    # A lease of 10 minutes: the restart must take the dead process's rows back at once.
    delivery = smtp_delivery(relay, lease_seconds=600, connections=4)
    settings = make_settings(db_url, tmp_path / "var", delivery=delivery)
    engine, factory = prepare_database(settings)
    addresses = [f"member{i:05d}@agency{i % 13}.gov" for i in range(5000)]
    add_members(factory, addresses)
    job_id = enqueue_post(factory, settings)
    config = write_config(tmp_path, db_url, delivery)
    log = tmp_path / "serve.log"
    server = start_server(config, log)
    try:
        await wait_for(lambda: len(relay.transactions) >= 1500, timeout=60)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        await asyncio.sleep(0.2)  # let the relay finish whatever arrived before the kill
        accepted_before = set(relay.copies())
        with factory() as session:
            recorded = set(
                session.scalars(
                    select(OutboxRecipient.address).where(OutboxRecipient.state == "sent")
                )
            )
        assert 0 < len(recorded) < 5000, "the kill must land in the middle of the job"
        in_flight = accepted_before - recorded
        assert recorded <= accepted_before

        started = time.monotonic()
        server = start_server(config, log)

        def finished() -> bool:
            with factory() as session:
                job = session.get(OutboxJob, job_id)
                return job is not None and job.completed_at is not None

        await wait_for(finished, timeout=90)
        resumed_in = time.monotonic() - started
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        await relay.stop()
        engine.dispose()

    copies = relay.copies()
    assert set(copies) == set(addresses), "nobody gets none"
    twice = {a for a, n in copies.items() if n > 1}
    assert all(n <= 2 for n in copies.values())
    assert twice <= in_flight, "only what was in flight at the kill may arrive twice"
    # Results are committed within milliseconds of the relay's 250: what is in flight
    # is at most the open transactions plus one commit's worth.
    assert len(in_flight) <= 200, len(in_flight)
    assert resumed_in < 60
    print(
        f"\nkilled after {len(accepted_before)} accepted, {len(recorded)} recorded; "
        f"{len(in_flight)} in flight, {len(twice)} sent twice"
    )


@pytest.mark.slow
async def test_sigkill_in_maildir_mode_leaves_no_duplicate_copy(
    db_url: str, tmp_path: Path
) -> None:
    """Copies written to the Maildir but not yet recorded as sent are written again
    after the restart under the same names, so each member still has one file."""
    delivery = {"transport": "maildir", "lease_seconds": 600}
    settings = make_settings(db_url, tmp_path / "var", delivery=delivery)
    engine, factory = prepare_database(settings)
    addresses = [f"member{i:05d}@agency{i % 13}.gov" for i in range(5000)]
    add_members(factory, addresses)
    job_id = enqueue_post(factory, settings)
    config = write_config(tmp_path, db_url, delivery)
    new = tmp_path / "var" / "mail" / "new"
    log = tmp_path / "serve.log"

    def written() -> int:
        return sum(1 for _ in os.scandir(new)) if new.exists() else 0

    server = start_server(config, log)
    try:
        await wait_for(lambda: written() >= 1500, timeout=60, interval=0.01)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        with factory() as session:
            recorded = session.scalar(select(func.count()).where(OutboxRecipient.state == "sent"))
        files_at_kill = written()
        assert recorded is not None and 0 < recorded < 5000, "the kill lands mid-job"
        server = start_server(config, log)

        def finished() -> bool:
            with factory() as session:
                job = session.get(OutboxJob, job_id)
                return job is not None and job.completed_at is not None

        await wait_for(finished, timeout=90)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
        engine.dispose()
    copies = Counter(
        line.split(b":", 1)[1].strip().decode()
        for path in new.iterdir()
        for line in path.read_bytes().split(b"\n", 2)[:2]
        if line.startswith(b"Delivered-To:")
    )
    assert set(copies) == set(addresses)
    assert [a for a, n in copies.items() if n != 1] == []
    print(f"\nkilled with {files_at_kill} copies written, {recorded} recorded as sent")


@pytest.mark.postgres
async def test_two_workers_on_postgresql_share_one_job_without_duplicates(
    db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED sharing is a PostgreSQL feature")
    relay = ScriptedRelay(pipelining=True)
    await relay.start()
    settings: Settings = make_settings(db_url, tmp_path / "var", delivery=smtp_delivery(relay))
    engine, factory = prepare_database(settings)
    addresses = [f"m{i:04d}@agency{i % 5}.gov" for i in range(3000)]
    add_members(factory, addresses)
    job_id = enqueue_post(factory, settings)

    sent_by: Counter[str] = Counter()

    class Counting:
        def __init__(self, name: str, inner: SMTPRelay) -> None:
            self.name, self.inner = name, inner

        async def send(
            self, sender: str, recipients: Any, message: bytes, keys: Any = ()
        ) -> SendResult:
            sent_by[self.name] += len(recipients)
            return await self.inner.send(sender, recipients, message, keys)

        async def close(self) -> None:
            await self.inner.close()

    engines = []
    workers = []
    for name in ("host-a", "host-b"):
        # Each worker has its own engine, as on two hosts.
        other_engine, other_factory = prepare_database(settings)
        engines.append(other_engine)
        workers.append(
            DeliveryWorker(
                other_factory,
                Counting(name, SMTPRelay("127.0.0.1", relay.port, connections=2)),
                personalize=make_personalizer(settings),
                claim_size=100,
                concurrency=2,
                depth=4,
                worker_id=f"{name}:1:test",
            )
        )
    stopping, wakeup = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(w.run(stopping, wakeup)) for w in workers]
    try:

        def finished() -> bool:
            with factory() as session:
                job = session.get(OutboxJob, job_id)
                return job is not None and job.completed_at is not None

        await wait_for(finished, timeout=60)
        with factory() as session:
            owners = dict(
                session.execute(
                    select(OutboxRecipient.lease_owner, func.count()).group_by(
                        OutboxRecipient.lease_owner
                    )
                ).all()
            )
    finally:
        stopping.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            await worker.relay.close()
        for other in engines:
            other.dispose()
        engine.dispose()
        await relay.stop()
    copies = relay.copies()
    assert set(copies) == set(addresses)
    assert all(n == 1 for n in copies.values())
    assert sent_by["host-a"] > 0 and sent_by["host-b"] > 0
    assert sent_by["host-a"] + sent_by["host-b"] == len(addresses)
    assert set(owners) == {"host-a:1:test", "host-b:1:test"}
