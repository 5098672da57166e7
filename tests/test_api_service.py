# SPDX-License-Identifier: Apache-2.0
"""The API of a running service over real sockets: idempotent retries and signed webhooks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from listserv import db, roster
from listserv.actors import email_actor, system_actor
from listserv.acts import confirmed
from listserv.app import Service, build_service
from listserv.config import Settings
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import (
    DeliveryStatus,
    Member,
    OutboxState,
    PendingRequest,
    RequestKind,
    RequestStatus,
    Webhook,
    WebhookDelivery,
    utcnow,
)
from listserv.templates import Templates
from listserv.web.server import serve_app
from listserv.webhooks.events import EVENTS
from listserv.webhooks.signing import HEADER, verify
from tests.admin_helpers import run_cli, write_config
from tests.api_helpers import ApiSite, bearer, hold_post
from tests.conftest import wait_for
from tests.web_helpers import free_port, with_public_port


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Service, str, ApiSite]]:
    """The whole service with web and API on a loopback port, webhooks retried quickly."""
    service = build_service(with_public_port(settings), web=True)
    service.webhook_backoff = timedelta(milliseconds=200)
    await service.start()
    base = f"http://127.0.0.1:{service.web_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            yield service, base, ApiSite(service.settings, service.factory, client)
    finally:
        await service.stop()


def _members(service: Service, address: str) -> int:
    with service.factory() as session:
        return int(
            session.scalar(
                select(func.count()).where(Member.address_key == roster.address_key(address))
            )
            or 0
        )


async def test_idempotent_post_retried_after_a_dropped_connection_adds_one_member(
    settings: Settings,
) -> None:
    async with running(settings) as (service, _, site):
        token = site.issue("owner", ("sm-cop",))
        body = json.dumps({"address": "retry@agency.gov", "name": "Retry"}).encode()
        request = (
            f"POST /api/v1/lists/sm-cop/members HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Idempotency-Key: add-retry-1\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        _, writer = await asyncio.open_connection("127.0.0.1", service.web_port)
        writer.write(request)
        await writer.drain()
        writer.close()  # the client goes away before reading any answer
        await wait_for(lambda: _members(service, "retry@agency.gov") == 1)
        headers = {**bearer(token), "idempotency-key": "add-retry-1"}
        retried = await site.client.post(
            "/api/v1/lists/sm-cop/members",
            content=body,
            headers={**headers, "content-type": "application/json"},
        )
        assert retried.status_code == 201, retried.text
        assert retried.headers["idempotent-replayed"] == "true"
        assert retried.json()["address"] == "retry@agency.gov"
        assert _members(service, "retry@agency.gov") == 1
        assert len(site.audit("member-add")) == 1
        other = await site.client.post(
            "/api/v1/lists/sm-cop/members",
            json={"address": "someone-else@agency.gov"},
            headers=headers,
        )
        assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
        assert _members(service, "someone-else@agency.gov") == 0


class Receiver:
    """A webhook endpoint on loopback that checks every signature and keeps what came."""

    def __init__(self) -> None:
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if not verify(self.secret, request.headers[HEADER], body, int(time.time())):
            self.bad_signatures += 1
            return Response(status_code=400)
        event = json.loads(body)
        assert request.headers["listserv-event-id"] == event["id"]
        self.events.append(event)
        return Response(status_code=204)


def _deliveries(service: Service) -> list[WebhookDelivery]:
    with service.factory() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def _cause_every_event(service: Service, site: ApiSite) -> int:
    """The events the API does not cause here (the caller joins, removes and approves).

    Holds a post (the id is returned), confirms a request that then awaits an
    owner, and disables a member's delivery as bounce scoring does.
    """
    post_id = hold_post(site, subject="Held for a moderator")  # post.held
    with db.session_scope(service.factory) as session:
        ctx = Context(session=session, settings=service.settings, templates=Templates())
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        request = PendingRequest(
            list_id=mlist.id,
            kind=RequestKind.SUBSCRIBE,
            status=RequestStatus.PENDING,
            address="contractor@example.com",
            address_key="contractor@example.com",
            payload={"needs_approval": True},
            expires_at=utcnow() + timedelta(days=1),
        )
        session.add(request)
        session.flush()
        confirmed.confirm_join(ctx, email_actor("contractor@example.com"), mlist, request)
        member = roster.find_member(session, mlist, "bouncy@agency.gov")
        assert member is not None
        roster.change_member(  # what bounce scoring does at the threshold
            session,
            mlist,
            member,
            {"delivery_status": DeliveryStatus.DISABLED_BOUNCING},
            actor=system_actor("bounces"),
        )
    return post_id


async def test_webhook_receiver_down_for_a_while_gets_every_event_once_signed(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here yet: the receiver is down
    config = write_config(tmp_path / "listserv.toml", settings.database_url, tmp_path / "var")
    async with running(settings) as (service, _, site):
        refused = run_cli(config, "webhooks", "add", "http://hooks.example.com/x")
        assert refused.code == 1 and "must be https" in refused.stderr
        added = run_cli(
            config, "webhooks", "add", f"http://127.0.0.1:{port}/hook", "--events",
            ",".join(EVENTS), "--list", "sm-cop", "--json",
        )  # fmt: skip
        assert added.code == 0, added.stderr
        hook = added.json()
        receiver = Receiver()
        receiver.secret = hook["secret"]
        assert run_cli(config, "webhooks", "list", "--json").json()[0]["id"] == hook["id"]

        headers = bearer(site.issue("owner", ("sm-cop",)))
        members = "/api/v1/lists/sm-cop/members"
        for address in ("joiner@agency.gov", "bouncy@agency.gov"):
            assert (await site.client.post(members, json={"address": address}, headers=headers)).status_code == 201  # fmt: skip
        left = await site.client.delete(f"{members}/joiner@agency.gov", headers=headers)
        assert left.status_code == 204
        post_id = _cause_every_event(service, site)
        approved = await site.client.post(
            f"/api/v1/lists/sm-cop/held/{post_id}/approve", headers=headers
        )
        assert approved.status_code == 200
        # While the receiver is down, each delivery is tried and deferred, again and again.
        await wait_for(
            lambda: (
                len(_deliveries(service)) == 7
                and all(
                    d.attempts >= 2 and d.state == OutboxState.DEFERRED
                    for d in _deliveries(service)
                )
            ),
            timeout=20,
        )
        shown = await site.client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=headers)
        assert shown.status_code == 200
        assert all(d["last_error"] and d["attempts"] >= 2 for d in shown.json()["items"])

        app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
        task, _ = await serve_app(app, "127.0.0.1", port)
        try:
            await wait_for(
                lambda: all(d.state == OutboxState.SENT for d in _deliveries(service)), timeout=30
            )
            await asyncio.sleep(0.5)  # nothing more arrives
        finally:
            task.cancel()
    assert receiver.bad_signatures == 0
    kinds = sorted(e["type"] for e in receiver.events)
    assert kinds == sorted(["member.joined", "member.joined", "member.left", "post.held",
                            "request.created", "bounce.disabled", "post.accepted"])  # fmt: skip
    assert len({e["id"] for e in receiver.events}) == len(receiver.events) == 7
    joined = [e["data"]["address"] for e in receiver.events if e["type"] == "member.joined"]
    assert sorted(joined) == ["bouncy@agency.gov", "joiner@agency.gov"]
    assert all(e["list"] == "sm-cop" and e["created_at"].endswith("Z") for e in receiver.events)
    with service.factory() as session:
        assert session.scalar(select(func.count()).select_from(Webhook)) == 1


async def test_the_same_idempotency_key_sent_twice_at_once_adds_one_member(
    settings: Settings,
) -> None:
    async with running(settings) as (service, _, site):
        headers = {**bearer(site.issue("owner", ("sm-cop",))), "idempotency-key": "twice"}
        body = {"address": "twice@agency.gov"}
        answers = await asyncio.gather(
            *(
                site.client.post("/api/v1/lists/sm-cop/members", json=body, headers=headers)
                for _ in range(4)
            )
        )
        assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
        assert len({a.content for a in answers}) == 1
        assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 3
        assert _members(service, "twice@agency.gov") == 1
        assert len(site.audit("member-add")) == 1
