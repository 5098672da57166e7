# SPDX-License-Identifier: Apache-2.0
"""Intake and processing throughput: many concurrent SMTP clients sending join requests.

Starts `listserv serve` (SQLite, Maildir, durability on: WAL with
synchronous=FULL) in a subprocess, then drives it from this process with
`--clients` concurrent aiosmtplib connections, each sending its share of
`--messages` join requests from distinct .gov senders. Prints the rate at which
requests are accepted (250), the rate at which their confirmation mails are
written to the Maildir end to end (first request sent → last confirmation on
disk), the one as a share of the other, and the latency from the end of DATA to
the 250 (p50, p99) while processing runs beside intake.

    .venv/bin/python benchmarks/intake.py --messages 2000 --clients 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(var: Path, port: int) -> Path:
    config = var / "bench.toml"
    config.write_text(
        textwrap.dedent(f"""
        [site]
        domain = "lists.example.gov"
        secret = "benchmark-secret-0123456789abcdef"
        var_dir = "{var}"
        [smtp]
        port = {port}
        [delivery]
        maildir = "{var / "mail"}"
        [limits]
        confirmations_per_address_per_day = 1000000
        requests_per_sender_per_hour = 1000000
        smtp_connections_per_client = 0
        smtp_messages_per_client_per_minute = 0
        [[lists]]
        name = "sm-cop"
        display_name = "SM-COP"
        owners = ["owner@digital.gov"]
        join_phrases = ["Join the Social Media Community"]
        eligible_domains = ["gov", "mil"]
        """)
    )
    return config


def message(i: int) -> bytes:
    return (
        f"From: User {i} <user{i}@agency.gov>\r\n"
        "To: sm-cop-request@lists.example.gov\r\n"
        "Subject: Join the Social Media Community\r\n"
        f"Message-ID: <bench-{i}@agency.gov>\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        "\r\n"
        f"User {i}, Digital Media Specialist\r\n"
    ).encode()


async def client(port: int, indexes: list[int], latencies: list[float]) -> None:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60)
    async with smtp:
        for i in indexes:
            sender = f"user{i}@agency.gov"
            await smtp.mail(sender)
            await smtp.rcpt("sm-cop-request@lists.example.gov")
            started = time.perf_counter()
            response = await smtp.data(message(i))
            latencies.append(time.perf_counter() - started)
            assert response.code == 250, response


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("service exited during start-up")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("service did not start")


def waiting(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(
            conn.execute(
                "SELECT count(*) FROM inbound_messages WHERE status='received'"
            ).fetchone()[0]
        )


def confirmations(new: Path) -> int:
    return sum(1 for _ in os.scandir(new)) if new.exists() else 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--intake-only",
        action="store_true",
        help="serve --no-workers: measure intake alone, then drain with a worker process",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        port = free_port()
        config = write_config(var, port)
        env = dict(os.environ, LISTSERV_CONFIG=str(config))
        extra = ["--no-workers"] if args.intake_only else []
        proc = subprocess.Popen(
            [sys.executable, "-m", "listserv", "serve", "--no-web", *extra],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(port, proc)
            shares = [list(range(c, args.messages, args.clients)) for c in range(args.clients)]
            latencies: list[float] = []
            started = time.perf_counter()
            await asyncio.gather(*(client(port, share, latencies) for share in shares))
            elapsed = time.perf_counter() - started
            accepted_at = time.perf_counter()
            db = var / "listserv.sqlite3"
            if args.intake_only:  # hand over to a full service to drain the queue
                proc.terminate()
                proc.wait(timeout=30)
                proc = subprocess.Popen(
                    [sys.executable, "-m", "listserv", "serve", "--no-web"],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            while waiting(db):
                await asyncio.sleep(0.05)
            drained = time.perf_counter() - accepted_at
            new = var / "mail" / "new"
            while confirmations(new) < args.messages:
                await asyncio.sleep(0.02)
            confirmed = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"messages accepted:      {len(latencies)} from {args.clients} concurrent clients")
    print(f"accepted per second:    {len(latencies) / elapsed:,.0f}")
    print(f"end of DATA → 250:      p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    accept_rate = len(latencies) / elapsed
    end_to_end = args.messages / confirmed
    print(
        f"processing drained:     {drained:.2f} s after the last 250 "
        f"({args.messages / (elapsed + drained):,.0f} messages/s processed end to end)"
    )
    print(
        f"confirmations written:  {end_to_end:,.0f}/s end to end "
        f"({end_to_end / accept_rate:.0%} of the accept rate)"
    )


if __name__ == "__main__":
    asyncio.run(main())
