# SPDX-License-Identifier: Apache-2.0
"""Confirmation pages over HTTP: GET shows, only the page's POST acts, every token state."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from listserv.config import Settings
from listserv.models import AuditEvent, Member, MembershipEvent, PendingRequest
from listserv.tokens import hash_token
from listserv.web.security import confirm_form_key
from tests.web_helpers import (
    Site,
    add_member,
    expire,
    main_text,
    member_addresses,
    open_site,
    option_token,
    outbox_to,
    parse_page,
    snapshot,
    subscribe_token,
    unsubscribe_request_token,
)

JANE = "jane.doe@agency.gov"
UNKNOWN = "a" * 32


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    async with open_site(settings) as site:
        yield site


def form_key(site: Site, token: str) -> dict[str, str]:
    return {"form_key": confirm_form_key(site.settings.site.secret.get(), token)}


def request_status(site: Site, token: str) -> str:
    with site.factory() as session:
        request = session.scalar(
            select(PendingRequest).where(PendingRequest.token_hash == hash_token(token))
        )
        assert request is not None
        return request.status


async def test_the_page_says_what_joining_will_do_and_the_get_changes_nothing(
    site: Site,
) -> None:
    token = subscribe_token(site, JANE, "Jane Doe", "Digital Media Specialist")
    before = snapshot(site.factory)
    response = await site.client.get(f"/confirm/{token}")
    assert response.status_code == 200
    text = main_text(response.text)
    assert "Join SM-COP" in text
    assert "Press the button to join SM-COP as Jane Doe." in text
    assert JANE in text and "Digital Media Specialist" in text
    [form] = parse_page(response.text).forms
    assert form == {
        "action": f"/confirm/{token}",
        "method": "post",
        "fields": form_key(site, token),
    }
    assert response.headers["cache-control"] == "no-store"
    assert snapshot(site.factory) == before


async def test_the_post_from_the_page_joins_through_the_web_channel(site: Site) -> None:
    token = subscribe_token(site, JANE, "Jane Doe", "Analyst")
    page = await site.client.get(f"/confirm/{token}")
    fields = parse_page(page.text).forms[0]["fields"]
    response = await site.client.post(f"/confirm/{token}", data=fields)
    assert response.status_code == 200
    assert "Welcome to SM-COP" in response.text
    assert "location" not in response.headers
    assert member_addresses(site) == [JANE]
    with site.factory() as session:
        member = session.scalars(select(Member).where(Member.address_key == JANE)).one()
        assert (member.display_name, member.job_title) == ("Jane Doe", "Analyst")
        event = session.scalars(select(MembershipEvent).where(MembershipEvent.event == "join"))
        assert [e.channel for e in event if e.address_key == JANE] == ["web"]
        added = session.scalars(select(AuditEvent).where(AuditEvent.action == "member-add"))
        assert [(a.channel, a.target) for a in added if a.target == JANE] == [("web", JANE)]
    assert request_status(site, token) == "done"
    subjects = [m["Subject"] for m in outbox_to(site.factory, JANE)]
    assert subjects[-1] == "Welcome to SM-COP"


@pytest.mark.parametrize("fields", [{}, {"form_key": "forged"}, {"form_key": "x" * 22}])
async def test_a_post_without_the_page_s_form_key_is_403_and_changes_nothing(
    site: Site, fields: dict[str, str]
) -> None:
    token = subscribe_token(site, JANE)
    before = snapshot(site.factory)
    response = await site.client.post(f"/confirm/{token}", data=fields)
    assert response.status_code == 403
    assert "Nothing was changed" in response.text
    assert f'href="/confirm/{token}"' in response.text
    assert snapshot(site.factory) == before


async def test_a_form_key_for_another_token_does_not_confirm(site: Site) -> None:
    token = subscribe_token(site, JANE)
    other = subscribe_token(site, "john@agency.gov")
    response = await site.client.post(f"/confirm/{token}", data=form_key(site, other))
    assert response.status_code == 403
    assert member_addresses(site) == []


async def test_a_cross_site_post_is_refused_even_with_the_form_key(site: Site) -> None:
    token = subscribe_token(site, JANE)
    response = await site.client.post(
        f"/confirm/{token}", data=form_key(site, token), headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 403
    assert member_addresses(site) == []
    assert request_status(site, token) == "pending"


async def test_a_used_link_is_410_on_get_and_post(site: Site) -> None:
    token = subscribe_token(site, JANE)
    first = await site.client.post(f"/confirm/{token}", data=form_key(site, token))
    assert first.status_code == 200
    before = snapshot(site.factory)
    again = await site.client.post(f"/confirm/{token}", data=form_key(site, token))
    shown = await site.client.get(f"/confirm/{token}")
    for response in (again, shown):
        assert response.status_code == 410
        assert "This link has already been used" in response.text
        assert "there is nothing more to do" in response.text
        assert 'href="/lists/sm-cop"' in response.text
    assert snapshot(site.factory) == before


async def test_an_expired_link_is_410_get_changes_nothing_post_records_the_expiry(
    site: Site,
) -> None:
    token = subscribe_token(site, JANE)
    expire(site, token)
    before = snapshot(site.factory)
    shown = await site.client.get(f"/confirm/{token}")
    assert shown.status_code == 410
    assert "This link has expired" in shown.text
    assert "Start your request again" in shown.text
    assert snapshot(site.factory) == before
    posted = await site.client.post(f"/confirm/{token}", data=form_key(site, token))
    assert posted.status_code == 410
    assert request_status(site, token) == "expired"
    assert member_addresses(site) == []
    # Once recorded, the expiry still reads as expired (not "used").
    assert "This link has expired" in (await site.client.get(f"/confirm/{token}")).text


@pytest.mark.parametrize("token", [UNKNOWN, "not-a-token", "A" * 33, "%2e%2e"])
async def test_an_unknown_link_is_404_with_what_to_do_next(site: Site, token: str) -> None:
    before = snapshot(site.factory)
    shown = await site.client.get(f"/confirm/{token}")
    posted = await site.client.post(f"/confirm/{token}", data={"form_key": "x"})
    assert shown.status_code == 404
    assert "This confirmation link is not known" in shown.text
    assert 'href="/lists"' in shown.text
    assert posted.status_code in (403, 404)
    assert snapshot(site.factory) == before


async def test_a_token_in_upper_case_still_works(site: Site) -> None:
    token = subscribe_token(site, JANE)
    response = await site.client.get(f"/confirm/{token.upper()}")
    assert response.status_code == 200
    assert "Join SM-COP" in response.text


async def test_leaving_is_confirmed_on_the_page(site: Site) -> None:
    add_member(site, JANE)
    token = unsubscribe_request_token(site, JANE)
    shown = await site.client.get(f"/confirm/{token}")
    assert shown.status_code == 200
    assert "Leave SM-COP" in shown.text
    assert member_addresses(site) == [JANE]
    posted = await site.client.post(f"/confirm/{token}", data=form_key(site, token))
    assert posted.status_code == 200
    assert "You have left SM-COP" in posted.text
    assert member_addresses(site) == []
    with site.factory() as session:
        removed = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "member-remove")
        ).one()
        assert removed.channel == "web"


async def test_a_delivery_option_is_confirmed_on_the_page(site: Site) -> None:
    add_member(site, JANE)
    token = option_token(site, JANE, "digest")
    shown = await site.client.get(f"/confirm/{token}")
    assert shown.status_code == 200
    assert "DIGEST" in shown.text and "digest of the list's messages" in main_text(shown.text)
    posted = await site.client.post(f"/confirm/{token}", data=form_key(site, token))
    assert posted.status_code == 200
    with site.factory() as session:
        member = session.scalars(select(Member).where(Member.address_key == JANE)).one()
        assert member.delivery_mode == "digest"


async def test_confirming_when_already_a_member_says_there_is_nothing_to_change(
    site: Site,
) -> None:
    token = subscribe_token(site, JANE)
    add_member(site, JANE)
    posted = await site.client.post(f"/confirm/{token}", data=form_key(site, token))
    assert posted.status_code == 200
    assert "Nothing to change" in posted.text
    assert member_addresses(site) == [JANE]


async def test_an_ineligible_hold_request_awaits_an_owner_after_confirming(
    tmp_path, db_url
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(db_url, tmp_path / "var", list={"ineligible_policy": "hold"})
    async with open_site(settings) as site:
        token = subscribe_token(site, "contractor@example.com")
        shown = await site.client.get(f"/confirm/{token}")
        assert "An owner of the list will then review your request." in shown.text
        posted = await site.client.post(f"/confirm/{token}", data=form_key(site, token))
        assert posted.status_code == 200
        assert "request confirmed" in posted.text
        assert member_addresses(site) == []
        again = await site.client.get(f"/confirm/{token}")
        assert again.status_code == 410
        assert "An owner of the list is reviewing it" in again.text
