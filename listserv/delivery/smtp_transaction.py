# SPDX-License-Identifier: Apache-2.0
"""One SMTP transaction in the relay client: an envelope and a message, the relay's
answer per recipient as it comes, and the envelope commands that start it.

Recipients the relay cannot take (an SMTPUTF8 address when it does not offer
SMTPUTF8, a message over its SIZE) are answered before anything is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from listserv.delivery.relays import SendResult


class ProtocolError(Exception):
    """The relay said something that is not an SMTP reply."""


@dataclass(eq=False)
class Transaction:
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


def envelope(extensions: Mapping[str, str], txn: Transaction) -> bytes:
    """MAIL and RCPT… for `txn`; recipients the relay cannot take are answered now.

    `extensions` is what the relay's EHLO offered. Empty when no recipient is left
    to send to.
    """
    params = ""
    sender_utf8 = not txn.sender.isascii()
    if sender_utf8 or not all(r.isascii() for r in txn.recipients):
        if "SMTPUTF8" in extensions:
            params += " SMTPUTF8"
        else:
            refusal = (553, "5.6.7 the relay does not support SMTPUTF8")
            for rcpt in txn.recipients:
                if sender_utf8 or not rcpt.isascii():
                    txn.results[rcpt] = refusal
    limit = extensions.get("SIZE", "")
    if limit.isdigit() and int(limit) and len(txn.message) > int(limit):
        for rcpt in txn.recipients:
            txn.results[rcpt] = (552, f"5.3.4 message larger than the relay's limit {limit}")
    if not txn.message.isascii() and "8BITMIME" in extensions:
        params += " BODY=8BITMIME"
    results = txn.results
    txn.waiting = (
        [r for r in txn.recipients if r not in results] if results else list(txn.recipients)
    )
    if not txn.waiting:
        return b""
    rcpts = "".join(f"RCPT TO:<{rcpt}>\r\n" for rcpt in txn.waiting)
    return f"MAIL FROM:<{txn.sender}>{params}\r\n{rcpts}".encode()
