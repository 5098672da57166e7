# SPDX-License-Identifier: Apache-2.0
"""`listserv serve --no-web` as real processes (one per "host", each with its own var
dir and Maildir, all with one secret and one database), mail sent to them over SMTP,
and what they wrote read back from their Maildirs and the database."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib

from listserv.config import PROJECT_ROOT
from tests.conftest import config_data
from tests.relay_helpers import toml_text

DOMAIN = "lists.example.gov"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Host:
    """One service process: its configuration, var dir, SMTP port and log."""

    name: str
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def maildir(self) -> Path:
        return self.var / "mail"

    @property
    def config(self) -> Path:
        return self.root / "listserv.toml"

    @property
    def log(self) -> Path:
        return self.root / "serve.log"

    def start(self) -> None:
        env = dict(os.environ, LISTSERV_CONFIG=str(self.config))
        env.pop("LISTSERV_DATABASE_URL", None)
        with open(self.log, "ab") as out:
            out.write(f"--- start {self.starts} ---\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "listserv", "serve", "--no-web"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    async def ready(self, timeout: float = 60.0) -> None:
        """Wait until the SMTP port answers (the service has done its start-up)."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None and self.process.poll() is None, self.log_text()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} did not start:\n{self.log_text()}") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def make_host(tmp_path: Path, name: str, db_url: str, **overrides: Any) -> Host:
    """A host's directory and configuration (the shipped one, on `db_url`)."""
    root = tmp_path / name
    root.mkdir(parents=True, exist_ok=True)
    host = Host(name, root, free_port())
    data = config_data(db_url, host.var, **overrides)
    data["smtp"]["port"] = host.port
    host.config.write_text(toml_text(data), encoding="utf-8")
    return host


@dataclass
class Sent:
    """What the sender saw: messages answered 250, and those whose answer never came."""

    accepted: list[str] = field(default_factory=list)  # Message-IDs
    unknown: list[str] = field(default_factory=list)


def message(
    sender: str, to: str, subject: str, body: str = "Hello.\n", **headers: str
) -> tuple[str, bytes]:
    """A plain message and its Message-ID."""
    mid = f"<{uuid.uuid4().hex}@agency.gov>"
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: {mid}",
        "Date: Mon, 07 Dec 2026 09:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
        "",
        body,
    ]
    return mid, "\r\n".join(lines).encode()


def dsn(address: str, to: str = f"sm-cop-bounces@{DOMAIN}") -> tuple[str, bytes]:
    """An RFC 3464 report that `address` does not exist, and its Message-ID."""
    mid = f"<{uuid.uuid4().hex}@relay.example.gov>"
    text = f"""\
From: MAILER-DAEMON@relay.example.gov (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: {mid}
Date: Mon, 07 Dec 2026 09:00:00 +0000
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain; charset=us-ascii

<{address}>: host mx.example.net said: 550 5.1.1 user unknown

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.gov

Final-Recipient: rfc822; {address}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--B--
"""
    return mid, text.replace("\n", "\r\n").encode()


async def send_to(
    port: int, mail_from: str, rcpt_to: str, raw: bytes, timeout: float = 30.0
) -> bool | None:
    """True: answered 250. False: refused before DATA (safe to send again). None: the
    connection broke after DATA was sent, so the message may or may not be stored."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=timeout)
    try:
        await client.connect()
    except (OSError, aiosmtplib.SMTPException):
        return False
    try:
        try:
            await client.mail(mail_from)
            await client.rcpt(rcpt_to)
        except (OSError, aiosmtplib.SMTPException):
            return False
        try:
            await client.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            return False if exc.code >= 400 else None
        except (OSError, aiosmtplib.SMTPException):
            return None
        return True
    finally:
        try:
            await client.quit()
        except (OSError, aiosmtplib.SMTPException):
            client.close()


async def deliver(
    ports: list[int], mail_from: str, rcpt_to: str, raw: bytes, deadline: float
) -> bool | None:
    """Send as an MTA would: to any host that answers, again until one takes it."""
    attempt = 0
    while time.monotonic() < deadline:
        answer = await send_to(ports[attempt % len(ports)], mail_from, rcpt_to, raw)
        if answer is not False:
            return answer
        attempt += 1
        await asyncio.sleep(0.2)
    return False


_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def maildir_headers(maildirs: Iterable[Path]) -> list[dict[str, str]]:
    """Delivered-To, Subject, In-Reply-To of every file in the Maildirs' new/."""
    found = []
    for maildir in maildirs:
        new = maildir / "new"
        if not new.exists():
            continue
        for path in new.iterdir():
            with open(path, "rb") as handle:
                head = _HEADERS.parse(handle)
            found.append(
                {
                    "to": str(head.get("Delivered-To", "")).strip().lower(),
                    "subject": " ".join(str(head.get("Subject", "")).split()),
                    "in_reply_to": str(head.get("In-Reply-To", "")).strip(),
                }
            )
    return found


def copies_per(headers: list[dict[str, str]], *, subject: str | None = None) -> Counter[str]:
    """Files per recipient (of those whose Subject contains `subject`, when given)."""
    return Counter(h["to"] for h in headers if subject is None or subject in h["subject"])
