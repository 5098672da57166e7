# SPDX-License-Identifier: Apache-2.0
"""Relays: where delivery hands messages over — a Maildir or an SMTP relay.

Both speak one small protocol, `send(sender, recipients, message)`, returning the
relay's answer per recipient, so the delivery worker treats a local Maildir and
Postfix alike and tests can use either. `RelayUnavailable` means the relay never
answered for those recipients (connection refused, dropped, timed out): the
worker defers them.

The SMTP client is our own, on asyncio streams, because fan-out speed is bounded by
round trips and aiosmtplib sends one command per round trip. With RFC 2920
PIPELINING a transaction is one write (MAIL, every RCPT, DATA) and one read, and
the next transaction's envelope goes in the same write as this one's content, so a
connection spends one round trip per message. Several such connections stay open
and are reused across messages and jobs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("listserv.relays")


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


# ----------------------------------------------------------------------------- SMTP

_LINE_END = re.compile(rb"\r\n|\r|\n")


def wire_format(message: bytes) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, ending in CRLF.CRLF."""
    crlf = message.count(b"\r\n")
    if crlf != message.count(b"\n") or crlf != message.count(b"\r"):
        message = _LINE_END.sub(b"\r\n", message)
    if message.startswith(b"."):
        message = b"." + message
    message = message.replace(b"\n.", b"\n..")
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


@dataclass(eq=False)
class _Transaction:
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    future: asyncio.Future[SendResult]
    results: SendResult = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # recipients whose RCPT was sent
    replies: int = 0  # replies we expect for the envelope: MAIL + RCPTs + DATA
    answered: bool = False  # the relay has said something about this transaction

    def resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(self.results)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class _ProtocolError(Exception):
    """The relay said something that is not an SMTP reply."""


class _Connection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.extensions: dict[str, str] = {}
        self.last_used = time.monotonic()
        self.used = False
        self.closing = False  # the relay said 421

    def has(self, keyword: str) -> bool:
        return keyword in self.extensions

    async def reply(self) -> tuple[int, str]:
        """One (possibly multi-line) reply."""
        texts: list[str] = []
        while True:
            line = await self.reader.readline()
            if not line.endswith(b"\n"):
                raise ConnectionError("the relay closed the connection")
            code = line[:3]
            if len(line) < 4 or not code.isdigit():
                raise _ProtocolError(f"not an SMTP reply: {line[:80]!r}")
            texts.append(line[4:].rstrip(b"\r\n").decode("utf-8", "replace"))
            if line[3:4] != b"-":
                number = int(code)
                if number == 421:
                    self.closing = True
                return number, "\n".join(texts)

    async def command(self, line: str | bytes) -> tuple[int, str]:
        data = line if isinstance(line, bytes) else line.encode("utf-8")
        self.writer.write(data + b"\r\n")
        async with asyncio.timeout(self.timeout):
            return await self.reply()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class SMTPRelay:
    """Sends through an SMTP relay over a few reused, pipelined connections.

    `send()` queues a transaction; each of `connections` workers takes transactions
    from the queue and, when the relay offers PIPELINING, sends the next envelope
    together with the current message. STARTTLS and AUTH PLAIN/LOGIN are spoken when
    configured; SMTPUTF8 and BODY=8BITMIME are used when the message needs them.
    """

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
        helo_name: str | None = None,
        idle_timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.starttls = starttls
        self.username = username
        self.password = password
        self.connections = connections
        self.timeout = timeout
        self.helo_name = helo_name or socket.getfqdn()
        self.idle_timeout = idle_timeout
        self.tls_context = tls_context
        self._queue: asyncio.Queue[_Transaction] | None = None
        self._workers: list[asyncio.Task[None]] = []

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        loop = asyncio.get_running_loop()
        txn = _Transaction(sender, tuple(recipients), message, loop.create_future())
        if self._queue is None:
            self._queue = asyncio.Queue()
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(), name=f"smtp-relay-{i}")
                for i in range(self.connections)
            ]
        self._queue.put_nowait(txn)
        return await txn.future

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers = []
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait().fail(RelayUnavailable("relay client closed"))

    # -------------------------------------------------------------- connections

    async def _open(self) -> _Connection:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                conn = _Connection(reader, writer, self.timeout)
                code, text = await conn.reply()
                if code != 220:
                    conn.close()
                    raise RelayUnavailable(f"relay greeted with {code} {text}")
                await self._ehlo(conn)
                if self.starttls:
                    if not conn.has("STARTTLS"):
                        conn.close()
                        raise RelayUnavailable("relay does not offer STARTTLS")
                    code, text = await conn.command("STARTTLS")
                    if code != 220:
                        conn.close()
                        raise RelayUnavailable(f"STARTTLS refused: {code} {text}")
                    context = self.tls_context or ssl.create_default_context()
                    await writer.start_tls(context, server_hostname=self.host)
                    await self._ehlo(conn)
                if self.username:
                    await self._login(conn)
        except RelayUnavailable:
            raise
        except (OSError, TimeoutError, _ProtocolError, ssl.SSLError) as exc:
            raise RelayUnavailable(f"cannot reach relay {self.host}:{self.port}: {exc}") from exc
        return conn

    async def _ehlo(self, conn: _Connection) -> None:
        code, text = await conn.command(f"EHLO {self.helo_name}")
        if code != 250:
            code, text = await conn.command(f"HELO {self.helo_name}")
            if code != 250:
                conn.close()
                raise RelayUnavailable(f"relay refused HELO: {code} {text}")
            conn.extensions = {}
            return
        extensions: dict[str, str] = {}
        for line in text.split("\n")[1:]:
            keyword, _, value = line.strip().partition(" ")
            extensions[keyword.upper()] = value
        conn.extensions = extensions

    async def _login(self, conn: _Connection) -> None:
        mechanisms = conn.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(
                b"\0" + self.username.encode() + b"\0" + self.password.encode()
            ).decode()
            code, text = await conn.command(f"AUTH PLAIN {token}")
        elif "LOGIN" in mechanisms:
            code, text = await conn.command("AUTH LOGIN")
            if code == 334:
                code, text = await conn.command(base64.b64encode(self.username.encode()))
            if code == 334:
                code, text = await conn.command(base64.b64encode(self.password.encode()))
        else:
            conn.close()
            raise RelayUnavailable("relay offers no AUTH PLAIN or LOGIN")
        if code != 235:
            conn.close()
            raise RelayUnavailable(f"relay refused our login: {code} {text}")

    # -------------------------------------------------------------- transactions

    async def _work(self) -> None:
        assert self._queue is not None
        conn: _Connection | None = None
        try:
            while True:
                txn = await self._queue.get()
                if txn.future.done():
                    continue
                if conn is not None and (
                    conn.closing
                    or conn.reader.at_eof()
                    or time.monotonic() - conn.last_used > self.idle_timeout
                ):
                    await self._quit(conn)
                    conn = None
                try:
                    conn = await self._deliver(conn, txn)
                except BaseException:
                    txn.fail(RelayUnavailable("relay client stopped"))
                    raise
        finally:
            if conn is not None:
                conn.close()

    async def _deliver(self, conn: _Connection | None, txn: _Transaction) -> _Connection | None:
        """Send `txn` (and whatever queues behind it); the connection to keep, if any."""
        for attempt in (1, 2):
            reused = conn is not None
            if conn is None:
                try:
                    conn = await self._open()
                except RelayUnavailable as exc:
                    txn.fail(exc)
                    return None
            try:
                if conn.has("PIPELINING"):
                    await self._pipelined(conn, txn)
                else:
                    await self._lockstep(conn, txn)
            except (OSError, TimeoutError, _ProtocolError, asyncio.IncompleteReadError) as exc:
                conn.close()
                conn = None
                # A reused connection the relay had quietly dropped: try once more afresh.
                if attempt == 1 and reused and not txn.answered and not txn.future.done():
                    txn.results.clear()
                    txn.accepted.clear()
                    continue
                txn.fail(RelayUnavailable(f"relay connection lost: {exc or type(exc).__name__}"))
                return None
            conn.last_used = time.monotonic()
            conn.used = True
            return None if conn.closing else conn
        return conn

    def _envelope(self, conn: _Connection, txn: _Transaction) -> bytes:
        """MAIL, RCPT… and DATA for `txn`; recipients the relay cannot take are answered now."""
        params = ""
        sender_utf8 = not txn.sender.isascii()
        if sender_utf8 or not all(r.isascii() for r in txn.recipients):
            if conn.has("SMTPUTF8"):
                params += " SMTPUTF8"
            else:
                refusal = (553, "5.6.7 the relay does not support SMTPUTF8")
                for rcpt in txn.recipients:
                    if sender_utf8 or not rcpt.isascii():
                        txn.results[rcpt] = refusal
        limit = conn.extensions.get("SIZE", "")
        if limit.isdigit() and int(limit) and len(txn.message) > int(limit):
            for rcpt in txn.recipients:
                txn.results[rcpt] = (552, f"5.3.4 message larger than the relay's limit {limit}")
        if not txn.message.isascii() and conn.has("8BITMIME"):
            params += " BODY=8BITMIME"
        txn.waiting = [r for r in txn.recipients if r not in txn.results]
        if not txn.waiting:
            txn.replies = 0
            return b""
        txn.replies = len(txn.waiting) + 2
        parts = [f"MAIL FROM:<{txn.sender}>{params}\r\n"]
        parts.extend(f"RCPT TO:<{rcpt}>\r\n" for rcpt in txn.waiting)
        parts.append("DATA\r\n")
        return "".join(parts).encode("utf-8")

    def _next(self) -> _Transaction | None:
        assert self._queue is not None
        while not self._queue.empty():
            txn = self._queue.get_nowait()
            if not txn.future.done():
                return txn
        return None

    async def _pipelined(self, conn: _Connection, first: _Transaction) -> None:
        """RFC 2920: envelope in one write; the next envelope rides with this content."""
        txn: _Transaction | None = first
        conn.writer.write(self._envelope(conn, first))
        try:
            while txn is not None:
                go = False
                if txn.replies:
                    async with asyncio.timeout(self.timeout):
                        mail = await conn.reply()
                        txn.answered = True
                        rcpts = [await conn.reply() for _ in txn.waiting]
                        data = await conn.reply()
                    go = self._envelope_answers(txn, mail, rcpts, data)
                following = None if conn.closing else self._next()
                if go:
                    payload = wire_format(txn.message) if txn.accepted else b".\r\n"
                    if following is not None:
                        payload += self._envelope(conn, following)
                    conn.writer.write(payload)
                    async with asyncio.timeout(self.timeout):
                        final = await conn.reply()
                    for rcpt in txn.accepted:
                        txn.results[rcpt] = final
                elif following is not None:
                    conn.writer.write(self._envelope(conn, following))
                txn.resolve()
                txn = following
        except BaseException:
            if txn is not None and txn is not first and not txn.future.done():
                # Its envelope was written on a connection now lost: give it back.
                txn.results.clear()
                txn.accepted.clear()
                assert self._queue is not None
                self._queue.put_nowait(txn)
            raise

    def _envelope_answers(
        self,
        txn: _Transaction,
        mail: tuple[int, str],
        rcpts: list[tuple[int, str]],
        data: tuple[int, str],
    ) -> bool:
        """Record MAIL/RCPT answers; True when the relay wants the content (354)."""
        for rcpt, answer in zip(txn.waiting, rcpts, strict=True):
            if mail[0] >= 400:
                txn.results[rcpt] = mail
            elif answer[0] >= 400:
                txn.results[rcpt] = answer
            else:
                txn.accepted.append(rcpt)
        if data[0] != 354:
            for rcpt in txn.accepted:
                txn.results[rcpt] = data
            txn.accepted = []
            return False
        return True

    async def _lockstep(self, conn: _Connection, txn: _Transaction) -> None:
        """One command per round trip, for relays that do not offer PIPELINING."""
        envelope = self._envelope(conn, txn)
        if not envelope:
            txn.resolve()
            return
        lines = envelope.split(b"\r\n")
        mail = await conn.command(lines[0])
        txn.answered = True
        if mail[0] >= 400:
            for rcpt in txn.waiting:
                txn.results[rcpt] = mail
            await self._reset(conn)
            txn.resolve()
            return
        for rcpt, line in zip(txn.waiting, lines[1:], strict=False):
            answer = await conn.command(line)
            if answer[0] >= 400:
                txn.results[rcpt] = answer
            else:
                txn.accepted.append(rcpt)
        if not txn.accepted:
            await self._reset(conn)
            txn.resolve()
            return
        data = await conn.command(b"DATA")
        if data[0] != 354:
            for rcpt in txn.accepted:
                txn.results[rcpt] = data
            await self._reset(conn)
            txn.resolve()
            return
        conn.writer.write(wire_format(txn.message))
        async with asyncio.timeout(self.timeout):
            final = await conn.reply()
        for rcpt in txn.accepted:
            txn.results[rcpt] = final
        txn.resolve()

    async def _reset(self, conn: _Connection) -> None:
        if not conn.closing:
            await conn.command(b"RSET")

    async def _quit(self, conn: _Connection) -> None:
        with contextlib.suppress(Exception):
            if not conn.closing and not conn.reader.at_eof():
                await asyncio.wait_for(conn.command(b"QUIT"), 2.0)
        conn.close()
