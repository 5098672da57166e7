# SPDX-License-Identifier: Apache-2.0
"""Relays: where delivery hands messages over — a Maildir or an SMTP relay.

Both speak one small protocol, `send(sender, recipients, message, keys)`,
returning the relay's answer per recipient, so the delivery worker treats a local
Maildir and Postfix alike and tests can use either. `keys` names each recipient's
delivery after the outbox row it settles; a relay that can tell a replay by it
(the Maildir) delivers each key once, however often a crash makes us send it. `RelayUnavailable` means the relay never
answered for those recipients (connection refused, dropped, timed out): the
worker defers them. The SMTP relay client is `smtp_relay.SMTPRelay`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class RelayUnavailable(Exception):
    """The relay could not be reached: every recipient is deferred."""


#: Per recipient: (SMTP code, text); 250 means accepted.
SendResult = dict[str, tuple[int, str]]


class Relay(Protocol):
    async def send(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        keys: Sequence[str] = (),
    ) -> SendResult: ...

    async def close(self) -> None: ...


class MaildirRelay:
    """Writes one file per envelope recipient into <maildir>/new, as a local MTA does.

    Each file starts with `Return-Path: <sender>` and `Delivered-To: <rcpt>`. It is
    written to tmp/ and fsynced, then linked into new/ under a name made from its
    delivery key (the outbox row), and only if no file of that name is there: a
    copy sent again after a crash (written, not yet recorded as sent) finds itself
    already delivered and writes nothing twice. A reader that moved the first copy
    on to cur/ in between would see the second; the window is the seconds between
    the crash and the restart. Without keys, names are unique as usual.
    """

    _counter = itertools.count()

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")
        self._new_synced = DirectorySync(path / "new")

    def _name(self, key: str) -> str:
        if key:
            return key.replace("/", "_").replace(":", "_")
        return f"{time.time():.6f}.P{os.getpid()}Q{next(self._counter)}.{self._host}"

    def _write(
        self, sender: str, recipients: Sequence[str], message: bytes, keys: Sequence[str]
    ) -> SendResult:
        body = message.replace(b"\r\n", b"\n")
        results: SendResult = {}
        new = self.path / "new"
        for index, rcpt in enumerate(recipients):
            name = self._name(keys[index] if index < len(keys) else "")
            if (new / name).exists():
                results[rcpt] = (250, "2.0.0 already in maildir")
                continue
            head = f"Return-Path: <{sender}>\nDelivered-To: {rcpt}\n".encode(
                "utf-8", "surrogateescape"
            )
            tmp = self.path / "tmp" / name
            try:
                with open(tmp, "wb") as handle:
                    handle.write(head + body)
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(tmp, new / name)
                except FileExistsError:
                    results[rcpt] = (250, "2.0.0 already in maildir")
                else:
                    results[rcpt] = (250, "2.0.0 delivered to maildir")
                finally:
                    os.unlink(tmp)
            except OSError as exc:  # a full disk defers this copy, not the ones written
                results[rcpt] = (451, f"4.3.0 cannot write to the maildir: {exc.strerror}")
        self._new_synced.sync()
        return results

    async def send(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        keys: Sequence[str] = (),
    ) -> SendResult:
        return await asyncio.to_thread(self._write, sender, recipients, message, keys)

    async def close(self) -> None:
        return None


class DirectorySync:
    """fsync of a directory, shared by the threads that need one at the same time.

    Several copies are written at once, each in a thread, and each must find its
    new name on disk before the outbox says sent. One fsync that starts after a
    name was linked covers that name; so a thread whose link an fsync already
    begun after it covers waits for that one instead of starting its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # guards the two counters
        self._syncing = threading.Lock()  # one fsync at a time
        self._asked = 0  # syncs asked for, numbered in order
        self._covered = 0  # every ask up to this number is on disk

    def sync(self) -> None:
        with self._lock:
            self._asked += 1
            ticket = self._asked
        with self._syncing:
            if self._covered >= ticket:  # an fsync that began after our link covered us
                return
            with self._lock:
                upto = self._asked  # every link made before this fsync starts
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            self._covered = upto
