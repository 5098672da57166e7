# SPDX-License-Identifier: Apache-2.0
"""Relays: where delivery hands messages over — a Maildir or an SMTP relay.

Both speak one small protocol, `send(sender, recipients, message)`, returning the
relay's answer per recipient, so the delivery worker treats a local Maildir and
Postfix alike and tests can use either. `RelayUnavailable` means the relay never
answered for those recipients (connection refused, dropped, timed out): the
worker defers them. The SMTP relay client is `smtp_relay.SMTPRelay`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class RelayUnavailable(Exception):
    """The relay could not be reached: every recipient is deferred."""


#: Per recipient: (SMTP code, text); 250 means accepted.
SendResult = dict[str, tuple[int, str]]


class Relay(Protocol):
    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult: ...

    async def close(self) -> None: ...


class MaildirRelay:
    """Writes one file per envelope recipient into <maildir>/new, as a local MTA does.

    Each file starts with `Return-Path: <sender>` and `Delivered-To: <rcpt>`.
    Files are written to tmp/, fsynced and renamed into new/, the Maildir
    protocol that makes a half-written message impossible to see.
    """

    _counter = itertools.count()

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")

    def _write(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        body = message.replace(b"\r\n", b"\n")
        results: SendResult = {}
        for rcpt in recipients:
            name = f"{time.time():.6f}.P{os.getpid()}Q{next(self._counter)}.{self._host}"
            head = f"Return-Path: <{sender}>\nDelivered-To: {rcpt}\n".encode(
                "utf-8", "surrogateescape"
            )
            tmp = self.path / "tmp" / name
            with open(tmp, "wb") as handle:
                handle.write(head + body)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(tmp, self.path / "new" / name)
            results[rcpt] = (250, "2.0.0 delivered to maildir")
        return results

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        return await asyncio.to_thread(self._write, sender, recipients, message)

    async def close(self) -> None:
        return None
