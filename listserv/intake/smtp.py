# SPDX-License-Identifier: Apache-2.0
"""Intake: the SMTP/LMTP front door (aiosmtpd), facing the local MTA.

Input is an SMTP or LMTP session; output is one committed `inbound_messages`
row per accepted message. RCPT answers from the address syntax plus the set
of known list names (550 5.1.1 for anything else); DATA is size-checked by
aiosmtpd (SIZE advertised, 552 beyond it), stored, and acknowledged only after
the commit. Intake makes no policy decision, holds no relay credentials and
imports no routing: what a message means is the processing stage's business.

Its own limits (`Doors`) guard the port itself: concurrent connections per
client address (421 and the connection closed), messages per client per
minute (451 at MAIL) and recipients per transaction (452). Each answer is
temporary, so a legitimate MTA retries; each trip is logged and audited
once (`listserv.limits`). The 552 for an oversized message names the limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession

from listserv import replies
from listserv.addresses import parse_recipient
from listserv.intake.inbound import Arrival, InboundWriter
from listserv.limits import Gauge, Trips, Window, client_key
from listserv.models import Channel

log = logging.getLogger("listserv.intake")

MAX_RECIPIENTS = 100


@dataclass
class Doors:
    """The port's own limits, per client address (IPv6 by its /64)."""

    connections: Gauge = field(default_factory=lambda: Gauge(0))
    messages: Window = field(default_factory=lambda: Window(0, 60.0))
    recipients: int = MAX_RECIPIENTS
    trips: Trips = field(default_factory=lambda: Trips(None))
    _recipient_trips: Window = field(default_factory=lambda: Window(0, 60.0))

    def let_in(self, client: str) -> bool:
        """Count a new connection; False (the trip reported once) past the limit."""
        if self.connections.enter(client):
            return True
        if self.connections.first_refusal(client):
            self.trips.trip(
                "smtp-connections",
                client,
                Channel.EMAIL,
                f"{self.connections.limit} connections open at once",
            )
        return False

    def too_many_recipients(self, client: str) -> None:
        """Report a transaction past the recipient limit (once a minute per client)."""
        if self._recipient_trips.first_refusal(client):
            self.trips.trip(
                "smtp-recipients",
                client,
                Channel.EMAIL,
                f"more than {self.recipients} recipients in one transaction",
            )

    def message_allowed(self, client: str) -> bool:
        if not self.messages.hit(client):
            return True
        if self.messages.first_refusal(client):
            self.trips.trip(
                "smtp-messages",
                client,
                Channel.EMAIL,
                f"more than {self.messages.count} messages a minute",
            )
        return False


def peer_key(peer: object) -> str:
    host = peer[0] if isinstance(peer, tuple) and peer else str(peer or "")
    return client_key(str(host))


def too_big(limit: int) -> str:
    """The 552 that names the limit, so the sender knows what would fit."""
    megabytes = f" ({limit / 1_048_576:.1f} MB)" if limit >= 1_048_576 else ""
    return str(
        replies.TOO_BIG._replace(
            text=f"Message too big: this list server accepts at most {limit} bytes{megabytes}"
        )
    )


class KnownLists:
    """The list names intake accepts, refreshed from the database every few seconds."""

    def __init__(self, load: Callable[[], set[str]], ttl: float = 5.0) -> None:
        self._load = load
        self._ttl = ttl
        self._names: set[str] = set()
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def names(self) -> set[str]:
        if time.monotonic() - self._loaded_at > self._ttl:
            async with self._lock:
                if time.monotonic() - self._loaded_at > self._ttl:
                    self._names = await asyncio.to_thread(self._load)
                    self._loaded_at = time.monotonic()
        return self._names

    def invalidate(self) -> None:
        self._loaded_at = 0.0


class IntakeHandler:
    """aiosmtpd handler: validate recipients, store, acknowledge."""

    def __init__(
        self,
        writer: InboundWriter,
        known_lists: KnownLists,
        domains: tuple[str, ...],
        site_local_part: str,
        lmtp: bool = False,
        doors: Doors | None = None,
    ) -> None:
        self.writer = writer
        self.known_lists = known_lists
        self.domains = domains
        self.site_local_part = site_local_part
        self.lmtp = lmtp
        self.doors = doors or Doors()

    async def handle_MAIL(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not self.doors.message_allowed(peer_key(session.peer)):
            return str(replies.TOO_MANY_MESSAGES)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return str(replies.OK)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.doors.recipients:
            self.doors.too_many_recipients(peer_key(session.peer))
            return str(replies.TOO_MANY_RECIPIENTS)
        recipient = parse_recipient(address, self.domains, self.site_local_part)
        if recipient is None:
            return str(replies.NO_SUCH_USER)
        if recipient.list_name and recipient.list_name not in await self.known_lists.names():
            return str(replies.NO_SUCH_USER)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return str(replies.RECIPIENT_OK)

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        arrival = Arrival(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=bytes(raw),
            peer=str(peer),
        )
        try:
            row_id = await self.writer.store(arrival)
        except Exception:
            status = str(replies.STORAGE_FAILED)
        else:
            log.info(
                "accepted message %d from <%s> for %s (%d bytes)",
                row_id,
                arrival.mail_from,
                ", ".join(arrival.rcpt_tos),
                len(arrival.raw),
            )
            status = f"250 2.0.0 Message accepted as {row_id}"
        if self.lmtp:
            # LMTP answers once per accepted recipient (RFC 2033 §4.2).
            return "\r\n".join([status] * len(envelope.rcpt_tos))
        return status


def _connection_made(protocol: SMTP, doors: Doors) -> bool:
    """After aiosmtpd's own: False when the client is over its connection limit.

    The greeting task has not run yet, so cancelling it and answering 421
    means the client never gets a 220 (RFC 5321 §3.1 allows 421 instead).
    """
    client = peer_key(protocol.session.peer if protocol.session else "")
    if doors.let_in(client):
        return True
    if protocol._handler_coroutine is not None:
        protocol._handler_coroutine.cancel()
    if isinstance(protocol.transport, asyncio.WriteTransport):
        protocol.transport.write(f"{replies.TOO_MANY_CONNECTIONS}\r\n".encode())
        protocol.transport.close()
    return False


def _size_reply(status: str, limit: int) -> str:
    """aiosmtpd's two 552s ("Too much mail data", "exceeds fixed maximum") name no limit."""
    if status.startswith("552 Error") and limit:
        return too_big(limit)
    return status


class ListSMTP(SMTP):
    # Real mail breaks the 1,000-octet line rule; keep it rather than refuse it.
    line_length_limit = 64 * 1024
    _counted: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        starttls = self.transport is not None
        super().connection_made(transport)
        doors: Doors = self.event_handler.doors
        if not starttls and _connection_made(self, doors):
            self._counted = peer_key(self.session.peer if self.session else "")

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted is not None:
            self.event_handler.doors.connections.leave(self._counted)
            self._counted = None
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = _size_reply(status, self.data_size_limit or 0)
        await super().push(status)


class ListLMTP(LMTP, ListSMTP):
    line_length_limit = 64 * 1024


def server_factory(handler: IntakeHandler, max_message_size: int, hostname: str) -> Any:
    """A protocol factory for loop.create_server: SMTP or LMTP per the handler."""
    protocol_class = ListLMTP if handler.lmtp else ListSMTP

    def factory() -> SMTP:
        return protocol_class(
            handler,
            data_size_limit=max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="listserv",
        )

    return factory
