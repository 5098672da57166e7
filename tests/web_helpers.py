# SPDX-License-Identifier: Apache-2.0
"""Helpers for the web tests: the app over a real migrated database, and what it left.

`open_site` runs the Starlette app through httpx's ASGITransport (no socket)
against the test database; `start_web_service` runs the whole service with the
web pages on a real loopback port whose number is also the public base URL, so
links in the mail it delivers work as mailed.
"""

from __future__ import annotations

import email
import email.policy
import html as html_module
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listserv import roster
from listserv.actors import email_actor
from listserv.acts import subscriptions
from listserv.app import Service, build_service, prepare_database
from listserv.config import Settings
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import Base, Member, OutboxJob, OutboxRecipient, OutboxState
from listserv.templates import Templates
from listserv.tokens import find_token, unsubscribe_token
from listserv.web import create_app
from tests.actors import as_actor
from tests.conftest import wait_for

CLIENT = ("203.0.113.7", 50000)
LIST_PATH = "/lists/sm-cop"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Site:
    settings: Settings
    factory: sessionmaker[Session]
    client: httpx.AsyncClient
    app: Any

    def ctx(self, session: Session) -> Context:
        return Context(session=session, settings=self.settings, templates=Templates())

    def client_from(self, host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(host, 50001))
        return httpx.AsyncClient(transport=transport, base_url=self.settings.web.base_url)


@asynccontextmanager
async def open_site(settings: Settings, **app_options: Any) -> AsyncIterator[Site]:
    engine, factory = prepare_database(settings)
    app = create_app(settings, factory, Templates(), **app_options)
    transport = httpx.ASGITransport(app=app, client=CLIENT)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=settings.web.base_url) as client:
            yield Site(settings, factory, client, app)
    finally:
        engine.dispose()


def snapshot(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a request changed nothing."""
    with factory() as session:
        return {
            table.name: sorted(
                (tuple(row) for row in session.execute(select(table)).all()), key=repr
            )
            for table in Base.metadata.sorted_tables
        }


async def settled_snapshot(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """A snapshot once the running service's delivery workers have sent what was queued.

    With a live service the confirmation a test queued moves from queued to
    active to sent on its own; comparing before and after must not see that.
    """
    moving = (OutboxState.QUEUED, OutboxState.ACTIVE, OutboxState.DEFERRED)

    def settled() -> bool:
        with factory() as session:
            return not session.scalars(
                select(OutboxRecipient.id).where(OutboxRecipient.state.in_(moving)).limit(1)
            ).first()

    await wait_for(settled, timeout=30.0)
    return snapshot(factory)


def add_member(site: Site, address: str, name: str = "") -> tuple[int, str]:
    """A member of SM-COP; returns (member id, one-click token)."""
    with site.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        member = roster.add_member(session, mlist, address, name=name, actor=as_actor("test"))
        token = unsubscribe_token(
            site.settings.site.secret.get(), member.id, "sm-cop", member.unsubscribe_nonce
        )
        return member.id, token


def member_addresses(site: Site) -> list[str]:
    with site.factory() as session:
        return sorted(session.scalars(select(Member.address_key).where(Member.role == "member")))


def outbox_to(factory: sessionmaker[Session], address: str) -> list[EmailMessage]:
    """Service mail queued for `address`, oldest first."""
    with factory() as session:
        raws = session.scalars(
            select(OutboxJob.raw)
            .join(OutboxRecipient, OutboxRecipient.job_id == OutboxJob.id)
            .where(OutboxRecipient.address == address)
            .order_by(OutboxJob.id)
        ).all()
    return [
        email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
        for raw in raws
    ]


def request_token(
    site: Site,
    start: Callable[[Context, Any], object],
    address: str,
) -> str:
    """Start a request by the domain functions and return the token it mailed."""
    with site.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        start(site.ctx(session), mlist)
    mail = outbox_to(site.factory, address)[-1]
    token = find_token(str(mail["Subject"]))
    assert token is not None, mail["Subject"]
    return token


def subscribe_token(site: Site, address: str, name: str = "Jane Doe", title: str = "") -> str:
    requester = subscriptions.Requester(address=address, name=name, title=title)
    return request_token(
        site,
        lambda ctx, mlist: subscriptions.request_join(ctx, email_actor(address), mlist, requester),
        address,
    )


def unsubscribe_request_token(site: Site, address: str) -> str:
    return request_token(
        site,
        lambda ctx, mlist: subscriptions.request_leave(ctx, email_actor(address), mlist, address),
        address,
    )


def option_token(site: Site, address: str, option: str) -> str:
    return request_token(
        site,
        lambda ctx, mlist: subscriptions.request_option(
            ctx, email_actor(address), mlist, address, option
        ),
        address,
    )


def expire(site: Site, token: str) -> None:
    from listserv.models import PendingRequest, utcnow
    from listserv.tokens import hash_token

    with site.factory() as session, session.begin():
        request = session.scalar(
            select(PendingRequest).where(PendingRequest.token_hash == hash_token(token))
        )
        assert request is not None
        request.expires_at = utcnow() - timedelta(minutes=1)


class _Forms(HTMLParser):
    """Collects forms, their inputs and labels, scripts and inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.labels: set[str] = set()
        self.inputs: list[dict[str, str]] = []
        self.scripts = 0
        self.inline = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if any(k == "style" or k.startswith("on") for k in a):
            self.inline += 1
        if tag == "script" or tag == "style":
            self.scripts += 1
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "")})
        if tag == "label" and "for" in a:
            self.labels.add(a["for"])
        if tag in ("input", "select", "textarea"):
            self.inputs.append(a)
            if self.forms:
                self.forms[-1].setdefault("fields", {})[a.get("name", "")] = a.get("value", "")


def parse_page(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def main_text(html: str) -> str:
    """The text of <main>, tags stripped and spaces folded, for assertions."""
    body = html[html.find("<main") : html.find("</main>")]
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_public_port(settings: Settings) -> Settings:
    """Settings whose web port is a free loopback port and whose base URL names it."""
    port = free_port()
    web = replace(settings.web, host="127.0.0.1", port=port, base_url=f"http://127.0.0.1:{port}")
    return replace(settings, web=web)


@asynccontextmanager
async def start_web_service(settings: Settings) -> AsyncIterator[Service]:
    service = build_service(with_public_port(settings), web=True)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


CONFIRM_URL = re.compile(r"(https?://\S+/confirm/[a-z2-7]{32})")


def confirm_url(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    match = CONFIRM_URL.search(body.get_content())
    assert match is not None, body.get_content()
    return match.group(1)
