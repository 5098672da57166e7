# SPDX-License-Identifier: Apache-2.0
"""Intake: the SMTP/LMTP front door (aiosmtpd), facing the local MTA.

Input is an SMTP or LMTP session; output is one committed `inbound_messages`
row per accepted message. RCPT answers from the address syntax plus the set
of known list names (550 5.1.1 for anything else); DATA is size-checked by
aiosmtpd (SIZE advertised, 552 beyond it), stored, and acknowledged only after
the commit. Intake makes no policy decision, holds no relay credentials and
imports no routing: what a message means is the processing stage's business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession

from listserv import replies
from listserv.addresses import parse_recipient
from listserv.intake.inbound import Arrival, InboundWriter

log = logging.getLogger("listserv.intake")

MAX_RECIPIENTS = 100


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
    ) -> None:
        self.writer = writer
        self.known_lists = known_lists
        self.domains = domains
        self.site_local_part = site_local_part
        self.lmtp = lmtp

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SMTPSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
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


class ListSMTP(SMTP):
    # Real mail breaks the 1,000-octet line rule; keep it rather than refuse it.
    line_length_limit = 64 * 1024


class ListLMTP(LMTP):
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
