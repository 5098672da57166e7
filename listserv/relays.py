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
from collections import deque
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


class CanonicalBytes(bytes):
    """A message already in SMTP's canonical form: CRLF line ends, ending in CRLF.

    Checking that costs three scans of the message; fan-out makes the shared copy
    canonical once and marks each spliced copy, so a copy is not scanned again.
    """

    __slots__ = ()


def canonical(message: bytes) -> bytes:
    """The message with CRLF line ends (the form SMTP carries), ending in CRLF."""
    if type(message) is CanonicalBytes:
        return message
    if b"\r" not in message:
        message = message.replace(b"\n", b"\r\n")
    else:
        crlf = message.count(b"\r\n")
        if crlf != message.count(b"\n") or crlf != message.count(b"\r"):
            message = _LINE_END.sub(b"\r\n", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message


def wire_format(message: bytes) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, ending in CRLF.CRLF."""
    message = canonical(message)
    if message.startswith(b"."):
        message = b"." + message
    return message.replace(b"\n.", b"\n..") + b".\r\n"


@dataclass(eq=False)
class _Transaction:
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    future: asyncio.Future[SendResult]
    results: SendResult = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # recipients whose RCPT was sent
    mail_reply: tuple[int, str] = (0, "")
    answered: bool = False  # the relay has said something about this transaction
    requeued: bool = False

    def reset(self) -> None:
        self.results.clear()
        self.accepted.clear()
        self.waiting = []
        self.answered = False

    def resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(self.results)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class _ProtocolError(Exception):
    """The relay said something that is not an SMTP reply."""


# What a pipelined reply answers.
_MAIL, _RCPT, _DATA, _END = range(4)


class _Link(asyncio.Protocol):
    #: Transactions written ahead of their replies with CHUNKING (bounded, so a relay
    #: that answers slowly never has more than this many messages in its buffers).
    WINDOW = 16

    """One SMTP connection, driven by the relay's replies as they arrive.

    Commands and awaited replies (`command()`) serve the greeting, EHLO, STARTTLS,
    AUTH and relays without PIPELINING. With PIPELINING, `pipeline()` runs a state
    machine from `data_received`: every reply pops what it answers from `expect`,
    and the next transaction's envelope is written with the current message, so the
    connection costs one read and one write per message and no coroutine switches.
    """

    def __init__(self, relay: SMTPRelay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.texts: list[bytes] = []
        self.replies: deque[tuple[int, str]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.expect: deque[tuple[int, _Transaction, int]] = deque()
        self.idle: asyncio.Future[None] | None = None
        self.extensions: dict[str, str] = {}
        self.error: Exception | None = None
        self.closing = False  # the relay said 421
        self.last_used = time.monotonic()
        self.progress = 0.0
        self.watchdog: asyncio.TimerHandle | None = None
        self.chunking = False
        self.in_flight = 0  # BDAT transactions written and not yet answered

    # transport callbacks ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.progress = asyncio.get_running_loop().time()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._broken(exc or ConnectionError("the relay closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.progress = asyncio.get_running_loop().time()
        if self.buffer:
            data = bytes(self.buffer) + data
            self.buffer.clear()
        lines = data.split(b"\n")
        tail = lines.pop()
        if tail:
            self.buffer += tail
        expect = self.expect
        try:
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                code = line[:3]
                if len(line) < 3 or not code.isdigit():
                    raise _ProtocolError(f"not an SMTP reply: {line[:80]!r}")
                if line[3:4] == b"-":
                    self.texts.append(line[4:])
                    continue
                if self.texts:
                    self.texts.append(line[4:])
                    text = b"\n".join(self.texts)
                    self.texts = []
                else:
                    text = line[4:]
                number = int(code)
                if expect:
                    kind, txn, index = expect[0]
                    if kind == _RCPT and number < 400 and txn.mail_reply[0] < 400:
                        # The common case, a recipient accepted, in a bulk batch 500 times.
                        expect.popleft()
                        txn.accepted.append(txn.waiting[index])
                        continue
                    if number == 421:
                        self.closing = True
                    self._answer(number, text)
                else:
                    if number == 421:
                        self.closing = True
                    self.replies.append((number, text.decode("utf-8", "replace")))
                    if self.waiter is not None and not self.waiter.done():
                        self.waiter.set_result(None)
        except _ProtocolError as exc:
            self._broken(exc)
            if self.transport is not None:
                self.transport.abort()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.watchdog = loop.call_later(max(self.relay.timeout / 4, 0.05), self._check)

    def _check(self) -> None:
        """No reply for `timeout` seconds while one is owed: give the connection up."""
        if self.transport is None or self.error is not None:
            return
        owed = bool(self.expect) or (self.waiter is not None and not self.waiter.done())
        now = asyncio.get_running_loop().time()
        if owed and now - self.progress > self.relay.timeout:
            self._broken(TimeoutError(f"no reply from the relay in {self.relay.timeout:.0f} s"))
            self.transport.abort()
            return
        self._arm()

    def _broken(self, exc: Exception) -> None:
        if self.error is not None:
            return
        self.error = exc
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.relay._give_back({txn for _, txn, _ in self.expect}, exc)
        self.expect.clear()
        if self.idle is not None and not self.idle.done():
            self.idle.set_exception(exc)

    # awaited commands ---------------------------------------------------------

    async def reply(self) -> tuple[int, str]:
        while not self.replies:
            if self.error is not None:
                raise self.error
            self.waiter = asyncio.get_running_loop().create_future()
            async with asyncio.timeout(self.relay.timeout):
                await self.waiter
        return self.replies.popleft()

    async def command(self, line: str | bytes) -> tuple[int, str]:
        self.write(line if isinstance(line, bytes) else line.encode("utf-8"), b"\r\n")
        return await self.reply()

    def write(self, *data: bytes) -> None:
        if self.error is not None:
            raise self.error
        assert self.transport is not None
        self.transport.write(b"".join(data))

    def has(self, keyword: str) -> bool:
        return keyword in self.extensions

    def usable(self) -> bool:
        return (
            self.error is None
            and not self.closing
            and self.transport is not None
            and not self.transport.is_closing()
            and time.monotonic() - self.last_used < self.relay.idle_timeout
        )

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.transport is not None:
            self.transport.close()

    # pipelined transactions ---------------------------------------------------

    async def pipeline(self, first: _Transaction) -> None:
        """Send `first` and whatever queues behind it; returns when nothing is in flight."""
        self.idle = asyncio.get_running_loop().create_future()
        self.chunking = self.has("CHUNKING")
        out = self._begin(first)
        # Without CHUNKING the next envelope waits for this one's 354.
        self._continue(out, more=self.chunking or not out)
        try:
            await self.idle
        finally:
            self.idle = None
            self.last_used = time.monotonic()

    def _begin(self, txn: _Transaction) -> bytes:
        """What to write for `txn`, with what its replies will answer queued in `expect`.

        With CHUNKING (RFC 3030) that is the whole transaction, message included
        (`BDAT n LAST`: no 354 to wait for, no dot-stuffing); otherwise the envelope
        and DATA, and the message follows the 354.
        """
        envelope = self.relay._envelope(self, txn)
        if not envelope:
            txn.resolve()
            return b""
        expect = self.expect
        expect.append((_MAIL, txn, 0))
        expect.extend((_RCPT, txn, i) for i in range(len(txn.waiting)))
        if self.chunking:
            self.in_flight += 1
            expect.append((_END, txn, 0))
            data = canonical(txn.message)
            return b"%sBDAT %d LAST\r\n%s" % (envelope, len(data), data)
        expect.append((_DATA, txn, 0))
        return envelope + b"DATA\r\n"

    def _continue(self, out: bytes, more: bool = True) -> None:
        """Add queued transactions to `out` (with CHUNKING, up to a window of them;
        otherwise the next envelope only) and write it; go idle when nothing is owed."""
        limit = (self.WINDOW if self.chunking else 1) if more else 0
        started = 0
        while not self.closing and started < limit and self.in_flight < self.WINDOW:
            following = self.relay._next()
            if following is None:
                break
            chunk = self._begin(following)
            if chunk:
                out += chunk
                started += 1
                if not self.chunking:
                    break
        if out:
            self.write(out)
        if not self.expect and self.idle is not None and not self.idle.done():
            self.idle.set_result(None)

    def _answer(self, code: int, raw: bytes) -> None:
        """Apply one reply; its text is decoded only when someone will read it."""
        kind, txn, index = self.expect.popleft()
        if kind == _RCPT:
            rcpt = txn.waiting[index]
            if txn.mail_reply[0] >= 400:
                txn.results[rcpt] = txn.mail_reply
            elif code >= 400:
                txn.results[rcpt] = (code, raw.decode("utf-8", "replace"))
            else:
                txn.accepted.append(rcpt)
        elif kind == _MAIL:
            txn.answered = True
            txn.mail_reply = (code, raw.decode("utf-8", "replace") if code >= 400 else "")
        elif kind == _DATA:
            if code == 354:
                self.expect.append((_END, txn, 0))
                self._continue(wire_format(txn.message) if txn.accepted else b".\r\n")
                return
            answer = (code, raw.decode("utf-8", "replace"))
            for rcpt in txn.accepted:
                txn.results[rcpt] = answer
            txn.accepted = []
            txn.resolve()
            if not self.expect:
                self._continue(b"")
        else:  # _END: the relay's answer to the message itself
            answer = (code, raw.decode("utf-8", "replace"))
            for rcpt in txn.accepted:
                txn.results[rcpt] = answer
            txn.resolve()
            if self.chunking:
                self.in_flight -= 1
                self._continue(b"")
            elif not self.expect:
                self._continue(b"")


class SMTPRelay:
    """Sends through an SMTP relay over a few reused, pipelined connections.

    `send()` queues a transaction; each of `connections` workers takes transactions
    from the queue and, when the relay offers PIPELINING, sends the next envelope
    together with the current message. STARTTLS and AUTH PLAIN/LOGIN are spoken when
    configured; SMTPUTF8 and BODY=8BITMIME are used when the message needs them. A
    transaction the relay never answered because the connection broke is tried once
    more on a fresh connection; otherwise a broken connection defers its recipients.
    After a failure to connect, transactions fail at once for `DOWN_FOR` seconds
    rather than each trying its own connection to a relay that is down.
    """

    DOWN_FOR = 1.0

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
        self._down: RelayUnavailable | None = None  # the last failure to connect
        self._down_until = 0.0

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

    # ------------------------------------------------------------------ workers

    async def _work(self) -> None:
        assert self._queue is not None
        link: _Link | None = None
        try:
            while True:
                txn = await self._queue.get()
                if txn.future.done():
                    continue
                if link is not None and not link.usable():
                    await self._quit(link)
                    link = None
                if link is None:
                    if self._down is not None and time.monotonic() < self._down_until:
                        txn.fail(self._down)  # no connection storm against a dead relay
                        continue
                    try:
                        link = await self._open()
                    except RelayUnavailable as exc:
                        self._down, self._down_until = exc, time.monotonic() + self.DOWN_FOR
                        txn.fail(exc)
                        continue
                    self._down = None
                try:
                    if link.has("PIPELINING"):
                        await link.pipeline(txn)
                    else:
                        await self._lockstep(link, txn)
                except (OSError, TimeoutError, _ProtocolError) as exc:
                    link.close()
                    link = None
                    if not txn.future.done():
                        self._give_back({txn}, exc)
                except BaseException:
                    txn.fail(RelayUnavailable("relay client stopped"))
                    raise
        finally:
            if link is not None:
                link.close()

    def _next(self) -> _Transaction | None:
        assert self._queue is not None
        while not self._queue.empty():
            txn = self._queue.get_nowait()
            if not txn.future.done():
                return txn
        return None

    def _give_back(self, txns: set[_Transaction], exc: BaseException) -> None:
        """A broken connection's transactions: unanswered ones are tried once more."""
        for txn in txns:
            if txn.future.done():
                continue
            if not txn.answered and not txn.requeued and self._queue is not None:
                txn.requeued = True
                txn.reset()
                self._queue.put_nowait(txn)
            else:
                txn.fail(RelayUnavailable(f"relay connection lost: {exc or type(exc).__name__}"))

    # -------------------------------------------------------------- connections

    async def _open(self) -> _Link:
        loop = asyncio.get_running_loop()
        link = _Link(self)
        try:
            async with asyncio.timeout(self.timeout):
                await loop.create_connection(lambda: link, self.host, self.port)
                code, text = await link.reply()
                if code != 220:
                    raise RelayUnavailable(f"relay greeted with {code} {text}")
                await self._ehlo(link)
                if self.starttls:
                    if not link.has("STARTTLS"):
                        raise RelayUnavailable("relay does not offer STARTTLS")
                    code, text = await link.command("STARTTLS")
                    if code != 220:
                        raise RelayUnavailable(f"STARTTLS refused: {code} {text}")
                    assert link.transport is not None
                    context = self.tls_context or ssl.create_default_context()
                    transport = await loop.start_tls(
                        link.transport, link, context, server_hostname=self.host
                    )
                    assert isinstance(transport, asyncio.Transport)
                    link.transport = transport
                    await self._ehlo(link)
                if self.username:
                    await self._login(link)
        except RelayUnavailable:
            link.close()
            raise
        except (OSError, TimeoutError, _ProtocolError, ssl.SSLError) as exc:
            link.close()
            raise RelayUnavailable(f"cannot reach relay {self.host}:{self.port}: {exc}") from exc
        return link

    async def _ehlo(self, link: _Link) -> None:
        code, text = await link.command(f"EHLO {self.helo_name}")
        if code != 250:
            code, text = await link.command(f"HELO {self.helo_name}")
            if code != 250:
                raise RelayUnavailable(f"relay refused HELO: {code} {text}")
            link.extensions = {}
            return
        extensions: dict[str, str] = {}
        for line in text.split("\n")[1:]:
            keyword, _, value = line.strip().partition(" ")
            extensions[keyword.upper()] = value
        link.extensions = extensions

    async def _login(self, link: _Link) -> None:
        mechanisms = link.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(
                b"\0" + self.username.encode() + b"\0" + self.password.encode()
            ).decode()
            code, text = await link.command(f"AUTH PLAIN {token}")
        elif "LOGIN" in mechanisms:
            code, text = await link.command("AUTH LOGIN")
            if code == 334:
                code, text = await link.command(base64.b64encode(self.username.encode()))
            if code == 334:
                code, text = await link.command(base64.b64encode(self.password.encode()))
        else:
            raise RelayUnavailable("relay offers no AUTH PLAIN or LOGIN")
        if code != 235:
            raise RelayUnavailable(f"relay refused our login: {code} {text}")

    # ------------------------------------------------------------ transactions

    def _envelope(self, link: _Link, txn: _Transaction) -> bytes:
        """MAIL, RCPT… and DATA for `txn`; recipients the relay cannot take are answered now."""
        params = ""
        sender_utf8 = not txn.sender.isascii()
        if sender_utf8 or not all(r.isascii() for r in txn.recipients):
            if link.has("SMTPUTF8"):
                params += " SMTPUTF8"
            else:
                refusal = (553, "5.6.7 the relay does not support SMTPUTF8")
                for rcpt in txn.recipients:
                    if sender_utf8 or not rcpt.isascii():
                        txn.results[rcpt] = refusal
        limit = link.extensions.get("SIZE", "")
        if limit.isdigit() and int(limit) and len(txn.message) > int(limit):
            for rcpt in txn.recipients:
                txn.results[rcpt] = (552, f"5.3.4 message larger than the relay's limit {limit}")
        if not txn.message.isascii() and link.has("8BITMIME"):
            params += " BODY=8BITMIME"
        results = txn.results
        txn.waiting = (
            [r for r in txn.recipients if r not in results] if results else list(txn.recipients)
        )
        if not txn.waiting:
            return b""
        rcpts = "".join(f"RCPT TO:<{rcpt}>\r\n" for rcpt in txn.waiting)
        return f"MAIL FROM:<{txn.sender}>{params}\r\n{rcpts}".encode()

    async def _lockstep(self, link: _Link, txn: _Transaction) -> None:
        """One command per round trip, for relays that do not offer PIPELINING."""
        envelope = self._envelope(link, txn)
        if not envelope:
            txn.resolve()
            return
        lines = envelope.split(b"\r\n")[:-1]
        mail = await link.command(lines[0])
        txn.answered = True
        if mail[0] >= 400:
            for rcpt in txn.waiting:
                txn.results[rcpt] = mail
            await self._reset(link)
            txn.resolve()
            return
        for rcpt, line in zip(txn.waiting, lines[1:], strict=True):
            answer = await link.command(line)
            if answer[0] >= 400:
                txn.results[rcpt] = answer
            else:
                txn.accepted.append(rcpt)
        if not txn.accepted:
            await self._reset(link)
            txn.resolve()
            return
        data = await link.command(b"DATA")
        if data[0] != 354:
            for rcpt in txn.accepted:
                txn.results[rcpt] = data
            await self._reset(link)
            txn.resolve()
            return
        link.write(wire_format(txn.message))
        final = await link.reply()
        for rcpt in txn.accepted:
            txn.results[rcpt] = final
        txn.resolve()
        link.last_used = time.monotonic()

    async def _reset(self, link: _Link) -> None:
        if not link.closing:
            await link.command(b"RSET")
        link.last_used = time.monotonic()

    async def _quit(self, link: _Link) -> None:
        with contextlib.suppress(Exception):
            if link.error is None and not link.closing:
                async with asyncio.timeout(2.0):
                    await link.command(b"QUIT")
        link.close()
