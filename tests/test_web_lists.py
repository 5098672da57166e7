# SPDX-License-Identifier: Apache-2.0
"""The list pages and the join form over HTTP (ASGI) against a real migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from listserv import roster
from listserv.config import Settings
from listserv.lists import get_list
from listserv.models import AuditEvent, PendingRequest, RateEvent
from listserv.web.listinfo import count_phrase
from tests.actors import as_actor
from tests.conftest import make_settings, shipped_config
from tests.web_helpers import (
    LIST_PATH,
    Site,
    add_member,
    main_text,
    open_site,
    outbox_to,
    parse_page,
    snapshot,
)

JANE = {"name": "Jane Doe", "title": "Digital Media Specialist", "address": "jane.doe@agency.gov"}


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    async with open_site(settings) as site:
        yield site


def bulk_members(site: Site, count: int) -> None:
    with site.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        people = (
            roster.NewMember(f"person{i}@agency.gov", f"person{i}@agency.gov") for i in range(count)
        )
        roster.add_members_bulk(
            session, mlist, people, audit_each=False, actor=as_actor("test", "cli")
        )


def test_member_count_is_written_as_the_community_page_writes_it() -> None:
    assert count_phrase(1493) == "Join 1,493 community members"
    assert count_phrase(100000) == "Join 100,000 community members"
    assert count_phrase(1) == "Join 1 community member"
    assert count_phrase(0) == "Be the first community member to join"


async def test_root_redirects_to_the_lists(site: Site) -> None:
    response = await site.client.get("/")
    assert response.status_code == 302
    assert response.headers["location"] == site.settings.web.base_url + "/lists"


async def test_lists_page_shows_public_lists_with_member_counts(tmp_path, db_url) -> None:
    lists = shipped_config()["lists"]
    hidden = dict(lists[0], name="staff-only", display_name="STAFF-ONLY", public=False)
    settings = make_settings(db_url, tmp_path / "var", lists=[lists[0], hidden])
    async with open_site(settings) as site:
        bulk_members(site, 1493)
        response = await site.client.get("/lists")
    assert response.status_code == 200
    text = main_text(response.text)
    assert "SM-COP" in text and "Join 1,493 community members" in text
    assert "STAFF-ONLY" not in text
    assert 'href="/lists/sm-cop"' in response.text


async def test_list_page_shows_description_count_rule_notice_and_a_labelled_form(
    site: Site,
) -> None:
    bulk_members(site, 1493)
    add_member(site, "owner.reads.too@digital.gov")  # counted: a member row
    response = await site.client.get(LIST_PATH)
    assert response.status_code == 200
    text = main_text(response.text)
    assert "The Social Media Community of Practice" in text
    assert "Join 1,494 community members" in text
    assert "Only addresses at .gov or .mil domains" in text and "may join SM-COP" in text
    assert "Freedom of Information Act (FOIA)" in text
    assert "An official website of the United States government" in response.text
    page = parse_page(response.text)
    form, leave = page.forms
    assert form["method"] == "post" and form["action"] == "/lists/sm-cop/join"
    assert set(form["fields"]) == {"name", "title", "address"}
    assert leave["method"] == "post" and leave["action"] == "/lists/sm-cop/leave"
    assert set(leave["fields"]) == {"leave_address"}
    for field in page.inputs:
        assert field["id"] in page.labels, f"input {field['id']} has no label"
    assert page.scripts == 0 and page.inline == 0
    assert response.headers["content-type"].startswith("text/html; charset=utf-8")


@pytest.mark.parametrize("path", ["/lists/no-such-list", "/lists/staff-only", "/lists/%00x"])
async def test_unknown_and_private_lists_are_404(tmp_path, db_url, path: str) -> None:
    lists = shipped_config()["lists"]
    hidden = dict(lists[0], name="staff-only", display_name="STAFF-ONLY", public=False)
    settings = make_settings(db_url, tmp_path / "var", lists=[lists[0], hidden])
    async with open_site(settings) as site:
        response = await site.client.get(path)
        joined = await site.client.post(path + "/join", data=JANE)
    assert response.status_code == 404
    assert "List not found" in response.text
    assert joined.status_code == 404


async def test_join_form_starts_the_double_opt_in_by_mail(site: Site) -> None:
    response = await site.client.post(f"{LIST_PATH}/join", data=JANE)
    assert response.status_code == 200
    assert "Check your mail" in response.text
    assert "jane.doe@agency.gov" in main_text(response.text)
    with site.factory() as session:
        [request] = session.scalars(select(PendingRequest)).all()
        assert request.kind == "subscribe" and request.status == "pending"
        assert request.address == "jane.doe@agency.gov"
        assert request.payload["name"] == "Jane Doe"
        assert request.payload["title"] == "Digital Media Specialist"
        assert request.payload["channel"] == "web"
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "subscribe-requested")
        ).one()
        assert audit.channel == "web" and audit.source == "203.0.113.7"
    [mail] = outbox_to(site.factory, "jane.doe@agency.gov")
    assert "Confirm joining SM-COP" in mail["Subject"]
    assert f"{site.settings.web.base_url}/confirm/" in mail.get_content()
    assert "as Jane Doe, Digital Media Specialist" in mail.get_content()


async def test_join_refuses_an_ineligible_address_and_says_who_may_join(site: Site) -> None:
    form = dict(JANE, address="jane@gmail.com")
    response = await site.client.post(f"{LIST_PATH}/join", data=form)
    assert response.status_code == 422
    text = main_text(response.text)
    assert "Only addresses at .gov or .mil domains" in text
    assert 'aria-invalid="true"' in response.text
    assert 'value="jane@gmail.com"' in response.text  # the form keeps what was typed
    with site.factory() as session:
        assert session.scalars(select(PendingRequest)).all() == []
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "subscribe-refused")
        ).one()
        assert refused.channel == "web"
    assert outbox_to(site.factory, "jane@gmail.com") == []


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (dict(JANE, name=""), "name", "Enter your name"),
        (dict(JANE, address="  "), "address", "Enter your email address"),
        (dict(JANE, name="x" * 201), "name", "200 characters or fewer"),
        (dict(JANE, title="Chief\r\nBcc: x@evil.example"), "title", "without line breaks"),
    ],
)
async def test_join_form_errors_are_400_and_point_at_the_field(
    site: Site, form: dict[str, str], field: str, message: str
) -> None:
    before = snapshot(site.factory)
    response = await site.client.post(f"{LIST_PATH}/join", data=form)
    assert response.status_code == 400
    assert message in response.text
    assert f'href="#{field}"' in response.text  # the error summary links to the field
    assert f'aria-describedby="{field}-error"' in response.text or (
        f"{field}-hint {field}-error" in response.text
    )
    assert "<title>Error: " in response.text
    assert snapshot(site.factory) == before


async def test_join_does_not_reveal_whether_an_address_is_a_member(site: Site) -> None:
    add_member(site, "member@agency.gov")
    answers: dict[str, list[tuple[int, str]]] = {}
    for address in ("member@agency.gov", "stranger@agency.gov"):
        answers[address] = []
        for _ in range(4):
            response = await site.client.post(f"{LIST_PATH}/join", data=dict(JANE, address=address))
            page = main_text(response.text).replace(address, "ADDRESS")
            answers[address].append((response.status_code, page))
    assert answers["member@agency.gov"] == answers["stranger@agency.gov"]
    assert [status for status, _ in answers["member@agency.gov"]] == [200, 200, 200, 429]
    # Each address heard about it by mail, as the email path would tell it.
    member_mail = outbox_to(site.factory, "member@agency.gov")
    assert [m["Subject"] for m in member_mail] == ["You are already a member of SM-COP"] * 3
    assert len(outbox_to(site.factory, "stranger@agency.gov")) == 3


async def test_join_posts_are_limited_per_client_address(settings: Settings) -> None:
    async with open_site(settings, joins_per_client_per_hour=2) as site:
        for i in range(2):
            ok = await site.client.post(
                f"{LIST_PATH}/join", data=dict(JANE, address=f"p{i}@agency.gov")
            )
            assert ok.status_code == 200
        before = snapshot(site.factory)
        refused = await site.client.post(
            f"{LIST_PATH}/join", data=dict(JANE, address="p9@agency.gov")
        )
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "3600"
        assert "too many join requests from your network" in refused.text
        assert snapshot(site.factory) == before
        async with site.client_from("198.51.100.20") as other:
            elsewhere = await other.post(
                f"{LIST_PATH}/join", data=dict(JANE, address="p9@agency.gov")
            )
        assert elsewhere.status_code == 200
        with site.factory() as session:
            keys = set(session.scalars(select(RateEvent.key)))
        assert "web-join-from:203.0.113.7" in keys and "web-join-from:198.51.100.20" in keys


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://attacker.example"},
    ],
)
async def test_join_posts_from_other_sites_are_refused(site: Site, headers) -> None:
    before = snapshot(site.factory)
    response = await site.client.post(f"{LIST_PATH}/join", data=JANE, headers=headers)
    assert response.status_code == 403
    assert "another website" in response.text
    assert snapshot(site.factory) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8080"},
        {"Origin": "http://127.0.0.1:8080"},  # the configured base URL
        {"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "none"},
    ],
)
async def test_join_posts_from_our_own_page_are_accepted(site: Site, headers) -> None:
    response = await site.client.post(f"{LIST_PATH}/join", data=JANE, headers=headers)
    assert response.status_code == 200, response.text


async def test_an_oversized_form_is_refused_with_413(site: Site) -> None:
    response = await site.client.post(f"{LIST_PATH}/join", data=dict(JANE, title="x" * 20000))
    assert response.status_code == 413
    assert "Too much data" in response.text


async def test_a_get_of_the_join_address_is_405_with_a_page(site: Site) -> None:
    response = await site.client.get(f"{LIST_PATH}/join")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert "<h1>Not allowed</h1>" in response.text


async def test_list_pages_are_kept_briefly_and_web_changes_show_at_once(site: Site) -> None:
    from tests.test_web_confirm import form_key
    from tests.web_helpers import subscribe_token

    first = await site.client.get(LIST_PATH)
    assert "Be the first community member to join" in first.text
    add_member(site, "by.mail@agency.gov")  # as a join by email would, behind the web's back
    cached = await site.client.get(LIST_PATH)
    assert cached.text == first.text  # served from memory for a few seconds
    assert cached.headers["x-frame-options"] == "DENY"
    token = subscribe_token(site, "jane.doe@agency.gov")
    await site.client.post(f"/confirm/{token}", data=form_key(site, token))
    fresh = await site.client.get(LIST_PATH)
    assert "Join 2 community members" in fresh.text


async def test_without_the_page_cache_every_request_reads_the_database(settings) -> None:
    async with open_site(settings, page_cache_seconds=0) as site:
        assert "Be the first" in (await site.client.get(LIST_PATH)).text
        add_member(site, "by.mail@agency.gov")
        assert "Join 1 community member" in (await site.client.get(LIST_PATH)).text
