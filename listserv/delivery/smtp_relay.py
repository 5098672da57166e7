# SPDX-License-Identifier: Apache-2.0
"""The SMTP relay client: how delivery hands copies to Postfix (or any SMTP relay).

The client is our own, on asyncio streams, because fan-out speed is bounded by
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
import socket
import ssl
import time
from collections.abc import Sequence

from listserv.delivery.relays import RelayUnavailable, SendResult
from listserv.delivery.smtp_connection import Connection
from listserv.delivery.smtp_transaction import ProtocolError, Transaction, envelope
from listserv.delivery.wire import wire_format


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
        self._queue: asyncio.Queue[Transaction] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._down: RelayUnavailable | None = None  # the last failure to connect
        self._down_until = 0.0

    async def send(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        keys: Sequence[str] = (),
    ) -> SendResult:
        """One transaction; `keys` are not used, since SMTP has no way to say "once"
        (a transaction in flight at a crash may go twice)."""
        loop = asyncio.get_running_loop()
        txn = Transaction(sender, tuple(recipients), message, loop.create_future())
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
        link: Connection | None = None
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
                except (OSError, TimeoutError, ProtocolError) as exc:
                    link.close()
                    link = None
                    if not txn.future.done():
                        self.give_back({txn}, exc)
                except BaseException:
                    txn.fail(RelayUnavailable("relay client stopped"))
                    raise
        finally:
            if link is not None:
                link.close()

    def next_transaction(self) -> Transaction | None:
        """The next queued transaction still waiting (a connection sends it behind its own)."""
        assert self._queue is not None
        while not self._queue.empty():
            txn = self._queue.get_nowait()
            if not txn.future.done():
                return txn
        return None

    def give_back(self, txns: set[Transaction], exc: BaseException) -> None:
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

    async def _open(self) -> Connection:
        loop = asyncio.get_running_loop()
        link = Connection(self)
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
        except (OSError, TimeoutError, ProtocolError, ssl.SSLError) as exc:
            link.close()
            raise RelayUnavailable(f"cannot reach relay {self.host}:{self.port}: {exc}") from exc
        return link

    async def _ehlo(self, link: Connection) -> None:
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

    async def _login(self, link: Connection) -> None:
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

    async def _lockstep(self, link: Connection, txn: Transaction) -> None:
        """One command per round trip, for relays that do not offer PIPELINING."""
        commands = envelope(link.extensions, txn)
        if not commands:
            txn.resolve()
            return
        lines = commands.split(b"\r\n")[:-1]
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

    async def _reset(self, link: Connection) -> None:
        if not link.closing:
            await link.command(b"RSET")
        link.last_used = time.monotonic()

    async def _quit(self, link: Connection) -> None:
        with contextlib.suppress(Exception):
            if link.error is None and not link.closing:
                async with asyncio.timeout(2.0):
                    await link.command(b"QUIT")
        link.close()
