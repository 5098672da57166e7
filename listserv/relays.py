# SPDX-License-Identifier: Apache-2.0
"""Relays: where delivery hands messages over — a Maildir or an SMTP relay.

Both speak one small protocol, `send(sender, recipients, message)`, returning
the relay's answer per recipient, so the delivery worker treats a local
Maildir and Postfix alike and tests can use either.
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

import aiosmtplib


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


class SMTPRelay:
    """Sends through an SMTP relay (aiosmtplib), reusing a few open connections."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        username: str = "",
        password: str = "",
        connections: int = 4,
        timeout: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.starttls = starttls
        self.username = username
        self.password = password
        self.timeout = timeout
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(connections)

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            start_tls=self.starttls,
            use_tls=False,
        )
        try:
            await client.connect()
            if self.username:
                await client.login(self.username, self.password)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise RelayUnavailable(f"cannot reach relay {self.host}:{self.port}: {exc}") from exc
        return client

    async def _checkout(self) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        return await self._connect()

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        async with self._slots:
            client = await self._checkout()
            try:
                results = await self._transaction(client, sender, recipients, message)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, OSError) as e:
                client.close()
                raise RelayUnavailable(str(e)) from e
            except BaseException:
                client.close()
                raise
            if client.is_connected:
                self._idle.put_nowait(client)
            return results

    async def _transaction(
        self, client: aiosmtplib.SMTP, sender: str, recipients: Sequence[str], message: bytes
    ) -> SendResult:
        results: SendResult = {}
        utf8 = not _is_ascii(sender) or not all(_is_ascii(r) for r in recipients)
        options = ["SMTPUTF8"] if utf8 and client.supports_extension("smtputf8") else []
        if client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        try:
            await client.mail(sender, options=options)
        except aiosmtplib.SMTPResponseException as exc:
            return {r: (exc.code, exc.message) for r in recipients}
        accepted: list[str] = []
        for rcpt in recipients:
            try:
                await client.rcpt(rcpt)
            except aiosmtplib.SMTPResponseException as exc:
                results[rcpt] = (exc.code, exc.message)
            else:
                accepted.append(rcpt)
        if not accepted:
            await client.rset()
            return results
        try:
            response = await client.data(message)
        except aiosmtplib.SMTPResponseException as exc:
            for rcpt in accepted:
                results[rcpt] = (exc.code, exc.message)
            if exc.code < 500 and exc.code >= 400:
                await _quietly_reset(client)
            return results
        for rcpt in accepted:
            results[rcpt] = (response.code, response.message)
        return results

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


async def _quietly_reset(client: aiosmtplib.SMTP) -> None:
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def _is_ascii(text: str) -> bool:
    return text.isascii()
