# SPDX-License-Identifier: Apache-2.0
"""`listserv serve` processes mail in a worker process of its own; a worker killed
mid-burst is started again and every accepted join gets exactly one confirmation."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from listserv.app import prepare_database
from listserv.models import InboundMessage, InboundStatus
from tests.conftest import make_settings, wait_for
from tests.host_helpers import (
    DOMAIN,
    Host,
    copies_per,
    maildir_headers,
    make_host,
    message,
    send_to,
)

STARTED = re.compile(r"processing worker started \(pid (\d+), leases as (\S+)\)")


def worker_pids(host: Host) -> list[int]:
    return [int(pid) for pid, _ in STARTED.findall(host.log_text())]


@pytest.mark.slow
async def test_a_worker_killed_mid_burst_is_restarted_and_every_join_confirmed_once(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(db_url, tmp_path / "setup")
    engine, factory = prepare_database(settings)
    host = make_host(tmp_path, "host-a", db_url)
    joiners = [f"joiner{i:03d}@agency{i % 5}.gov" for i in range(400)]
    accepted: list[str] = []
    host.start()
    try:
        await host.ready()
        [first] = await wait_for(lambda: worker_pids(host), timeout=20)
        assert host.process is not None and first != host.process.pid
        clients = asyncio.Semaphore(20)

        async def join(address: str) -> None:
            _, raw = message(address, f"sm-cop-request@{DOMAIN}", "subscribe")
            async with clients:
                if await send_to(host.port, address, f"sm-cop-request@{DOMAIN}", raw):
                    accepted.append(address)

        async def kill_worker() -> None:
            await wait_for(lambda: len(accepted) >= 120, timeout=60, interval=0.01)
            os.kill(first, signal.SIGKILL)

        await asyncio.gather(kill_worker(), *(join(a) for a in joiners))
        assert len(accepted) == len(joiners), "intake answers while the worker is down"
        await wait_for(lambda: len(worker_pids(host)) >= 2, timeout=20)

        def confirmed() -> bool:
            return len(copies_per(maildir_headers([host.maildir]))) >= len(joiners)

        await wait_for(confirmed, timeout=120, interval=0.5)
        await asyncio.sleep(1.0)
        copies = copies_per(maildir_headers([host.maildir]))
        with factory() as session:
            statuses = dict(
                session.execute(
                    select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
                ).all()
            )
    finally:
        host.stop()
        engine.dispose()
    assert "exited with code -9; starting it again" in host.log_text()
    assert set(copies) == set(joiners)
    assert [a for a, n in copies.items() if n != 1] == []
    assert statuses == {InboundStatus.DONE: len(joiners)}
