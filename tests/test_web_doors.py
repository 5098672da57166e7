# SPDX-License-Identifier: Apache-2.0
"""The web doors over a real socket: base_url redirects, `Origin: null`, token-page limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import select

from listserv.app import Service
from listserv.config import Settings
from listserv.models import AuditEvent
from listserv.web.security import confirm_form_key
from tests.conftest import wait_for
from tests.web_helpers import (
    ONE_CLICK,
    Site,
    add_member,
    member_addresses,
    settled_snapshot,
    snapshot,
    start_web_service,
    subscribe_token,
)

JANE = {"name": "Jane Doe", "title": "Analyst", "address": "jane@agency.gov"}


@asynccontextmanager
async def web_site(settings: Settings) -> AsyncIterator[tuple[Service, Site, httpx.AsyncClient]]:
    async with start_web_service(settings) as service:
        base = f"http://127.0.0.1:{service.web_port}"
        async with httpx.AsyncClient(base_url=base, follow_redirects=False) as client:
            yield service, Site(service.settings, service.factory, client, None), client


def limited(settings: Settings, per_minute: int) -> Settings:
    return replace(
        settings, limits=replace(settings.limits, web_tokens_per_client_per_minute=per_minute)
    )


@pytest.mark.parametrize("path", ["/", "/lists/", "/lists/sm-cop/"])
async def test_redirects_are_built_from_base_url_never_from_host(
    sqlite_settings: Settings, path: str
) -> None:
    async with web_site(sqlite_settings) as (service, _, client):
        response = await client.get(path, headers={"Host": "evil.example"})
        assert response.status_code in (302, 307)
        location = response.headers["location"]
        assert location.startswith(service.settings.web.base_url + "/lists"), location
        assert "evil.example" not in location


async def test_a_join_post_with_origin_null_is_refused(sqlite_settings: Settings) -> None:
    async with web_site(sqlite_settings) as (_, site, client):
        before = snapshot(site.factory)
        response = await client.post("/lists/sm-cop/join", data=JANE, headers={"Origin": "null"})
        assert response.status_code == 403
        assert snapshot(site.factory) == before
        ours = {"Origin": site.settings.web.base_url}
        assert (await client.post("/lists/sm-cop/join", data=JANE, headers=ours)).status_code == 200


async def test_a_join_post_whose_origin_matches_only_the_host_header_is_refused(
    sqlite_settings: Settings,
) -> None:
    async with web_site(sqlite_settings) as (_, site, client):
        before = snapshot(site.factory)
        headers = {"Host": "evil.example", "Origin": "http://evil.example"}
        response = await client.post("/lists/sm-cop/join", data=JANE, headers=headers)
        assert response.status_code == 403
        assert snapshot(site.factory) == before


async def test_confirm_and_one_click_posts_with_origin_null_are_refused(
    sqlite_settings: Settings,
) -> None:
    async with web_site(sqlite_settings) as (_, site, client):
        token = subscribe_token(site, "jane@agency.gov")
        _, one_click = add_member(site, "reader@agency.gov")
        key = {"form_key": confirm_form_key(site.settings.site.secret.get(), token)}
        before = await settled_snapshot(site.factory)
        null = {"Origin": "null"}
        assert (await client.post(f"/confirm/{token}", data=key, headers=null)).status_code == 403
        response = await client.post(
            f"/unsubscribe/sm-cop/{one_click}", data=ONE_CLICK, headers=null
        )
        assert response.status_code == 403
        assert await settled_snapshot(site.factory) == before
        # A webmail page on another site may still post the one-click link.
        response = await client.post(
            f"/unsubscribe/sm-cop/{one_click}",
            data=ONE_CLICK,
            headers={"Origin": "https://mail.example.com", "Sec-Fetch-Site": "cross-site"},
        )
        assert response.status_code == 200
        assert member_addresses(site) == []


async def test_token_pages_past_the_rate_get_429_with_retry_after_and_an_audit_row(
    sqlite_settings: Settings,
) -> None:
    async with web_site(limited(sqlite_settings, 5)) as (service, site, client):
        token = subscribe_token(site, "jane@agency.gov")
        for _ in range(5):
            assert (await client.get(f"/confirm/{token}")).status_code == 200
        refused = await client.get(f"/confirm/{token}")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        _, one_click = add_member(site, "reader@agency.gov")
        response = await client.post(f"/unsubscribe/sm-cop/{one_click}", data=ONE_CLICK)
        assert response.status_code == 429, "one-click shares the client's budget"
        assert member_addresses(site) == ["reader@agency.gov"]
        # Other pages are not limited.
        assert (await client.get("/lists")).status_code == 200

        def audited() -> list[AuditEvent]:
            with service.factory() as session:
                return list(
                    session.scalars(
                        select(AuditEvent).where(
                            AuditEvent.action == "limit-tripped", AuditEvent.outcome == "web-tokens"
                        )
                    )
                )

        (event,) = await wait_for(audited)
        assert event.channel == "web"
        assert event.actor == "[127.0.0.1]"
