# SPDX-License-Identifier: Apache-2.0
"""Helpers for the API tests: the app over a real migrated database, tokens, held posts.

`open_api` runs the whole web app (the API is mounted in it) through httpx's
ASGITransport against the test database; `issue` makes a token by the same
act `listserv tokens create` calls; `hold_post` and `waiting_request` put a
held post and a subscription request awaiting an owner in place.
"""

from __future__ import annotations

import email.utils
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listserv import db, roster
from listserv.actors import host_actor
from listserv.acts import tokens
from listserv.config import Settings
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import (
    AuditEvent,
    PendingRequest,
    Post,
    PostStatus,
    RequestKind,
    RequestStatus,
    utcnow,
)
from listserv.posting import moderation
from listserv.startup import prepare_database
from listserv.templates import Templates
from listserv.web import create_app
from tests.actors import as_actor

LIST = "sm-cop"
BASE = "/api/v1"
OTHER_LIST = {
    "name": "records",
    "display_name": "RECORDS",
    "owners": ["records-owner@archives.gov"],
    "eligible_domains": ["gov"],
}


def with_limits(settings: Settings, **limits: int) -> Settings:
    return replace(settings, limits=replace(settings.limits, **limits))


@dataclass
class ApiSite:
    settings: Settings
    factory: sessionmaker[Session]
    client: httpx.AsyncClient

    def ctx(self, session: Session) -> Context:
        return Context(session=session, settings=self.settings, templates=Templates())

    def issue(
        self,
        role: str = "site-admin",
        lists: tuple[str, ...] = (),
        *,
        name: str | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """A token made by the act `listserv tokens create` calls."""
        with db.session_scope(self.factory) as session:
            issued = tokens.create_token(
                self.ctx(session),
                host_actor(),
                name or f"{role}-{uuid.uuid4().hex[:6]}",
                role,
                list_names=lists,
                expires_at=expires_at,
            )
            return issued.token

    def audit(self, action: str) -> list[AuditEvent]:
        with self.factory() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@asynccontextmanager
async def open_api(settings: Settings) -> AsyncIterator[ApiSite]:
    engine, factory = prepare_database(settings)
    app = create_app(settings, factory, Templates())
    transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=settings.web.base_url) as c:
            yield ApiSite(settings, factory, c)
    finally:
        engine.dispose()


def add_members(site: ApiSite, addresses: list[str], list_name: str = LIST) -> None:
    with db.session_scope(site.factory) as session:
        mlist = get_list(session, list_name)
        assert mlist is not None
        for address in addresses:
            roster.add_member(session, mlist, address, actor=as_actor("test"))


def hold_post(site: ApiSite, sender: str = "outsider@agency.gov", subject: str = "Hi") -> int:
    """A post held for the moderators, as the posting rules hold one (notice and all)."""
    raw = (
        f"From: {sender}\r\nTo: sm-cop@lists.example.gov\r\nSubject: {subject}\r\n"
        f"Message-ID: {email.utils.make_msgid(domain='agency.gov')}\r\n\r\nHello list.\r\n"
    ).encode()
    with db.session_scope(site.factory) as session:
        mlist = get_list(session, LIST)
        assert mlist is not None
        post = Post(
            list_id=mlist.id, status=PostStatus.HELD, sender=sender, subject=subject, raw=raw
        )
        session.add(post)
        session.flush()
        moderation.hold_post(site.ctx(session), mlist, post, ["the sender is not a member"])
        return post.id


def waiting_request(site: ApiSite, address: str = "contractor@example.com") -> int:
    """A confirmed subscription request outside the list's rule, awaiting an owner."""
    with db.session_scope(site.factory) as session:
        mlist = get_list(session, LIST)
        assert mlist is not None
        request = PendingRequest(
            list_id=mlist.id,
            kind=RequestKind.SUBSCRIBE,
            status=RequestStatus.AWAITING_APPROVAL,
            address=address,
            address_key=roster.address_key(address),
            payload={"name": "Casey Contractor", "needs_approval": True},
            expires_at=utcnow() + timedelta(days=3),
        )
        session.add(request)
        session.flush()
        return request.id


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body
