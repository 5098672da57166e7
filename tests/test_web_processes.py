# SPDX-License-Identifier: Apache-2.0
"""`[web] processes = 2`: `listserv serve` starts a second web process on the same port.

A real `listserv serve` in a subprocess: both processes listen (SO_REUSEPORT),
the pages and the API answer on the one port, a token's rate limit holds for
the two together (each meters its share), and the extra process stops with
the service. Also the share itself (`limits.per_process`) and the setting's
validation.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from listserv import db
from listserv.actors import host_actor
from listserv.acts import tokens
from listserv.config import ConfigError
from listserv.config.paths import PROJECT_ROOT
from listserv.context import Context
from listserv.limits import per_process
from listserv.startup import prepare_database
from listserv.templates import Templates
from tests.admin_helpers import write_config
from tests.conftest import make_settings
from tests.host_helpers import free_port

RATE, BURST = 2, 4


def web_children(pid: int) -> list[int]:
    """`listserv web --reuse-port` processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and b"--reuse-port" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds a socket listening on `port` (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
                return True
    return False


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            httpx.get(f"http://127.0.0.1:{port}/lists", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the web port never answered: " + log.read_text())


def test_share_of_a_limit() -> None:
    assert per_process(20, 1) == 20
    assert per_process(20, 2) == 10
    assert per_process(5, 2) == 3  # rounded up: a share is never 0
    assert per_process(1, 4) == 1
    assert per_process(0, 4) == 0  # off stays off


def test_processes_must_be_positive(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match=r"web\.processes"):
        make_settings(sqlite_url, tmp_path / "var", web={"processes": 0})


@pytest.mark.slow
def test_two_web_processes_share_the_port_and_the_token_rate(db_url: str, tmp_path: Path) -> None:
    web_port = free_port()
    tables = {
        "web": {"port": web_port, "base_url": f"http://127.0.0.1:{web_port}", "processes": 2},
        "smtp": {"port": free_port()},
        "limits": {"api_requests_per_second": RATE, "api_burst": BURST},
    }
    settings = make_settings(db_url, tmp_path / "var", **tables)
    engine, factory = prepare_database(settings)
    with db.session_scope(factory) as session:
        ctx = Context(session=session, settings=settings, templates=Templates())
        token = tokens.create_token(ctx, host_actor(), "two", "reader", list_names=["sm-cop"])
    engine.dispose()
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var", **tables)
    env = dict(os.environ, LISTSERV_CONFIG=str(config))
    env.pop("LISTSERV_DATABASE_URL", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "listserv", "serve"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(web_port, proc, log)
        [extra] = web_children(proc.pid)
        deadline = time.monotonic() + 60
        while not listens(extra, web_port):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert listens(proc.pid, web_port)
        headers = {"authorization": f"Bearer {token.token}"}
        started = time.monotonic()
        statuses = []
        for _ in range(16):  # a new connection each: the kernel spreads them over both
            response = httpx.get(
                f"http://127.0.0.1:{web_port}/api/v1/lists/sm-cop", headers=headers, timeout=10
            )
            statuses.append(response.status_code)
        elapsed = time.monotonic() - started
        assert set(statuses) <= {200, 429}
        # Together the two never allow more than the one bucket would.
        assert statuses.count(200) <= BURST + math.ceil(RATE * elapsed), (statuses, elapsed)
        assert 429 in statuses
        page = httpx.get(f"http://127.0.0.1:{web_port}/lists", timeout=10)
        assert page.status_code == 200 and "SM-COP" in page.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while Path(f"/proc/{extra}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{extra}").exists() or "Z" in Path(f"/proc/{extra}/stat").read_text()
