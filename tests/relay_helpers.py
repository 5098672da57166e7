# SPDX-License-Identifier: Apache-2.0
"""A scripted SMTP relay for delivery tests, and helpers to queue posts.

`ScriptedRelay` is aiosmtpd on a loopback port. The test decides what it answers
to each RCPT (accept, 4xx, 5xx), whether it listens at all (stopped: connections
are refused), whether it offers PIPELINING and SMTPUTF8, and how slowly it
takes DATA. It records every accepted transaction.
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from sqlalchemy import insert
from sqlalchemy.orm import Session as DBSession
from sqlalchemy.orm import sessionmaker

from listserv import outbox, roster
from listserv.config import Settings
from listserv.decorate import ListIdentity, decorate_post
from listserv.lists import get_list
from listserv.models import Member, utcnow
from listserv.outbox import RecipientSpec
from listserv.tokens import new_nonce, unsubscribe_token
from tests.conftest import TEST_SECRET, make_message, shipped_config

LIST = "sm-cop"
DOMAIN = "lists.example.gov"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Transaction:
    mail_from: str
    mail_options: list[str]
    rcpt_tos: list[str]
    data: bytes


class _RelaySMTP(SMTP):
    line_length_limit = 64 * 1024


@dataclass
class ScriptedRelay:
    """An aiosmtpd relay whose answers the test scripts; `transactions` is what it took."""

    pipelining: bool = False
    smtputf8: bool = True
    data_delay: float = 0.0
    port: int = field(default_factory=free_port)
    rcpt_answer: Callable[[str], str | None] = lambda address: None
    transactions: list[Transaction] = field(default_factory=list)
    connections: int = 0
    tls_context: ssl.SSLContext | None = None  # offer STARTTLS, and require it
    login: tuple[str, str] | None = None  # require AUTH with this user and password
    authenticated: list[str] = field(default_factory=list)
    _server: asyncio.AbstractServer | None = None
    _protocols: list[SMTP] = field(default_factory=list)

    # aiosmtpd handler hooks ----------------------------------------------------

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self.rcpt_answer(address)
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        content = envelope.original_content or b""
        self.transactions.append(
            Transaction(
                str(envelope.mail_from),
                list(envelope.mail_options),
                list(envelope.rcpt_tos),
                bytes(content),
            )
        )
        return f"250 2.0.0 queued as {len(self.transactions)}"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            self.login is not None
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == self.login
        )
        if ok:
            self.authenticated.append(mechanism)
        return AuthResult(success=ok, handled=False)

    # control ---------------------------------------------------------------------

    def _protocol(self) -> SMTP:
        self.connections += 1
        proto = _RelaySMTP(
            self,
            enable_SMTPUTF8=self.smtputf8,
            decode_data=False,
            hostname="relay.test",
            ident="scripted relay",
            tls_context=self.tls_context,
            require_starttls=self.tls_context is not None,
            auth_required=self.login is not None,
            auth_require_tls=self.tls_context is not None,
            authenticator=self._authenticate if self.login else None,
        )
        self._protocols.append(proto)
        return proto

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        """Stop listening and drop every open connection: the relay refuses service."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for proto in self._protocols:
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.close()
        self._protocols.clear()

    def copies(self) -> Counter[str]:
        """Copies accepted per recipient address."""
        return Counter(r for t in self.transactions for r in t.rcpt_tos)

    def messages_to(self, address: str) -> list[Transaction]:
        return [t for t in self.transactions if address in t.rcpt_tos]


def smtp_delivery(relay: ScriptedRelay, **extra: Any) -> dict[str, Any]:
    """`[delivery]` overrides that send to the scripted relay, retrying fast."""
    values: dict[str, Any] = {
        "transport": "smtp",
        "relay_host": "127.0.0.1",
        "relay_port": relay.port,
        "retry_initial_seconds": 1,
        "lease_seconds": 10,
    }
    values.update(extra)
    return values


def add_members(
    factory: sessionmaker[DBSession], addresses: list[str], list_name: str = LIST
) -> list[int]:
    """Members inserted in one statement (the roster's history is not under test here)."""
    now = utcnow()
    with factory() as session, session.begin():
        mlist = get_list(session, list_name)
        assert mlist is not None
        rows = [
            {
                "list_id": mlist.id,
                "address": address,
                "address_key": roster.address_key(address),
                "unsubscribe_nonce": new_nonce(),
                "joined_at": now,
            }
            for address in addresses
        ]
        result = session.execute(
            insert(Member.__table__).returning(Member.__table__.c.id, sort_by_parameter_order=True),
            rows,
        )
        return [row_id for (row_id,) in result]


def shared_copy(subject: str = "Monthly meeting", body: str = "See you on Thursday.\n") -> bytes:
    """A post decorated as fan-out does it (footer, list headers, munged From)."""
    original = make_message(subject=subject, body=body).as_bytes(policy=email.policy.SMTP)
    identity = ListIdentity(
        name=LIST,
        display_name="SM-COP",
        domain=DOMAIN,
        subject_prefix="[SM-COP]",
        dmarc_mitigation="munge",
        original_sender_header="reply-to",
        archive_url="http://127.0.0.1:8080/lists/sm-cop",
    )
    return decorate_post(
        original,
        identity,
        "List communications are subject to release under FOIA.",
        "<p>List communications are subject to release under FOIA.</p>",
    )


def enqueue_post(
    factory: sessionmaker[DBSession],
    settings: Settings,
    *,
    personalized: bool = True,
    raw: bytes | None = None,
    retry_for: timedelta | None = None,
    batch_size: int = outbox.BULK_BATCH,
    post_id: int | None = None,
) -> int:
    """A post job for every receiving member, built as fan-out builds it; the job id."""
    secret = settings.site.secret.get()
    now = utcnow()
    with factory() as session, session.begin():
        mlist = get_list(session, LIST)
        assert mlist is not None
        job = outbox.enqueue(
            session,
            mail_from=mlist.address("-bounces"),
            recipients=[],
            raw=raw if raw is not None else shared_copy(),
            retry_for=retry_for or timedelta(hours=settings.delivery.retry_for_hours),
            kind="post",
            list_id=mlist.id,
            post_id=post_id,
            personalized=personalized,
            verp=personalized,
            now=now,
        )
        for page in roster.iter_receiving_members(session, mlist.id, batch=2000):
            specs = [
                RecipientSpec(
                    address,
                    member_id,
                    unsubscribe_token(secret, member_id, LIST, nonce) if personalized else "",
                )
                for member_id, address, nonce in page
            ]
            outbox.add_recipients(session, job, specs, now, batch_size=batch_size)
        return job.id


def toml_text(data: dict[str, Any]) -> str:
    """Just enough TOML for a configuration file: tables, arrays of tables, scalars."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines: list[str] = []
    for name, table in data.items():
        if isinstance(table, list):
            for item in table:
                lines.append(f"[[{name}]]")
                lines.extend(f"{k} = {value(v)}" for k, v in item.items())
        else:
            lines.append(f"[{name}]")
            lines.extend(f"{k} = {value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def write_config(tmp_path: Path, db_url: str, delivery: dict[str, Any]) -> Path:
    data = shipped_config()
    var = tmp_path / "var"
    data["site"].update(secret=TEST_SECRET, var_dir=str(var))
    data["smtp"]["port"] = 0
    data["database"]["url"] = db_url
    data["web"]["port"] = 0
    data["delivery"].update(delivery, maildir=str(var / "mail"))
    path = tmp_path / "listserv.toml"
    path.write_text(toml_text(data), encoding="utf-8")
    return path
