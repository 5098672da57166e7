# SPDX-License-Identifier: Apache-2.0
"""Faults as operators meet them: a mixed load (joins, posts to 2,000 members, bounces,
owner commands) while the service is killed with SIGKILL at ten random moments and
restarted, on SQLite (one host) and on PostgreSQL (two hosts). Every message that got
a 250 is processed exactly once, every member has exactly one copy of each post in
the Maildirs, and at the end nothing is left leased or waiting."""

from __future__ import annotations

import asyncio
import email
import email.policy
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from listserv.app import prepare_database
from listserv.models import (
    BounceEvent,
    InboundMessage,
    InboundResult,
    InboundStatus,
    OutboxBatch,
    OutboxRecipient,
    OutboxState,
    PendingRequest,
    Post,
)
from tests.conftest import make_settings, wait_for
from tests.host_helpers import DOMAIN, Host, deliver, dsn, maildir_headers, make_host, message
from tests.relay_helpers import add_members

POSTER = "jane.doe@agency.gov"
OWNER = "owner@digital.gov"  # the shipped configuration's owner
OPEN = (OutboxState.QUEUED, OutboxState.ACTIVE, OutboxState.DEFERRED)


def _load(rng: random.Random) -> list[tuple[str, str, str, str, bytes]]:
    """(kind, key, envelope sender, recipient, bytes): joins, posts, bounces, commands."""
    load: list[tuple[str, str, str, str, bytes]] = []
    for i in range(80):
        joiner = f"joiner{i:02d}@agency{i % 3}.gov"
        _, raw = message(joiner, f"sm-cop-request@{DOMAIN}", "subscribe")
        load.append(("join", joiner, joiner, f"sm-cop-request@{DOMAIN}", raw))
    for i in range(3):
        subject = f"Fault post {i}"
        _, raw = message(POSTER, f"sm-cop@{DOMAIN}", subject)
        load.append(("post", subject, POSTER, f"sm-cop@{DOMAIN}", raw))
    for i in range(20):
        mid, raw = dsn(f"member{1900 + i:04d}@agency{(1900 + i) % 7}.gov")
        load.append(("bounce", mid, "", f"sm-cop-bounces@{DOMAIN}", raw))
    for _ in range(5):
        mid, raw = message(OWNER, f"sm-cop-request@{DOMAIN}", "review")
        load.append(("command", mid, OWNER, f"sm-cop-request@{DOMAIN}", raw))
    rng.shuffle(load)
    return load


async def _kill_and_restart(hosts: list[Host], rng: random.Random, kills: int) -> None:
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.8, 2.5))
        host = rng.choice(hosts)
        host.kill()
        host.start()
        await host.ready()


def _message_id(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return str(msg.get("Message-ID", "")).strip()


@pytest.mark.slow
async def test_sigkill_at_random_moments_under_mixed_load_loses_and_doubles_nothing(
    db_url: str, tmp_path: Path
) -> None:
    seed = int(time.time())
    rng = random.Random(seed)
    print(f"\nfault scenario seed {seed}")
    settings = make_settings(db_url, tmp_path / "setup")
    engine, factory = prepare_database(settings)
    members = [POSTER] + [f"member{i:04d}@agency{i % 7}.gov" for i in range(2000)]
    add_members(factory, members)
    names = ["host-a", "host-b"] if db_url.startswith("postgresql") else ["host-a"]
    hosts = [make_host(tmp_path, name, db_url) for name in names]
    ports = [h.port for h in hosts]
    for host in hosts:
        host.start()
    await asyncio.gather(*(h.ready() for h in hosts))

    load = _load(rng)
    answers: dict[str, bool | None] = {}
    kinds: dict[str, tuple[str, str]] = {}
    loop = asyncio.get_running_loop()
    clients = asyncio.Semaphore(4)

    async def send(kind: str, key: str, sender: str, rcpt: str, raw: bytes) -> None:
        mid = _message_id(raw)
        kinds[mid] = (kind, key)
        async with clients:
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            start = rng.randrange(len(ports))
            order = ports[start:] + ports[:start]
            answers[mid] = await deliver(order, sender, rcpt, raw, loop.time() + 120)

    try:
        await asyncio.gather(
            _kill_and_restart(hosts, rng, 10),
            *(send(*item) for item in load),
        )

        def settled() -> bool:
            with factory() as session:
                waiting = session.scalar(
                    select(func.count()).where(InboundMessage.status == InboundStatus.RECEIVED)
                )
                open_rows = session.scalar(
                    select(func.count()).where(OutboxRecipient.state.in_(OPEN))
                )
                open_batches = session.scalar(
                    select(func.count()).where(OutboxBatch.state.in_(OPEN))
                )
            return waiting == open_rows == open_batches == 0

        await wait_for(settled, timeout=120, interval=0.5)
        await asyncio.sleep(1.0)
        await wait_for(settled, timeout=30, interval=0.5)
        headers = maildir_headers(h.maildir for h in hosts)
        with factory() as session:
            inbound = session.execute(
                select(
                    InboundMessage.id,
                    InboundMessage.raw,
                    InboundMessage.status,
                    InboundMessage.lease_until,
                )
            ).all()
            results = Counter(session.scalars(select(InboundResult.inbound_id)))
            posts = Counter(session.scalars(select(Post.inbound_id)))
            bounces = Counter(session.scalars(select(BounceEvent.inbound_id)))
            requests = Counter(session.scalars(select(PendingRequest.address)))
            leased_rows = session.scalar(
                select(func.count()).where(OutboxRecipient.state == OutboxState.ACTIVE)
            )
    finally:
        for host in hosts:
            host.stop()
        engine.dispose()

    accepted = {mid for mid, answer in answers.items() if answer is True}
    unknown = {mid for mid, answer in answers.items() if answer is None}
    assert len(accepted) + len(unknown) == len(load), "every message was sent in the end"
    stored = Counter(_message_id(raw) for _, raw, _, _ in inbound)
    assert [m for m in accepted if stored[m] != 1] == [], "every 250 stored exactly once"
    assert [m for m in unknown if stored[m] > 1] == []
    assert [(i, s) for i, _, s, u in inbound if s != InboundStatus.DONE or u is not None] == []
    assert all(results[i] == 1 for i, *_ in inbound), "one result per message and recipient"
    assert leased_rows == 0

    by_id = {_message_id(raw): row_id for row_id, raw, _, _ in inbound}
    done = {mid: kinds[mid] for mid in by_id}
    for mid, (kind, key) in done.items():
        if kind == "post":
            assert posts[by_id[mid]] == 1
            copies = Counter(h["to"] for h in headers if key in h["subject"])
            assert set(members) <= set(copies), f"{key}: someone has no copy"
            assert [a for a, n in copies.items() if n != 1] == [], f"{key}: doubled copies"
        elif kind == "join":
            assert requests[key] == 1, key
            assert Counter(h["to"] for h in headers)[key] == 1, f"{key}: confirmations"
        elif kind == "bounce":
            assert bounces[by_id[mid]] == 1, mid
        else:
            replies = [h for h in headers if h["in_reply_to"] == mid]
            assert len(replies) == 1, f"owner command {mid}: {len(replies)} replies"
    print(
        f"{len(accepted)} accepted, {len(unknown)} unanswered at a kill, "
        f"{len(headers)} files written, restarts {[h.starts - 1 for h in hosts]}"
    )
