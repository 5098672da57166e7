# SPDX-License-Identifier: Apache-2.0
"""The relay client against SMTP servers on loopback sockets: what each recipient is
answered (250, 4xx, 5xx, a refused sender or message), a relay that is down, one
that drops the connection or stops answering, PIPELINING and CHUNKING, connection
reuse, 421, STARTTLS and AUTH, and what closing the client does to pending sends.

Most tests talk to aiosmtpd (`ScriptedRelay`); failures aiosmtpd cannot stage (a
dropped connection mid-DATA, silence after MAIL) use a small hand-driven server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from listserv.delivery import CanonicalBytes, RelayUnavailable, SMTPRelay, canonical, wire_format
from listserv.delivery.relays import DirectorySync
from listserv.delivery.smtp_transaction import Transaction, envelope
from tests.relay_helpers import ScriptedRelay

SENDER = "sm-cop-bounces@lists.example.gov"


@pytest.fixture
async def relay() -> AsyncIterator[ScriptedRelay]:
    scripted = ScriptedRelay()
    yield scripted
    await scripted.stop()


def client_for(relay: ScriptedRelay | int, **options: Any) -> SMTPRelay:
    """A client of the relay (or of a port) with one connection unless told otherwise."""
    port = relay if isinstance(relay, int) else relay.port
    settings: dict[str, Any] = {"connections": 1, "helo_name": "lists.example.gov"}
    settings.update(options)
    return SMTPRelay("127.0.0.1", port, **settings)


# ------------------------------------------------------------------ wire format


def test_wire_format_uses_crlf_and_doubles_leading_dots() -> None:
    assert wire_format(b".a\n..b\nc") == b"..a\r\n...b\r\nc\r\n.\r\n"
    assert wire_format(b"x\r\n.\r\n") == b"x\r\n..\r\n.\r\n"


def test_canonical_form_is_crlf_throughout_and_marked_copies_are_left_alone() -> None:
    assert canonical(b"a\nb") == b"a\r\nb\r\n"
    assert canonical(b"a\r\nb\rc\n") == b"a\r\nb\r\nc\r\n"
    assert canonical(b"a\r\n") == b"a\r\n"
    marked = CanonicalBytes(b"trusted\n")  # marked canonical: not scanned again
    assert canonical(marked) is marked


async def test_envelope_answers_what_the_relay_cannot_take_before_sending() -> None:
    loop = asyncio.get_running_loop()
    big = Transaction(SENDER, ("a@x.gov", "b@x.gov"), b"x" * 200, loop.create_future())
    assert envelope({"SIZE": "100", "PIPELINING": ""}, big) == b""
    assert big.results == {
        "a@x.gov": (552, "5.3.4 message larger than the relay's limit 100"),
        "b@x.gov": (552, "5.3.4 message larger than the relay's limit 100"),
    }
    utf8 = Transaction(SENDER, ("josé@x.gov", "jane@x.gov"), b"hi", loop.create_future())
    assert envelope({}, utf8) == (f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<jane@x.gov>\r\n").encode()
    assert utf8.results == {"josé@x.gov": (553, "5.6.7 the relay does not support SMTPUTF8")}
    assert utf8.waiting == ["jane@x.gov"]
    offered = Transaction(SENDER, ("josé@x.gov",), "é".encode(), loop.create_future())
    assert envelope({"SMTPUTF8": "", "8BITMIME": ""}, offered).startswith(
        f"MAIL FROM:<{SENDER}> SMTPUTF8 BODY=8BITMIME\r\n".encode()
    )
    assert offered.results == {}


# ------------------------------------------------------------------ answers per recipient

MODES = pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelining"])


@dataclass
class RefusingRelay(ScriptedRelay):
    """A ScriptedRelay that can also refuse a sender (at MAIL) or every message (at DATA)."""

    refused_sender: str = ""
    mail_answer: str = "451 4.3.0 sender check failed"
    data_answer: str | None = None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == self.refused_sender:
            return self.mail_answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_answer is not None:
            return self.data_answer
        return await super().handle_DATA(server, session, envelope)


@MODES
async def test_accepted_message_arrives_whole_for_every_recipient(pipelining: bool) -> None:
    relay = ScriptedRelay(pipelining=pipelining)
    await relay.start()
    client = client_for(relay)
    message = b"Subject: minutes\n\n.a line that starts with a dot\n..and two\nend"
    try:
        result = await client.send(SENDER, ["jane@agency.gov", "bob@army.mil"], message)
    finally:
        await client.close()
        await relay.stop()
    assert result == {
        "jane@agency.gov": (250, "2.0.0 queued as 1"),
        "bob@army.mil": (250, "2.0.0 queued as 1"),
    }
    (transaction,) = relay.transactions
    assert transaction.mail_from == SENDER
    assert transaction.rcpt_tos == ["jane@agency.gov", "bob@army.mil"]
    # Dot-stuffed on the wire, whole again at the relay, with CRLF line ends.
    assert transaction.data == canonical(message)


@MODES
async def test_each_recipient_gets_its_own_4xx_or_5xx_answer(pipelining: bool) -> None:
    answers = {
        "full@agency.gov": "452 4.2.2 mailbox full",
        "gone@agency.gov": "550 5.1.1 no such user",
    }
    relay = ScriptedRelay(pipelining=pipelining, rcpt_answer=answers.get)
    await relay.start()
    client = client_for(relay)
    try:
        result = await client.send(
            SENDER,
            ["full@agency.gov", "jane@agency.gov", "gone@agency.gov"],
            b"Subject: x\r\n\r\nx\r\n",
        )
    finally:
        await client.close()
        await relay.stop()
    assert result == {
        "full@agency.gov": (452, "4.2.2 mailbox full"),
        "jane@agency.gov": (250, "2.0.0 queued as 1"),
        "gone@agency.gov": (550, "5.1.1 no such user"),
    }
    assert [t.rcpt_tos for t in relay.transactions] == [["jane@agency.gov"]]


# With PIPELINING, a transaction whose every RCPT was refused ends at the refused
# DATA without RSET, so the relay still holds its MAIL and answers the next
# transaction's MAIL on that connection with 503 (aiosmtpd and Postfix alike).
NEXT_AFTER_ALL_REFUSED = pytest.mark.parametrize(
    "pipelining",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.xfail(
                strict=True, reason="no RSET after a pipelined transaction with no recipient"
            ),
        ),
    ],
    ids=["lockstep", "pipelining"],
)


@NEXT_AFTER_ALL_REFUSED
async def test_no_recipient_accepted_sends_no_message_and_keeps_the_connection(
    pipelining: bool,
) -> None:
    relay = ScriptedRelay(
        pipelining=pipelining,
        rcpt_answer=lambda a: "550 5.1.1 no such user" if a.startswith("gone") else None,
    )
    await relay.start()
    client = client_for(relay)
    try:
        refused = await client.send(
            SENDER, ["gone1@x.gov", "gone2@x.gov"], b"Subject: x\r\n\r\nx\r\n"
        )
        accepted = await client.send(SENDER, ["jane@x.gov"], b"Subject: y\r\n\r\ny\r\n")
    finally:
        await client.close()
        await relay.stop()
    assert refused == {
        "gone1@x.gov": (550, "5.1.1 no such user"),
        "gone2@x.gov": (550, "5.1.1 no such user"),
    }
    assert accepted == {"jane@x.gov": (250, "2.0.0 queued as 1")}
    assert [t.rcpt_tos for t in relay.transactions] == [["jane@x.gov"]]
    assert relay.connections == 1


@MODES
async def test_a_refused_sender_is_every_recipients_answer(pipelining: bool) -> None:
    relay = RefusingRelay(pipelining=pipelining, refused_sender="blocked@lists.example.gov")
    await relay.start()
    client = client_for(relay)
    try:
        refused = await client.send(
            "blocked@lists.example.gov", ["jane@x.gov", "bob@x.gov"], b"Subject: x\r\n\r\nx\r\n"
        )
        accepted = await client.send(SENDER, ["jane@x.gov"], b"Subject: y\r\n\r\ny\r\n")
    finally:
        await client.close()
        await relay.stop()
    assert refused == {
        "jane@x.gov": (451, "4.3.0 sender check failed"),
        "bob@x.gov": (451, "4.3.0 sender check failed"),
    }
    assert accepted == {"jane@x.gov": (250, "2.0.0 queued as 1")}
    assert relay.connections == 1


@MODES
async def test_a_refused_message_is_the_accepted_recipients_answer(pipelining: bool) -> None:
    relay = RefusingRelay(
        pipelining=pipelining,
        data_answer="554 5.7.1 content rejected",
        rcpt_answer=lambda a: "550 5.1.1 no such user" if a == "gone@x.gov" else None,
    )
    await relay.start()
    client = client_for(relay)
    try:
        result = await client.send(
            SENDER, ["jane@x.gov", "gone@x.gov", "bob@x.gov"], b"Subject: x\r\n\r\nx\r\n"
        )
    finally:
        await client.close()
        await relay.stop()
    assert result == {
        "jane@x.gov": (554, "5.7.1 content rejected"),
        "gone@x.gov": (550, "5.1.1 no such user"),
        "bob@x.gov": (554, "5.7.1 content rejected"),
    }


# ------------------------------------------------------------------ relay down, dropped, silent


async def test_a_relay_that_is_down_is_unavailable_until_it_comes_back() -> None:
    relay = ScriptedRelay()  # not listening yet: connections are refused
    client = client_for(relay)
    client.DOWN_FOR = 0.5
    message = b"Subject: x\r\n\r\nx\r\n"
    try:
        with pytest.raises(RelayUnavailable, match=f"cannot reach relay 127.0.0.1:{relay.port}"):
            await client.send(SENDER, ["jane@x.gov"], message)
        await relay.start()
        # Within DOWN_FOR of the failure the client does not try again: no connection.
        with pytest.raises(RelayUnavailable, match="cannot reach relay"):
            await client.send(SENDER, ["jane@x.gov"], message)
        assert relay.connections == 0
        await asyncio.sleep(0.6)
        result = await client.send(SENDER, ["jane@x.gov"], message)
    finally:
        await client.close()
        await relay.stop()
    assert result == {"jane@x.gov": (250, "2.0.0 queued as 1")}
    assert relay.connections == 1


@dataclass
class FlakyRelay:
    """A hand-driven SMTP server; each connection follows the next step of `plan`
    (the last step repeats): "ok", "drop-at-mail" (close on MAIL, unanswered),
    "silent-at-mail" (never answer MAIL) or "drop-mid-data" (close once message
    bytes arrive, before the relay's answer to them)."""

    plan: list[str]
    pipelining: bool = False
    connections: int = 0
    messages: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _connection(self) -> _FlakyConnection:
        step = self.plan[min(self.connections, len(self.plan) - 1)]
        self.connections += 1
        return _FlakyConnection(self, step)


class _FlakyConnection(asyncio.Protocol):
    def __init__(self, owner: FlakyRelay, step: str) -> None:
        self.owner = owner
        self.step = step
        self.buffer = b""
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 flaky ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        out: list[bytes] = []
        while True:
            if self.in_data:
                if self.step == "drop-mid-data":
                    self.transport.close()
                    return
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                self.owner.messages.append(self.buffer[: end + 2])
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                out.append(b"250 2.0.0 ok\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                break
            self.buffer = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                pipelining = b"250-PIPELINING\r\n" if self.owner.pipelining else b""
                out.append(b"250-flaky\r\n" + pipelining + b"250 8BITMIME\r\n")
            elif verb == b"MAIL" and self.step == "drop-at-mail":
                self.transport.close()
                return
            elif verb == b"MAIL" and self.step == "silent-at-mail":
                self.buffer = b""
                return
            elif verb == b"DATA":
                self.in_data = True
                out.append(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
            else:
                out.append(b"250 ok\r\n")
        if out:
            self.transport.write(b"".join(out))


async def _send_through(flaky: FlakyRelay, sends: int = 1, **options: Any) -> list[object]:
    """Results (or the RelayUnavailable raised) of `sends` messages, one after another."""
    await flaky.start()
    client = client_for(flaky.port, **options)
    results: list[object] = []
    try:
        for i in range(sends):
            try:
                results.append(
                    await client.send(SENDER, [f"r{i}@x.gov"], b"Subject: x\r\n\r\nx\r\n")
                )
            except RelayUnavailable as exc:
                results.append(exc)
    finally:
        await client.close()
        await flaky.stop()
    return results


@MODES
async def test_a_connection_dropped_mid_data_defers_and_is_not_resent_blindly(
    pipelining: bool,
) -> None:
    flaky = FlakyRelay(["drop-mid-data", "ok"], pipelining=pipelining)
    first, second = await _send_through(flaky, sends=2)
    # The relay answered MAIL and may hold the message: it is not tried again at
    # once; the worker defers it and a later attempt sends it.
    assert isinstance(first, RelayUnavailable)
    assert "relay connection lost" in str(first)
    assert second == {"r1@x.gov": (250, "2.0.0 ok")}
    assert flaky.connections == 2
    assert flaky.messages == [b"Subject: x\r\n\r\nx\r\n"]


# With PIPELINING a transaction the dropped connection never answered is handed back
# twice (by the connection as it breaks, and by the client's worker as the pipeline
# fails); the second hand-back finds it already requeued and fails it.
RETRY_ONCE = pytest.mark.parametrize(
    "pipelining",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.xfail(
                strict=True, reason="pipelined transactions are not retried on a fresh connection"
            ),
        ),
    ],
    ids=["lockstep", "pipelining"],
)


@RETRY_ONCE
async def test_an_unanswered_transaction_is_tried_once_more_on_a_fresh_connection(
    pipelining: bool,
) -> None:
    flaky = FlakyRelay(["drop-at-mail", "ok"], pipelining=pipelining)
    (result,) = await _send_through(flaky)
    assert result == {"r0@x.gov": (250, "2.0.0 ok")}
    assert flaky.connections == 2
    assert len(flaky.messages) == 1


@RETRY_ONCE
async def test_a_relay_that_keeps_dropping_is_unavailable_after_one_more_try(
    pipelining: bool,
) -> None:
    flaky = FlakyRelay(["drop-at-mail"], pipelining=pipelining)
    (result,) = await _send_through(flaky)
    assert isinstance(result, RelayUnavailable)
    assert flaky.connections == 2


@MODES
async def test_a_relay_that_stops_answering_times_out(pipelining: bool) -> None:
    flaky = FlakyRelay(["silent-at-mail"], pipelining=pipelining)
    started = time.monotonic()
    (result,) = await _send_through(flaky, timeout=0.3)
    assert isinstance(result, RelayUnavailable)
    assert "relay connection lost" in str(result)
    assert time.monotonic() - started < 5
    assert flaky.messages == []


# ------------------------------------------------------------------ connections


async def test_connections_are_reused_until_idle_too_long(relay: ScriptedRelay) -> None:
    await relay.start()
    client = client_for(relay, idle_timeout=1.0)
    message = b"Subject: x\r\n\r\nx\r\n"
    try:
        for i in range(3):
            await client.send(SENDER, [f"r{i}@x.gov"], message)
        assert relay.connections == 1
        await asyncio.sleep(1.3)
        later = await client.send(SENDER, ["later@x.gov"], message)
    finally:
        await client.close()
    assert later == {"later@x.gov": (250, "2.0.0 queued as 4")}
    assert relay.connections == 2


@MODES
async def test_a_421_ends_the_connection_after_its_transaction(pipelining: bool) -> None:
    relay = ScriptedRelay(
        pipelining=pipelining,
        rcpt_answer=lambda a: "421 4.3.2 shutting down" if a == "last@x.gov" else None,
    )
    await relay.start()
    client = client_for(relay)
    message = b"Subject: x\r\n\r\nx\r\n"
    try:
        first = await client.send(SENDER, ["jane@x.gov", "last@x.gov"], message)
        second = await client.send(SENDER, ["bob@x.gov"], message)
    finally:
        await client.close()
        await relay.stop()
    assert first == {
        "jane@x.gov": (250, "2.0.0 queued as 1"),
        "last@x.gov": (421, "4.3.2 shutting down"),
    }
    assert second == {"bob@x.gov": (250, "2.0.0 queued as 2")}
    assert relay.connections == 2  # the 421 connection was not used again


async def test_concurrent_sends_share_a_few_pipelined_connections() -> None:
    relay = ScriptedRelay(pipelining=True)
    await relay.start()
    client = client_for(relay, connections=2)
    try:
        results = await asyncio.gather(
            *(client.send(SENDER, [f"r{i}@x.gov"], b"Subject: x\r\n\r\nx\r\n") for i in range(20))
        )
    finally:
        await client.close()
        await relay.stop()
    assert all(r[f"r{i}@x.gov"][0] == 250 for i, r in enumerate(results))
    assert relay.copies() == {f"r{i}@x.gov": 1 for i in range(20)}
    assert relay.connections == 2


@dataclass
class SlowRelay(ScriptedRelay):
    """A ScriptedRelay that says when a message has arrived, then takes its time."""

    data_started: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_started.set()
        return await super().handle_DATA(server, session, envelope)


async def test_closing_the_client_fails_what_it_still_holds() -> None:
    relay = SlowRelay(data_delay=2.0)
    await relay.start()
    client = client_for(relay)
    message = b"Subject: x\r\n\r\nx\r\n"
    try:
        in_flight = asyncio.ensure_future(client.send(SENDER, ["a@x.gov"], message))
        queued = asyncio.ensure_future(client.send(SENDER, ["b@x.gov"], message))
        await asyncio.wait_for(relay.data_started.wait(), timeout=10)
        await client.close()
        # Bounded: a send the client forgot would otherwise wait forever.
        results = await asyncio.wait_for(
            asyncio.gather(in_flight, queued, return_exceptions=True), timeout=10
        )
    finally:
        await relay.stop()
    assert [type(r) for r in results] == [RelayUnavailable, RelayUnavailable]
    assert str(results[0]) == "relay client stopped"
    assert str(results[1]) == "relay client closed"


# ------------------------------------------------------------------ pipelining


class _ChunkRecorder(asyncio.Protocol):
    """A minimal pipelining sink (optionally with CHUNKING) that records how the
    client's bytes arrive, what messages it took, and refuses `refuse` recipients."""

    def __init__(
        self,
        chunks: list[bytes],
        *,
        chunking: bool = False,
        refuse: dict[bytes, bytes] | None = None,
        messages: list[tuple[list[bytes], bytes]] | None = None,
    ) -> None:
        self.chunks = chunks
        self.chunking = chunking
        self.refuse = refuse or {}
        self.messages = messages if messages is not None else []
        self.buffer = b""
        self.in_data = False
        self.chunk_left = -1
        self.rcpts: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        assert isinstance(transport, asyncio.Transport)
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffer += data
        out = []
        while True:
            if self.chunk_left >= 0:
                if len(self.buffer) < self.chunk_left:
                    break
                body, self.buffer = self.buffer[: self.chunk_left], self.buffer[self.chunk_left :]
                self.chunk_left = -1
                if self.rcpts:
                    self.messages.append((self.rcpts, body))
                    out.append(b"250 2.0.0 ok\r\n")
                else:
                    out.append(b"554 5.5.1 no valid recipients\r\n")
                self.rcpts = []
                continue
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                self.messages.append((self.rcpts, self.buffer[2 : end + 2]))
                self.rcpts = []
                self.buffer = self.buffer[end + 5 :]
                self.in_data = False
                out.append(b"250 2.0.0 ok\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                break
            self.buffer = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                extra = b"250-CHUNKING\r\n" if self.chunking else b""
                out.append(b"250-sink\r\n250-PIPELINING\r\n" + extra + b"250 8BITMIME\r\n")
            elif verb == b"RCPT":
                address = line[9:-1]
                refusal = self.refuse.get(address)
                if refusal:
                    out.append(refusal + b"\r\n")
                else:
                    self.rcpts.append(address)
                    out.append(b"250 ok\r\n")
            elif verb == b"BDAT":
                self.chunk_left = int(line.split()[1])
            elif verb == b"DATA":
                self.in_data = True
                self.buffer = b"\r\n" + self.buffer  # the message may be empty
                out.append(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
            else:
                out.append(b"250 ok\r\n")
        assert isinstance(self.transport, asyncio.Transport)
        if out:
            self.transport.write(b"".join(out))


async def test_client_sends_many_messages_per_write_with_chunking() -> None:
    chunks: list[bytes] = []
    messages: list[tuple[list[bytes], bytes]] = []
    refuse = {b"r3@x.gov": b"550 5.1.1 no such user", b"r4@x.gov": b"452 4.2.2 full"}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _ChunkRecorder(chunks, chunking=True, refuse=refuse, messages=messages),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    relay = SMTPRelay("127.0.0.1", port, connections=1, helo_name="lists.example.gov")
    body = b"Subject: dots\n\n.leading dot\nlast line"  # LF ends: sent as CRLF
    try:
        results = await asyncio.gather(
            *(relay.send("a@lists.example.gov", [f"r{i}@x.gov"], body) for i in range(30)),
            relay.send("a@lists.example.gov", ["r5@x.gov", "r3@x.gov"], body),
        )
    finally:
        await relay.close()
        server.close()
    assert results[3]["r3@x.gov"] == (550, "5.1.1 no such user")
    assert results[4]["r4@x.gov"] == (452, "4.2.2 full")
    assert results[30] == {"r5@x.gov": (250, "2.0.0 ok"), "r3@x.gov": (550, "5.1.1 no such user")}
    assert all(
        r[f"r{i}@x.gov"] == (250, "2.0.0 ok") for i, r in enumerate(results[:30]) if i not in (3, 4)
    )
    # Whole transactions, message included, go several to a write; no dot-stuffing.
    assert max(c.count(b"BDAT ") for c in chunks) >= 3
    assert len(messages) == 29
    assert all(m == b"Subject: dots\r\n\r\n.leading dot\r\nlast line\r\n" for _, m in messages)


async def test_client_pipelines_the_next_envelope_with_the_message() -> None:
    chunks: list[bytes] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _ChunkRecorder(chunks), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relay = SMTPRelay("127.0.0.1", port, connections=1, helo_name="lists.example.gov")
    try:
        results = await asyncio.gather(
            *(
                relay.send("a@lists.example.gov", [f"r{i}@x.gov"], b"Subject: x\r\n\r\nhi\r\n")
                for i in range(20)
            )
        )
    finally:
        await relay.close()
        server.close()
    assert all(r[f"r{i}@x.gov"][0] == 250 for i, r in enumerate(results))
    # Envelope in one write, and a message's content shares a write with the next envelope.
    assert any(
        c.startswith(b"MAIL FROM:") and c.endswith(b"DATA\r\n") and b"RCPT" in c for c in chunks
    )
    assert sum(b"\r\n.\r\nMAIL FROM:" in c for c in chunks) >= 10


async def test_reused_connection_dropped_by_the_relay_is_reopened(
    relay: ScriptedRelay,
) -> None:
    await relay.start()
    client = SMTPRelay("127.0.0.1", relay.port, connections=1, helo_name="lists.example.gov")
    try:
        first = await client.send(
            "a@lists.example.gov", ["x@agency.gov"], b"Subject: 1\r\n\r\n1\r\n"
        )
        await relay.stop()  # drops the idle connection
        await relay.start()
        second = await client.send(
            "a@lists.example.gov", ["y@agency.gov"], b"Subject: 2\r\n\r\n2\r\n"
        )
    finally:
        await client.close()
    assert first["x@agency.gov"][0] == 250 and second["y@agency.gov"][0] == 250
    assert relay.copies() == {"x@agency.gov": 1, "y@agency.gov": 1}


# ------------------------------------------------------------------ STARTTLS, AUTH


@pytest.fixture(scope="module")
def relay_certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for 127.0.0.1 (key and certificate in one PEM file)."""
    if shutil.which("openssl") is None:
        pytest.skip("making a test certificate needs the openssl command")
    pem = tmp_path_factory.mktemp("tls") / "relay.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=relay.test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(pem),
            "-out",
            str(pem),
        ],
        check=True,
        capture_output=True,
    )
    return pem


async def test_relay_login_goes_over_starttls(relay_certificate: Path) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(relay_certificate)
    relay = ScriptedRelay(tls_context=server_tls, login=("lists", "s3cret"))
    await relay.start()
    trust = ssl.create_default_context(cafile=str(relay_certificate))
    good = SMTPRelay(
        "127.0.0.1",
        relay.port,
        starttls=True,
        username="lists",
        password="s3cret",
        tls_context=trust,
    )
    bad = SMTPRelay(
        "127.0.0.1",
        relay.port,
        starttls=True,
        username="lists",
        password="wrong",
        tls_context=trust,
    )
    plain = SMTPRelay("127.0.0.1", relay.port, username="lists", password="s3cret")
    message = b"Subject: over TLS\r\n\r\nhello\r\n"
    try:
        result = await good.send("a@lists.example.gov", ["jane@agency.gov"], message)
        with pytest.raises(RelayUnavailable, match="refused our login"):
            await bad.send("a@lists.example.gov", ["bob@agency.gov"], message)
        with pytest.raises(RelayUnavailable):  # AUTH is only offered after STARTTLS
            await plain.send("a@lists.example.gov", ["bob@agency.gov"], message)
    finally:
        for client in (good, bad, plain):
            await client.close()
        await relay.stop()
    assert result == {"jane@agency.gov": (250, "2.0.0 queued as 1")}
    assert relay.authenticated == ["PLAIN"]
    assert relay.copies() == {"jane@agency.gov": 1}


def _server_tls(certificate: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate)
    return context


async def test_starttls_configured_but_not_offered_is_unavailable(relay: ScriptedRelay) -> None:
    await relay.start()
    client = client_for(relay, starttls=True)
    try:
        with pytest.raises(RelayUnavailable, match="does not offer STARTTLS"):
            await client.send(SENDER, ["jane@x.gov"], b"Subject: x\r\n\r\nx\r\n")
    finally:
        await client.close()
    assert relay.transactions == []


async def test_an_untrusted_relay_certificate_is_unavailable(relay_certificate: Path) -> None:
    relay = ScriptedRelay(tls_context=_server_tls(relay_certificate))
    await relay.start()
    # The system's trust store does not know the self-signed certificate.
    client = client_for(relay, starttls=True, tls_context=ssl.create_default_context())
    try:
        with pytest.raises(RelayUnavailable, match="cannot reach relay"):
            await client.send(SENDER, ["jane@x.gov"], b"Subject: x\r\n\r\nx\r\n")
    finally:
        await client.close()
        await relay.stop()
    assert relay.transactions == []


async def test_pipelining_goes_on_over_starttls(relay_certificate: Path) -> None:
    relay = ScriptedRelay(pipelining=True, tls_context=_server_tls(relay_certificate))
    await relay.start()
    trust = ssl.create_default_context(cafile=str(relay_certificate))
    client = client_for(relay, starttls=True, tls_context=trust)
    try:
        results = await asyncio.gather(
            *(client.send(SENDER, [f"r{i}@x.gov"], b"Subject: x\r\n\r\nx\r\n") for i in range(5))
        )
    finally:
        await client.close()
        await relay.stop()
    assert all(r[f"r{i}@x.gov"][0] == 250 for i, r in enumerate(results))
    assert relay.copies() == {f"r{i}@x.gov": 1 for i in range(5)}
    assert relay.connections == 1


def test_a_directory_sync_begun_before_a_link_does_not_cover_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of two threads, the one that asks while the other's fsync is running syncs again."""
    synced = DirectorySync(tmp_path)
    real_fsync = os.fsync
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            started.set()
            release.wait(5)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    first = threading.Thread(target=synced.sync)
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=synced.sync)  # asks while the first fsync runs
    second.start()
    time.sleep(0.05)
    release.set()
    first.join(5)
    second.join(5)
    assert len(calls) == 2


def test_directory_syncs_asked_together_share_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = DirectorySync(tmp_path)
    real_fsync = os.fsync
    gate = threading.Event()
    calls: list[int] = []

    def gated_fsync(fd: int) -> None:
        calls.append(fd)
        gate.wait(5)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", gated_fsync)
    threads = [threading.Thread(target=synced.sync) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # one is in its fsync, the other seven have asked
    gate.set()
    for thread in threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in threads)
    assert len(calls) == 2  # the first, then one for all who asked during it
