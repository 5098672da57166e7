# SPDX-License-Identifier: Apache-2.0
"""Helpers for the administration-by-email tests: a service with owners and
moderators, a Maildir read message by message, replies to notices, and a search
of every table for a string that must not be stored (an owner's password)."""

from __future__ import annotations

import email.utils
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from listserv import roster
from listserv.app import Service, build_service
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import AuditEvent, Base, MailingList, Member, Role
from listserv.passwords import hash_password
from tests.actors import as_actor
from tests.conftest import make_message, make_settings, read_maildir, send, settle, wait_for

DOMAIN = "lists.example.gov"
SITE = f"listserv@{DOMAIN}"
REQUEST = f"sm-cop-request@{DOMAIN}"
OWNER = "owner@digital.gov"
MODERATOR = "mod@digital.gov"
SECOND_MODERATOR = "mod2@digital.gov"
PASSWORD = "correct horse battery staple"
ATTACKER = "mallory@evil.example"


@asynccontextmanager
async def running(db_url: str, tmp_path: Path, **list_settings: Any) -> AsyncIterator[Service]:
    """The real service for SM-COP with a moderator, generous request limits, and `list_settings`."""
    settings = make_settings(
        db_url,
        tmp_path / "var",
        limits={"requests_per_sender_per_hour": 500, "confirmations_per_address_per_day": 500},
        list={"moderators": [MODERATOR, SECOND_MODERATOR], **list_settings},
    )
    service = build_service(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def context(service: Service) -> Context:
    return Context(
        session=service.factory(),
        settings=service.settings,
        templates=service.templates,
        source="test",
    )


def with_list(service: Service, change: Callable[[Context, MailingList], Any]) -> Any:
    """Run `change(ctx, sm-cop)` in one committed transaction; returns its result."""
    ctx = context(service)
    with ctx.session as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        return change(ctx, mlist)


def add_members(service: Service, *addresses: str) -> None:
    def add(ctx: Context, mlist: MailingList) -> None:
        for address in addresses:
            roster.add_member(ctx.session, mlist, address, actor=as_actor("test", "system"))

    with_list(service, add)


def set_password(service: Service, address: str = OWNER, role: str = Role.OWNER) -> None:
    def change(ctx: Context, mlist: MailingList) -> None:
        member = roster.find_member(ctx.session, mlist, address, role)
        assert member is not None
        member.password_hash = hash_password(PASSWORD)

    with_list(service, change)


class Mailbox:
    """The Maildir, read one message at a time: each message is returned once."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.seen: set[Path] = set()

    def _unseen(self, address: str, subject: str = "") -> list[tuple[Path, EmailMessage]]:
        return [
            (path, msg)
            for path, msg in read_maildir(self.service.settings.delivery.maildir)
            if path not in self.seen
            and msg["Delivered-To"] == address
            and subject.lower() in str(msg["Subject"] or "").lower()
        ]

    async def next(self, address: str, subject: str = "", timeout: float = 15.0) -> EmailMessage:
        """The next message to `address` whose Subject contains `subject`."""
        found = await wait_for(lambda: self._unseen(address, subject), timeout)
        path, msg = found[0]
        self.seen.add(path)
        return msg

    async def nothing_more(self, address: str) -> None:
        await settle(self.service)
        assert [m["Subject"] for _, m in self._unseen(address)] == []

    def skip_all(self) -> None:
        """Mark everything delivered so far as read."""
        for path, _ in read_maildir(self.service.settings.delivery.maildir):
            self.seen.add(path)


def body_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def command(
    service: Service,
    body: str,
    *,
    sender: str = OWNER,
    to: str = SITE,
    subject: str = "admin",
    envelope_from: str | None = None,
    **headers: str,
) -> None:
    """Mail commands over SMTP, as a person would."""
    msg = make_message(sender=sender, to=to, subject=subject, body=body, **headers)
    await send(service, msg, mail_from=envelope_from or email.utils.parseaddr(sender)[1])


async def reply(
    service: Service,
    notice: EmailMessage,
    body: str = "",
    *,
    sender: str,
    to: str | None = None,
    subject: str | None = None,
) -> None:
    """Reply to a notice (to its Reply-To unless `to` is given), quoting it below."""
    quoted = "\n".join(f"> {line}" for line in body_of(notice).splitlines()[:5])
    msg = make_message(
        sender=sender,
        to=to or str(notice["Reply-To"]),
        subject=subject if subject is not None else f"Re: {notice['Subject']}",
        body=f"{body}\n\nOn Monday the list server wrote:\n{quoted}\n",
        In_Reply_To=str(notice["Message-ID"]),
    )
    await send(service, msg)


def audit_rows(service: Service, action: str | None = None) -> list[AuditEvent]:
    with service.factory() as session:
        stmt = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        rows = list(session.scalars(stmt))
        session.expunge_all()
        return rows


def member(service: Service, address: str, role: str = Role.MEMBER) -> Member | None:
    with service.factory() as session:
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        found = roster.find_member(session, mlist, address, role)
        if found is not None:
            session.expunge(found)
        return found


def stored_anywhere(service: Service, needle: str) -> list[str]:
    """Every table.column whose stored value contains `needle` (bytes, text, JSON)."""
    hits: list[str] = []
    raw_needle = needle.encode()
    with service.factory() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                for column, value in row.items():
                    if isinstance(value, bytes | bytearray | memoryview):
                        if raw_needle in bytes(value):
                            hits.append(f"{table.name}.{column}")
                    elif value is not None and needle in str(value):
                        hits.append(f"{table.name}.{column}")
    return hits


def delivered_anywhere(service: Service, needle: str) -> list[str]:
    """Maildir files whose bytes contain `needle`."""
    maildir = service.settings.delivery.maildir / "new"
    if not maildir.exists():
        return []
    return [p.name for p in maildir.iterdir() if needle.encode() in p.read_bytes()]
