# SPDX-License-Identifier: Apache-2.0
"""Web throughput: the list page and the RFC 8058 one-click unsubscribe POST under load.

Seeds a SQLite database with `--members` members of SM-COP (the list page then
says "Join 1,493 community members") plus `--unsubscribers` more whose one-click
tokens are computed as fan-out computes them, starts `listserv serve` (SQLite,
Maildir, every worker running, web pages on a loopback port) or, with `--alone`,
`listserv web`, in a subprocess, then drives it from this process over
`--connections` keep-alive HTTP/1.1 connections with a minimal asyncio client
(so the client, not the server, is cheap). Prints requests per second and
latency percentiles for:

- GET /lists/sm-cop for `--seconds` seconds (after a short warm-up);
- POST /unsubscribe/sm-cop/<token> with `List-Unsubscribe=One-Click`, each
  token used once (every POST removes a member, audits, and queues a goodbye
  mail that the delivery worker writes to the Maildir meanwhile).

    .venv/bin/python benchmarks/web.py --connections 32 --seconds 10
    .venv/bin/python benchmarks/web.py --console   # and the console's p50/p99 per page
    .venv/bin/python benchmarks/web.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.actors import as_actor  # noqa: E402  (needs ROOT on the path)

SECRET = "benchmark-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(var: Path, smtp_port: int, web_port: int) -> Path:
    config = var / "bench.toml"
    config.write_text(
        textwrap.dedent(f"""
        [site]
        domain = "lists.example.gov"
        secret = "{SECRET}"
        var_dir = "{var}"
        [smtp]
        port = {smtp_port}
        [delivery]
        maildir = "{var / "mail"}"
        [web]
        port = {web_port}
        base_url = "http://127.0.0.1:{web_port}"
        [limits]
        web_tokens_per_client_per_minute = 0
        [[lists]]
        name = "sm-cop"
        display_name = "SM-COP"
        description = "The Social Media Community of Practice."
        owners = ["owner@digital.gov"]
        join_phrases = ["Join the Social Media Community"]
        eligible_domains = ["gov", "mil"]
        """)
    )
    return config


def seed(config: Path, members: int, unsubscribers: int, database_url: str = "") -> list[str]:
    """Members for the count, and the one-click paths of the unsubscribers."""
    from sqlalchemy import select

    from listserv import db, roster
    from listserv.app import prepare_database
    from listserv.config import load_settings
    from listserv.lists import get_list
    from listserv.models import Member
    from listserv.tokens import unsubscribe_token

    env = {"LISTSERV_DATABASE_URL": database_url} if database_url else {}
    settings = load_settings(config, environ=env)
    engine, factory = prepare_database(settings)
    try:
        with db.session_scope(factory) as session:
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            people = [
                roster.NewMember(f"member{i}@agency.gov", f"member{i}@agency.gov")
                for i in range(members)
            ] + [
                roster.NewMember(f"leaver{i}@agency.gov", f"leaver{i}@agency.gov")
                for i in range(unsubscribers)
            ]
            roster.add_members_bulk(
                session, mlist, people, audit_each=False, actor=as_actor("benchmark", "cli")
            )
        with factory() as session:
            rows = session.execute(
                select(Member.id, Member.unsubscribe_nonce).where(
                    Member.address_key.like("leaver%")
                )
            ).all()
        return [
            f"/unsubscribe/sm-cop/{unsubscribe_token(SECRET, mid, 'sm-cop', nonce)}"
            for mid, nonce in rows
        ]
    finally:
        engine.dispose()


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n".encode()


def one_click(path: str) -> bytes:
    body = b"List-Unsubscribe=One-Click"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(name: str, count: int, elapsed: float, latencies: list[float], errors: int) -> None:
    ms = [v * 1000 for v in latencies]
    print(
        f"{name}: {count} requests in {elapsed:.2f}s = {count / elapsed:,.0f} req/s; "
        f"latency p50 {percentile(ms, 0.50):.1f} ms, p90 {percentile(ms, 0.90):.1f} ms, "
        f"p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms; non-200: {errors}",
        flush=True,
    )


async def list_page_load(port: int, connections: int, seconds: float, warmup: float) -> None:
    raw = get("/lists/sm-cop")
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    errors = 0
    count = 0
    measuring = False
    stop = False

    async def worker(conn: Connection) -> None:
        nonlocal errors, count
        while not stop:
            started = time.perf_counter()
            status = await conn.request(raw)
            if measuring:
                latencies.append(time.perf_counter() - started)
                count += 1
                errors += status != 200

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    await asyncio.sleep(warmup)
    measuring = True
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.perf_counter() - began
    stop = True
    await asyncio.gather(*tasks)
    for c in conns:
        c.close()
    report("GET /lists/sm-cop", count, elapsed, latencies, errors)


async def unsubscribe_load(port: int, connections: int, paths: list[str]) -> None:
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    errors = 0
    queue = list(reversed(paths))

    async def worker(conn: Connection) -> None:
        nonlocal errors
        while queue:
            raw = one_click(queue.pop())
            started = time.perf_counter()
            status = await conn.request(raw)
            latencies.append(time.perf_counter() - started)
            errors += status != 200

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - began
    for c in conns:
        c.close()
    report("POST /unsubscribe (one-click, each token once)", len(paths), elapsed, latencies, errors)


async def wait_until_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = await Connection.open(port)
            status = await conn.request(get("/lists"))
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1493)
    parser.add_argument("--unsubscribers", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--alone", action="store_true", help="benchmark `listserv web` instead of `serve`"
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL to use instead of SQLite (a schema is made and dropped)",
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="also time the console's pages (100,000 members, 10,000 held posts; "
        "benchmarks/console.py)",
    )
    args = parser.parse_args()
    with postgres_schema(args.database_url) as database_url:
        run(args, database_url)
    if args.console:
        print("\nconsole pages, signed-in owner (benchmarks/console.py):", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "console.py")], check=True)


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema in the given PostgreSQL database, dropped afterwards."""
    if not url:
        yield ""
        return
    from sqlalchemy import create_engine, text

    from listserv.db import normalise_url

    schema = f"bench_web_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(args: argparse.Namespace, database_url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="listserv-web-bench-") as tmp:
        var = Path(tmp)
        web_port = free_port()
        config = write_config(var, free_port(), web_port)
        started = time.perf_counter()
        paths = seed(config, args.members, args.unsubscribers, database_url)
        print(
            f"seeded {args.members + args.unsubscribers} members in "
            f"{time.perf_counter() - started:.1f}s; server: "
            f"listserv {'web' if args.alone else 'serve'} "
            f"({'PostgreSQL' if database_url else 'SQLite WAL, synchronous=FULL'}), "
            f"{args.connections} keep-alive connections, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        env = dict(os.environ, LISTSERV_CONFIG=str(config))
        env.pop("LISTSERV_DATABASE_URL", None)
        if database_url:
            env["LISTSERV_DATABASE_URL"] = database_url
        command = "web" if args.alone else "serve"
        log_path = var / "server.log"
        log_file = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "listserv", command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            asyncio.run(wait_until_up(web_port, proc))
            asyncio.run(list_page_load(web_port, args.connections, args.seconds, args.warmup))
            asyncio.run(unsubscribe_load(web_port, args.connections, paths))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_file.close()
            if proc.returncode not in (0, -signal.SIGTERM):
                tail = log_path.read_text(errors="replace").splitlines()[-5:]
                print(f"server exited with {proc.returncode}:", *tail, sep="\n  ", file=sys.stderr)


if __name__ == "__main__":
    main()
