# SPDX-License-Identifier: Apache-2.0
"""Fan-out throughput: one 4 KB post to N members, from intake's 250 to the last copy.

For each delivery style (personalized, bulk) and each N (default 10,000 and 100,000)
this script

1. makes a fresh SQLite database (durable: WAL, synchronous=FULL) with N members;
2. starts a counting SMTP sink in a process of its own (asyncio, PIPELINING), so it
   does not share the service's event loop;
3. starts `listserv serve --no-web` in a subprocess, relaying to the sink;
4. sends one 4 KB post from a member to sm-cop@ over SMTP and notes the 250;
5. waits until the sink has accepted N recipients, and prints the time from the
   250 to the last recipient at the sink, recipients per second, and the peak RSS
   (VmHWM) of the service and of its processing worker (the process that expands
   the post into the outbox), each measured on its own;
6. prints the phases: seeding the members, 250 → first copy at the sink (processing:
   rules, archive, one outbox row per member, commit) and first → last copy
   (delivery: claiming, personalizing, relaying, settling) with its own rate.

The sink waits up to 600 s or 2 ms a member, whichever is longer (a slow run still
prints its figures instead of a TimeoutError at 1,000,000 members).

It also measures the sink's own ceiling the same way with a bare client (our SMTP
client with no database: N single-recipient messages, and N recipients in batches of
500), which is the limit any list server could reach on this machine.

    .venv/bin/python benchmarks/fanout.py                      # 10k and 100k, both styles
    .venv/bin/python benchmarks/fanout.py --members 10000 --style bulk
    .venv/bin/python benchmarks/fanout.py --members 100000 --profile   # py-spy on the service
    .venv/bin/python benchmarks/fanout.py --sign        # DKIM: 10,000 signed copies vs openssl
    .venv/bin/python benchmarks/fanout.py --members 1000000 --style personalized --no-ceiling \
        --database-url postgresql://postgres@127.0.0.1:5432/bench

Subcommands `sink` and `bare` are the helper processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOMAIN = "lists.example.gov"
CHUNKING = True  # whether the sink offers CHUNKING (BDAT); --no-chunking turns it off
POSTER = "jane.doe@agency.gov"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- sink


class SinkProtocol(asyncio.Protocol):
    """A minimal ESMTP server (PIPELINING, CHUNKING) that accepts and counts recipients."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.buffer = bytearray()
        self.in_data = False
        self.chunk_left = 0  # bytes of a BDAT chunk still to come
        self.chunk_last = False
        self.rcpts = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def _delivered(self, out: list[bytes]) -> None:
        self.sink.delivered(self.rcpts)
        self.rcpts = 0
        out.append(b"250 2.0.0 Ok: queued\r\n")

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        out: list[bytes] = []
        pos = 0
        while True:
            if self.chunk_left:
                take = min(self.chunk_left, len(buffer) - pos)
                self.chunk_left -= take
                pos += take
                if self.chunk_left:
                    break
                if self.chunk_last:
                    self._delivered(out)
                else:
                    out.append(b"250 2.0.0 chunk received\r\n")
                continue
            if self.in_data:
                end = buffer.find(b"\r\n.\r\n", max(pos - 2, 0))
                if end < 0:
                    break
                pos = end + 5
                self.in_data = False
                self._delivered(out)
                continue
            end = buffer.find(b"\r\n", pos)
            if end < 0:
                break
            verb = bytes(buffer[pos : pos + 4]).upper()
            line = bytes(buffer[pos:end])
            pos = end + 2
            if verb == b"RCPT":
                self.rcpts += 1
                out.append(b"250 2.1.5 Ok\r\n")
            elif verb == b"MAIL":
                self.rcpts = 0
                out.append(b"250 2.1.0 Ok\r\n")
            elif verb == b"BDAT":
                words = line.split()
                self.chunk_left = int(words[1])
                self.chunk_last = len(words) > 2 and words[2].upper() == b"LAST"
                if not self.chunk_left:
                    self.chunk_left = 0
                    if self.chunk_last:
                        self._delivered(out)
            elif verb == b"DATA":
                self.in_data = True
                pos -= 2  # the terminator may follow at once: keep the CRLF before it
                out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"EHLO":
                chunking = b"250-CHUNKING\r\n" if self.sink.chunking else b""
                out.append(
                    b"250-sink\r\n250-PIPELINING\r\n"
                    + chunking
                    + b"250-8BITMIME\r\n250 SMTPUTF8\r\n"
                )
            elif verb == b"QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
            else:
                out.append(b"250 2.0.0 Ok\r\n")
        del buffer[:pos]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


class Sink:
    def __init__(self, expect: int, chunking: bool = True) -> None:
        self.expect = expect
        self.chunking = chunking
        self.count = 0
        self.first: float | None = None

    def delivered(self, rcpts: int) -> None:
        if self.first is None:
            self.first = time.time()
        self.count += rcpts
        if self.count >= self.expect:
            sys.stdout.write(f"done {time.time():.6f} {self.first:.6f} {self.count}\n")
            sys.stdout.flush()
            self.expect = sys.maxsize


async def run_sink(port: int, expect: int, chunking: bool) -> None:
    sink = Sink(expect, chunking)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(sink), "127.0.0.1", port, backlog=512)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


class SinkProcess:
    def __init__(self, expect: int) -> None:
        self.port = free_port()
        flags = [] if CHUNKING else ["--no-chunking"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "sink",
                "--port",
                str(self.port),
                "--expect",
                str(expect),
                *flags,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "ready"

    def wait_done(self, timeout: float) -> tuple[float, float, int]:
        assert self.proc.stdout is not None
        deadline = time.time() + timeout
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        while time.time() < deadline:
            if selector.select(timeout=1.0):
                line = self.proc.stdout.readline().split()
                if line and line[0] == "done":
                    return float(line[1]), float(line[2]), int(line[3])
        raise TimeoutError("the sink did not receive every recipient in time")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


# ----------------------------------------------------------------------------- bare client


def post_bytes(size: int = 4096) -> bytes:
    head = (
        f"From: Jane Doe <{POSTER}>\r\n"
        f"To: sm-cop@{DOMAIN}\r\n"
        "Subject: Benchmark post\r\n"
        f"Message-ID: <bench-{time.time_ns()}@agency.gov>\r\n"
        "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
    ).encode()
    line = b"Social media managers share practice, tools and policy here. " * 1 + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return head + body[: size - len(head)]


async def run_bare(port: int, members: int, style: str, connections: int) -> None:
    from listserv.addresses import verp_encode
    from listserv.delivery import SMTPRelay

    relay = SMTPRelay("127.0.0.1", port, connections=connections, helo_name=DOMAIN)
    message = post_bytes()
    addresses = [f"member{i:06d}@agency{i % 97}.gov" for i in range(members)]
    start = time.time()
    if style == "personalized":
        window = asyncio.Semaphore(connections * 8)

        async def one(address: str) -> None:
            async with window:
                await relay.send(verp_encode("sm-cop", address, DOMAIN), [address], message)

        await asyncio.gather(*(one(a) for a in addresses))
    else:
        batches = [addresses[i : i + 500] for i in range(0, members, 500)]
        await asyncio.gather(*(relay.send(f"sm-cop-bounces@{DOMAIN}", b, message) for b in batches))
    await relay.close()
    sys.stdout.write(f"started {start:.6f}\n")


def bare_ceiling(members: int, style: str, connections: int) -> tuple[float, float]:
    sink = SinkProcess(members)
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "bare",
                "--port",
                str(sink.port),
                "--members",
                str(members),
                "--style",
                style,
                "--connections",
                str(connections),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        start = float(out.split()[1])
        last, _, count = sink.wait_done(30)
    finally:
        sink.stop()
    elapsed = last - start
    return elapsed, count / elapsed


# ----------------------------------------------------------------------------- service


def make_key(path: Path, algorithm: str = "RSA") -> Path:
    """A 2048-bit RSA key (or an Ed25519 key) for DKIM (openssl must be installed)."""
    options = ["-pkeyopt", "rsa_keygen_bits:2048"] if algorithm == "RSA" else []
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", algorithm, *options, "-out", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def openssl_sign_rate(seconds: int = 3) -> float:
    """`openssl speed rsa2048`: RSA-2048 signatures per second on one core."""
    out = subprocess.run(
        ["openssl", "speed", "-seconds", str(seconds), "rsa2048"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        words = line.split()
        if words[:3] == ["rsa", "2048", "bits"]:
            return float(words[5])
    raise RuntimeError("could not read openssl speed's output")


def write_config(
    var: Path, smtp_port: int, relay_port: int, style: str, connections: int, sign: bool = False
) -> Path:
    config = var / "bench.toml"
    dkim = ""
    if sign:
        key = make_key(var / "dkim.pem")
        ed_key = make_key(var / "dkim-ed25519.pem", "ED25519")
        dkim = (
            f'[dkim]\nselector = "bench"\nprivate_key_file = "{key}"\n'
            f'ed25519_key_file = "{ed_key}"\n'
        )
    config.write_text(
        dkim
        + textwrap.dedent(f"""
        [site]
        domain = "{DOMAIN}"
        secret = "benchmark-secret-0123456789abcdef"
        var_dir = "{var}"
        [smtp]
        port = {smtp_port}
        [delivery]
        transport = "smtp"
        relay_host = "127.0.0.1"
        relay_port = {relay_port}
        connections = {connections}
        [web]
        port = 0
        [limits]
        smtp_connections_per_client = 0
        smtp_messages_per_client_per_minute = 0
        [[lists]]
        name = "sm-cop"
        display_name = "SM-COP"
        owners = ["owner@digital.gov"]
        eligible_domains = ["gov", "mil"]
        subject_prefix = "[SM-COP]"
        delivery_style = "{style}"
        """)
    )
    return config


DATABASE_URL: str | None = None  # --database-url: a PostgreSQL database to empty and use


def fresh_database() -> dict[str, str]:
    """The environment naming the database: SQLite under var/, or PostgreSQL emptied."""
    if DATABASE_URL is None:
        return {}
    from sqlalchemy import text

    from listserv.db import make_engine

    engine = make_engine(DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return {"LISTSERV_DATABASE_URL": DATABASE_URL}


def prepare(config: Path, members: int) -> None:
    """Migrate, seed the list, and add N members (one of them the poster)."""
    from sqlalchemy import insert, text

    from listserv import db, lists, roster
    from listserv.config import load_settings
    from listserv.models import Member, utcnow
    from listserv.tokens import new_nonce

    settings = load_settings(config, environ=fresh_database())
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    factory = db.make_sessionmaker(engine)
    with factory() as session, session.begin():
        lists.sync_from_config(session, settings)
        mlist = lists.get_list(session, "sm-cop")
        assert mlist is not None
        now = utcnow()
        addresses = [POSTER] + [f"member{i:06d}@agency{i % 97}.gov" for i in range(members - 1)]
        for start in range(0, len(addresses), 10_000):
            session.execute(
                insert(Member.__table__),
                [
                    {
                        "list_id": mlist.id,
                        "address": a,
                        # Synthetic ASCII addresses: their normal form is their lower case
                        # (email-validator on 100,000 of them would take half a minute).
                        "address_key": roster.address_key(a) if a == POSTER else a.lower(),
                        "unsubscribe_nonce": new_nonce(),
                        "joined_at": now,
                    }
                    for a in addresses[start : start + 10_000]
                ],
            )
    if DATABASE_URL is not None:  # as `members import` leaves it: statistics up to date
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()


def descendants(pid: int) -> list[int]:
    """`pid`'s children, grandchildren …, in the order they are found."""
    found: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in map(int, children):
        found += [child, *descendants(child)]
    return found


def process_name(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    line = " ".join(w.decode(errors="replace") for w in command if w)
    if "resource_tracker" in line:
        return "resource tracker"
    if "multiprocessing.spawn" in line:
        return "processing worker"
    return line[:40]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("the service did not start")


@dataclass
class ServiceRun:
    elapsed: float  # 250 → last recipient at the sink
    rate: float  # recipients per second over `elapsed`
    rss: float  # peak RSS of the service's main process (MB)
    first: float  # 250 → first recipient at the sink
    seeding: float  # making the database and its N members
    delivery: float  # first → last recipient at the sink
    others: list[tuple[str, float]]  # (process, peak RSS MB) of the service's children


def run_service(
    members: int, style: str, connections: int, profile: Path | None, sign: bool = False
) -> ServiceRun:
    sink = SinkProcess(members)
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        var = Path(tmp)
        smtp_port = free_port()
        config = write_config(var, smtp_port, sink.port, style, connections, sign)
        seeding_started = time.perf_counter()
        prepare(config, members)
        seeding = time.perf_counter() - seeding_started
        env = dict(os.environ, LISTSERV_CONFIG=str(config))
        env.pop("LISTSERV_DATABASE_URL", None)
        if DATABASE_URL is not None:
            env["LISTSERV_DATABASE_URL"] = DATABASE_URL
        command = [sys.executable, "-m", "listserv", "serve", "--no-web"]
        if profile is not None:
            command = [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--threads",
                "--subprocesses",
                "--rate",
                "250",
                "-f",
                "raw",
                "-o",
                str(profile),
                "--",
                *command,
            ]
        service = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_for_port(smtp_port)
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=60) as client:
                client.sendmail(POSTER, [f"sm-cop@{DOMAIN}"], post_bytes())
                accepted = time.time()
            last, first, count = sink.wait_done(timeout=max(600.0, members * 0.002))
            pid = service.pid
            if profile is not None:
                pid = _child_pid(service.pid)
            rss = peak_rss_mb(pid)
            others = [(process_name(c), peak_rss_mb(c)) for c in descendants(pid)]
        finally:
            service.send_signal(signal.SIGINT if profile is not None else signal.SIGTERM)
            try:
                _, err = service.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                service.kill()
                _, err = service.communicate()
            sink.stop()
        lines = err.decode(errors="replace").splitlines()
        errors = [line for line in lines if "ERROR" in line]
        if errors:
            print(f"  service errors ({len(errors)}):", *errors[:5], sep="\n    ")
            trace = next((i for i, line in enumerate(lines) if "Traceback" in line), None)
            if trace is not None:  # the first traceback's last lines say what failed
                tail = lines[trace : trace + 60]
                end = next((i for i, x in enumerate(tail[1:], 1) if not x.startswith(" ")), 0)
                print("  first traceback ends:", *tail[max(0, end - 4) : end + 1], sep="\n    ")
    elapsed = last - accepted
    return ServiceRun(
        elapsed, count / elapsed, rss, first - accepted, seeding, last - first, others
    )


def _child_pid(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


def print_profile(path: Path, top: int = 22) -> None:
    """Where the service's CPU went: inclusive share of the stage functions (listserv
    code and the libraries it calls directly), and the leaf functions that burn it."""
    from collections import Counter

    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";")[1:] if "(" in f]
        names = []
        for frame in frames:
            function, _, where = frame.partition(" (")
            file = where.split(":")[0]
            names.append((function, file))
        seen = set()
        for function, file in names:
            if file.startswith(("listserv/", "aiosmtpd/")) or "sqlite" in function.lower():
                key = f"{function} ({file})"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
        if names:
            function, file = names[-1]
            leaves[f"{function} ({file.rpartition('/')[2]})"] += count
    print(
        f"  profile: {total} on-CPU samples (all threads of the service and its processing "
        "worker); inclusive, stage functions:"
    )
    for key, count in inclusive.most_common(top):
        print(f"    {100 * count / total:5.1f}%  {key}")
    print("  leaf functions:")
    for key, count in leaves.most_common(12):
        print(f"    {100 * count / total:5.1f}%  {key}")


def dkim_cost(rounds: int = 500) -> tuple[float, float] | None:
    """Milliseconds per personalized copy signed: RSA-2048 alone, and RSA plus Ed25519
    (one thread; the per-post work done once, as delivery does)."""
    import shutil

    if shutil.which("openssl") is None:
        return None
    from listserv.decorate import personalize
    from listserv.delivery.wire import canonical
    from listserv.signing import Signer

    with tempfile.TemporaryDirectory() as tmp:
        rsa = make_key(Path(tmp) / "key.pem").read_bytes()
        ed = make_key(Path(tmp) / "ed.pem", "ED25519").read_bytes()
    shared = canonical(post_bytes())
    costs = []
    for signer in (
        Signer("bench", rsa, DOMAIN, DOMAIN),
        Signer("bench", rsa, DOMAIN, DOMAIN, ed25519_key=ed),
    ):
        prepared = signer.prepare(shared, DOMAIN)
        start = time.perf_counter()
        for i in range(rounds):
            prepared.sign(personalize(shared, f"https://x.gov/unsubscribe/sm-cop/{i}.tok"))
        costs.append((time.perf_counter() - start) / rounds * 1000)
    return costs[0], costs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    sink_p = sub.add_parser("sink")
    sink_p.add_argument("--port", type=int, required=True)
    sink_p.add_argument("--expect", type=int, required=True)
    sink_p.add_argument("--no-chunking", action="store_true")
    bare_p = sub.add_parser("bare")
    bare_p.add_argument("--port", type=int, required=True)
    bare_p.add_argument("--members", type=int, required=True)
    bare_p.add_argument("--style", required=True)
    bare_p.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--members",
        type=int,
        action="append",
        help="member counts (repeatable; default 10000 and 100000)",
    )
    parser.add_argument("--style", choices=["personalized", "bulk"], action="append")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the service and its processing worker with py-spy (collapsed stacks "
        "in /tmp) and summarise",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the bare-client runs")
    parser.add_argument(
        "--sign",
        action="store_true",
        help="configure DKIM keys (RSA-2048 and Ed25519): every copy signed twice, posts "
        "ARC-sealed; compared with `openssl speed rsa2048` measured in the same run",
    )
    parser.add_argument(
        "--database-url", help="a PostgreSQL database to empty and use (default: SQLite)"
    )
    parser.add_argument(
        "--no-chunking",
        action="store_true",
        help="the sink offers PIPELINING but not CHUNKING (every message waits for a 354)",
    )
    args = parser.parse_args()
    if args.command == "sink":
        asyncio.run(run_sink(args.port, args.expect, not args.no_chunking))
        return
    if args.command == "bare":
        asyncio.run(run_bare(args.port, args.members, args.style, args.connections))
        return
    global CHUNKING, DATABASE_URL
    CHUNKING = not args.no_chunking
    DATABASE_URL = args.database_url
    sizes = args.members or ([10_000] if args.sign else [10_000, 100_000])
    styles = args.style or (["personalized"] if args.sign else ["personalized", "bulk"])
    print(
        "fan-out of one 4 KB post, "
        + ("PostgreSQL, " if DATABASE_URL else "SQLite (WAL, synchronous=FULL), ")
        + f"{args.connections} relay connections, {os.cpu_count()} CPUs, sink with "
        + ("PIPELINING and CHUNKING" if CHUNKING else "PIPELINING, no CHUNKING")
        + ("; DKIM-signed (RSA-2048 + Ed25519) and ARC-sealed" if args.sign else "")
    )
    openssl_rate = openssl_sign_rate() if args.sign else 0.0
    if args.sign:
        print(f"openssl speed rsa2048: {openssl_rate:.0f} signs/s on one core")
    for members in sizes:
        for style in styles:
            profile = None
            if args.profile:
                profile = Path(f"/tmp/fanout-{style}-{members}.collapsed.txt")
            run = run_service(members, style, args.connections, profile, args.sign)
            rate, rss = run.rate, run.rss
            print(
                f"service  {style:12s} {members:7d} members: {run.elapsed:7.2f} s from 250 to "
                f"last recipient, {rate:9.0f} recipients/s, peak RSS {rss:5.0f} MB"
                + f"; first copy after {run.first:.2f} s"
                + (f" (profile: {profile})" if profile else "")
            )
            workers = ", ".join(f"{name} {mb:.0f} MB" for name, mb in run.others)
            print(
                f"         phases: seeding {run.seeding:.2f} s (not in the rate); "
                f"250 -> first copy {run.first:.2f} s (processing, outbox rows); "
                f"first -> last copy {run.delivery:.2f} s "
                f"({(members - 1) / max(run.delivery, 1e-9):.0f} copies/s delivery)"
                + (f"; peak RSS of its processes: {workers}" if workers else "")
            )
            if args.sign:
                share = 100 * rate / openssl_rate
                print(
                    f"         signed copies/s = {share:.0f}% of openssl's single-core RSA "
                    f"sign rate (target >= 50%: {'met' if share >= 50 else 'NOT met'}); "
                    f"peak RSS target < 200 MB: {'met' if rss < 200 else 'NOT met'}"
                )
            if profile is not None:
                print_profile(profile)
            if not args.no_ceiling:
                elapsed, rate = bare_ceiling(members, style, args.connections)
                print(
                    f"ceiling  {style:12s} {members:7d} recipients: {elapsed:7.2f} s, "
                    f"{rate:9.0f} recipients/s (bare client into the same sink)"
                )
    cost = dkim_cost() if args.sign else None
    if cost is not None:
        rsa_ms, both_ms = cost
        print(
            f"DKIM signing of a personalized copy, one thread: RSA-2048 {rsa_ms:.2f} ms, "
            f"RSA-2048 + Ed25519 {both_ms:.2f} ms (= {1000 / both_ms:.0f} copies/s a core)"
        )


if __name__ == "__main__":
    main()
