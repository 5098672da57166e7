# SPDX-License-Identifier: Apache-2.0
"""One connection to the SMTP relay, driven by the relay's replies as they arrive.

With RFC 2920 PIPELINING a transaction is one write (MAIL, every RCPT, DATA) and
one read, and the next transaction's envelope goes in the same write as this one's
content; with RFC 3030 CHUNKING whole transactions (`BDAT n LAST`) go several to a
write. Either way the connection spends about one round trip per message.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

from listserv.delivery.smtp_transaction import ProtocolError, Transaction, envelope
from listserv.delivery.wire import canonical, wire_format

# What a pipelined reply answers.
_MAIL, _RCPT, _DATA, _END = range(4)


class TransactionSource(Protocol):
    """What a connection needs of the relay client that owns it."""

    @property
    def timeout(self) -> float: ...

    @property
    def idle_timeout(self) -> float: ...

    def next_transaction(self) -> Transaction | None:
        """The next queued transaction, if any (sent behind the current one)."""

    def give_back(self, txns: set[Transaction], exc: BaseException) -> None:
        """Transactions a broken connection leaves unfinished."""


class Connection(asyncio.Protocol):
    """One SMTP connection, driven by the relay's replies as they arrive.

    Commands and awaited replies (`command()`) serve the greeting, EHLO, STARTTLS,
    AUTH and relays without PIPELINING. With PIPELINING, `pipeline()` runs a state
    machine from `data_received`: every reply pops what it answers from `expect`,
    and the next transaction's envelope is written with the current message, so the
    connection costs one read and one write per message and no coroutine switches.
    """

    #: Transactions written ahead of their replies with CHUNKING (bounded, so a relay
    #: that answers slowly never has more than this many messages in its buffers).
    WINDOW = 16

    def __init__(self, relay: TransactionSource) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.texts: list[bytes] = []
        self.replies: deque[tuple[int, str]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.expect: deque[tuple[int, Transaction, int]] = deque()
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
                    raise ProtocolError(f"not an SMTP reply: {line[:80]!r}")
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
        except ProtocolError as exc:
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
        self.relay.give_back({txn for _, txn, _ in self.expect}, exc)
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

    async def pipeline(self, first: Transaction) -> None:
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

    def _begin(self, txn: Transaction) -> bytes:
        """What to write for `txn`, with what its replies will answer queued in `expect`.

        With CHUNKING (RFC 3030) that is the whole transaction, message included
        (`BDAT n LAST`: no 354 to wait for, no dot-stuffing); otherwise the envelope
        and DATA, and the message follows the 354.
        """
        commands = envelope(self.extensions, txn)
        if not commands:
            txn.resolve()
            return b""
        expect = self.expect
        expect.append((_MAIL, txn, 0))
        expect.extend((_RCPT, txn, i) for i in range(len(txn.waiting)))
        if self.chunking:
            self.in_flight += 1
            expect.append((_END, txn, 0))
            data = canonical(txn.message)
            return b"%sBDAT %d LAST\r\n%s" % (commands, len(data), data)
        expect.append((_DATA, txn, 0))
        return commands + b"DATA\r\n"

    def _continue(self, out: bytes, more: bool = True) -> None:
        """Add queued transactions to `out` (with CHUNKING, up to a window of them;
        otherwise the next envelope only) and write it; go idle when nothing is owed."""
        limit = (self.WINDOW if self.chunking else 1) if more else 0
        started = 0
        while not self.closing and started < limit and self.in_flight < self.WINDOW:
            following = self.relay.next_transaction()
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
