# SPDX-License-Identifier: Apache-2.0
"""API throughput: authenticated `GET /api/v1/lists/sm-cop/members?limit=100` under load.

Seeds a SQLite database (or a PostgreSQL schema) with `--members` members of
SM-COP and a reader token, starts `listserv serve` in a subprocess (with
`[web] processes = --processes`, 2 by default: one a core of a two-core
host), walks the whole roster once by cursor to collect every page's
cursor, then drives the API over `--connections` keep-alive HTTP/1.1
connections and prints requests per second and latency percentiles for the
first page, and for pages taken at random from the whole roster — a keyset
cursor makes the 1,000th page cost what the first does. It also prints the
server's CPU time per request (all its web processes together), which
depends less on what else the machine is running than req/s does.

The load comes from `wrk` when it is installed (`apt-get install wrk`): a C
load generator takes a small part of a core, where a Python client on a
two-core machine takes about the CPU the server gets. Without it (or with
`--python-client`) the minimal asyncio client of benchmarks/web.py is used.

    .venv/bin/python benchmarks/api.py --members 100000 --connections 32 --seconds 10
    .venv/bin/python benchmarks/api.py --processes 1   # one web process (the default config)
    .venv/bin/python benchmarks/api.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from benchmarks.web import (  # noqa: E402
    Connection,
    free_port,
    percentile,
    postgres_schema,
    write_config,
)
from listserv import db, roster  # noqa: E402
from listserv.actors import host_actor, system_actor  # noqa: E402
from listserv.acts import tokens  # noqa: E402
from listserv.config import load_settings  # noqa: E402
from listserv.context import Context  # noqa: E402
from listserv.lists import get_list  # noqa: E402
from listserv.startup import prepare_database  # noqa: E402
from listserv.templates import Templates  # noqa: E402

MEMBERS = "/api/v1/lists/sm-cop/members"


def seed(config: Path, members: int, database_url: str) -> str:
    """The roster, and a reader token for SM-COP."""
    env = {"LISTSERV_DATABASE_URL": database_url} if database_url else {}
    settings = load_settings(config, environ=env)
    engine, factory = prepare_database(settings)
    try:
        with db.session_scope(factory) as session:
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            addresses = (f"member{i:06d}@agency{i % 300}.gov" for i in range(members))
            people = [roster.NewMember(a, a, name=a.split("@")[0]) for a in addresses]
            roster.add_members_bulk(
                session, mlist, people, audit_each=False, actor=system_actor("benchmark")
            )
            ctx = Context(session=session, settings=settings, templates=Templates())
            issued = tokens.create_token(
                ctx, host_actor(), "bench", "reader", list_names=["sm-cop"]
            )
        if database_url:
            # What autovacuum does soon after a bulk load: without statistics the
            # planner may sort the whole roster instead of reading the index in order.
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        return issued.token
    finally:
        engine.dispose()


def get(path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


async def read_json(conn: Connection, raw: bytes) -> tuple[int, bytes]:
    conn.writer.write(raw)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return int(head[9:12]), await conn.reader.readexactly(length)


async def cursors(port: int, token: str) -> list[str]:
    """Every page's cursor, walking the roster once (also checks it is complete)."""
    conn = await Connection.open(port)
    found: list[str] = []
    seen = 0
    cursor: str | None = None
    began = time.perf_counter()
    while True:
        path = f"{MEMBERS}?limit=100" + (f"&cursor={cursor}" if cursor else "")
        status, body = await read_json(conn, get(path, token))
        assert status == 200, body[:200]
        page = json.loads(body)
        seen += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        found.append(cursor)
    conn.close()
    elapsed = time.perf_counter() - began
    print(f"walked {seen} members in {len(found) + 1} pages in {elapsed:.1f}s", flush=True)
    return found


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User and system CPU the server and its child processes use (Linux /proc).

    The children are the extra web processes of `[web] processes`.
    """
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(entry.name)
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def load(
    port: int,
    token: str,
    name: str,
    paths: list[str],
    connections: int,
    seconds: float,
    server_pid: int,
) -> None:
    conns = [await Connection.open(port) for _ in range(connections)]
    requests = [get(p, token) for p in paths]
    latencies: list[float] = []
    errors = 0
    measuring = False
    stop = False

    async def worker(conn: Connection) -> None:
        nonlocal errors
        while not stop:
            raw = random.choice(requests)
            started = time.perf_counter()
            status = await conn.request(raw)
            if measuring:
                latencies.append(time.perf_counter() - started)
                errors += status != 200

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    await asyncio.sleep(1.0)
    measuring = True
    began = time.perf_counter()
    cpu_began = cpu_seconds(server_pid)
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(server_pid) - cpu_began
    stop = True
    await asyncio.gather(*tasks)
    for c in conns:
        c.close()
    ms = [v * 1000 for v in latencies]
    print(
        f"{name}: {len(ms)} requests in {elapsed:.2f}s = {len(ms) / elapsed:,.0f} req/s; "
        f"latency p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms; non-200: {errors}; server CPU {cpu / len(ms) * 1000:.2f} ms "
        f"a request (one free core: ~{len(ms) / cpu:,.0f} req/s)",
        flush=True,
    )


WRK_SCRIPT = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
wrk.headers["Authorization"] = "Bearer %(token)s"
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  local non200 = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("WRK %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max, non200))
end
"""


def wrk_load(
    port: int,
    token: str,
    name: str,
    paths: list[str],
    connections: int,
    seconds: float,
    server_pid: int,
    var: Path,
) -> None:
    """The same load and figures as `load`, generated by wrk (one thread)."""
    listing = var / f"paths-{len(paths)}.txt"
    listing.write_text("".join(p + "\n" for p in paths))
    script = var / "members.lua"
    script.write_text(WRK_SCRIPT % {"paths": listing, "token": token})
    base = ["wrk", "-t1", f"-c{connections}", "-s", str(script), f"http://127.0.0.1:{port}"]
    subprocess.run([*base[:1], "-d1s", *base[1:]], check=True, capture_output=True)  # warm-up
    cpu_began = cpu_seconds(server_pid)
    done = subprocess.run(
        [*base[:1], f"-d{seconds:g}s", *base[1:]], check=True, capture_output=True, text=True
    )
    cpu = cpu_seconds(server_pid) - cpu_began
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK "))
    count, micros, p50, p99, worst, errors = (int(v) for v in line.split()[1:])
    elapsed = micros / 1e6
    print(
        f"{name} (wrk): {count} requests in {elapsed:.2f}s = {count / elapsed:,.0f} req/s; "
        f"latency p50 {p50 / 1000:.1f} ms, p99 {p99 / 1000:.1f} ms, max {worst / 1000:.1f} ms; "
        f"non-200: {errors}; server CPU {cpu / count * 1000:.2f} ms a request "
        f"(one free core: ~{count / cpu:,.0f} req/s)",
        flush=True,
    )


async def wait_until_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = await Connection.open(port)
            conn.close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not start")


def drive(port: int, token: str, args: argparse.Namespace, pid: int, var: Path) -> None:
    pages = asyncio.run(cursors(port, token))
    first = [f"{MEMBERS}?limit=100"]
    deep = [f"{MEMBERS}?limit=100&cursor={c}" for c in pages]
    for name, paths in (("first page", first), ("pages across the roster", deep)):
        if shutil.which("wrk") and not args.python_client:
            wrk_load(port, token, name, paths, args.connections, args.seconds, pid, var)
        else:
            asyncio.run(load(port, token, name, paths, args.connections, args.seconds, pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", default="", help="PostgreSQL instead of SQLite")
    parser.add_argument(
        "--processes", type=int, default=2, help="[web] processes (one a core is the aim)"
    )
    parser.add_argument(
        "--python-client", action="store_true", help="the asyncio client even if wrk is here"
    )
    args = parser.parse_args()
    with postgres_schema(args.database_url) as database_url, tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        web_port = free_port()
        config = write_config(var, free_port(), web_port)
        unlimited = "[limits]\napi_requests_per_second = 1000000\napi_burst = 1000000\n"
        text_now = config.read_text().replace("[web]\n", f"[web]\nprocesses = {args.processes}\n")
        if "[limits]\n" in text_now:
            config.write_text(text_now.replace("[limits]\n", unlimited, 1))
        else:
            config.write_text(text_now + unlimited)
        started = time.perf_counter()
        token = seed(config, args.members, database_url)
        print(
            f"seeded {args.members} members in {time.perf_counter() - started:.1f}s; "
            f"listserv serve on {'PostgreSQL' if database_url else 'SQLite'}, "
            f"{args.processes} web process(es), "
            f"{args.connections} connections, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        env = dict(os.environ, LISTSERV_CONFIG=str(config))
        env.pop("LISTSERV_DATABASE_URL", None)
        if database_url:
            env["LISTSERV_DATABASE_URL"] = database_url
        proc = subprocess.Popen(
            [sys.executable, "-m", "listserv", "serve"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(var / "server.log").open("wb"),
        )
        try:
            asyncio.run(wait_until_up(web_port, proc))
            drive(web_port, token, args, proc.pid, var)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
