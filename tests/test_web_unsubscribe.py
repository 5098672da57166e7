# SPDX-License-Identifier: Apache-2.0
"""One-click unsubscribe (RFC 8058) over HTTP, and GETs of every token URL changing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import select

from listserv.config import Settings
from listserv.models import AuditEvent, Member, MembershipEvent, UnsubscribeReceipt
from listserv.tokens import new_nonce
from tests.web_helpers import (
    ONE_CLICK,
    Site,
    add_member,
    expire,
    main_text,
    member_addresses,
    open_site,
    outbox_to,
    parse_page,
    snapshot,
    subscribe_token,
    unsubscribe_request_token,
)

JANE = "jane.doe@agency.gov"


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    async with open_site(settings) as site:
        yield site


def url(token: str, list_name: str = "sm-cop") -> str:
    return f"/unsubscribe/{list_name}/{token}"


async def test_the_one_click_post_unsubscribes_at_once_with_200_and_no_redirect(
    site: Site,
) -> None:
    member_id, token = add_member(site, JANE)
    response = await site.client.post(url(token), data=ONE_CLICK)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "You have left SM-COP" in response.text
    assert member_addresses(site) == []
    with site.factory() as session:
        [left] = session.scalars(
            select(MembershipEvent).where(MembershipEvent.event == "leave")
        ).all()
        assert (left.address, left.channel, left.actor) == (JANE, "web", JANE)
        [audit] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "member-remove")
        ).all()
        assert (audit.channel, audit.auth, audit.target) == ("web", "one-click-token", JANE)
        assert audit.source == "203.0.113.7"
        [receipt] = session.scalars(select(UnsubscribeReceipt)).all()
        assert (receipt.member_id, receipt.address) == (member_id, JANE)
        assert token not in receipt.token_hash
    [goodbye] = outbox_to(site.factory, JANE)
    assert goodbye["Subject"] == "You have left SM-COP"


async def test_the_one_click_post_accepts_multipart_form_data(site: Site) -> None:
    _, token = add_member(site, JANE)
    response = await site.client.post(url(token), files={"List-Unsubscribe": (None, "One-Click")})
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert response.status_code == 200
    assert member_addresses(site) == []


async def test_a_repeated_post_is_idempotent_and_says_already_removed(site: Site) -> None:
    _, token = add_member(site, JANE)
    assert (await site.client.post(url(token), data=ONE_CLICK)).status_code == 200
    before = snapshot(site.factory)
    again = await site.client.post(url(token), data=ONE_CLICK)
    shown = await site.client.get(url(token))
    for response in (again, shown):
        assert response.status_code == 200
        assert "You have already left" in response.text
        assert JANE in main_text(response.text)
    assert snapshot(site.factory) == before
    assert len(outbox_to(site.factory, JANE)) == 1  # one goodbye only


async def test_the_get_shows_a_button_that_posts_the_same_form_and_changes_nothing(
    site: Site,
) -> None:
    _, token = add_member(site, JANE)
    before = snapshot(site.factory)
    response = await site.client.get(url(token))
    assert response.status_code == 200
    assert "Leave SM-COP" in response.text and JANE in response.text
    [form] = parse_page(response.text).forms
    assert form == {"action": url(token), "method": "post", "fields": ONE_CLICK}
    assert snapshot(site.factory) == before
    assert member_addresses(site) == [JANE]


async def test_a_rotated_nonce_revokes_the_link(site: Site) -> None:
    member_id, token = add_member(site, JANE)
    with site.factory() as session, session.begin():
        member = session.get(Member, member_id)
        assert member is not None
        member.unsubscribe_nonce = new_nonce()
    before = snapshot(site.factory)
    for response in (
        await site.client.get(url(token)),
        await site.client.post(url(token), data=ONE_CLICK),
    ):
        assert response.status_code == 404
        assert "This unsubscribe link is not valid" in response.text
        assert "sm-cop-leave@lists.example.gov" in response.text
    assert snapshot(site.factory) == before


async def test_links_that_do_not_verify_are_404(site: Site, tmp_path, db_url) -> None:
    member_id, token = add_member(site, JANE)
    owner_id = member_id + 1
    with site.factory() as session:
        owner = session.scalars(select(Member).where(Member.role == "owner")).first()
        assert owner is not None
        owner_id = owner.id
    from listserv.tokens import unsubscribe_token

    secret = site.settings.site.secret.get()
    bad = [
        url(token, "no-such-list"),
        url(token.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAA"),
        url(f"{member_id + 1000}.{token.split('.')[1]}"),
        url("not-a-token"),
        url(unsubscribe_token("another-secret-0123456789", member_id, "sm-cop", "x")),
        url(unsubscribe_token(secret, owner_id, "sm-cop", "")),  # owners have no such link
    ]
    before = snapshot(site.factory)
    for path in bad:
        assert (await site.client.get(path)).status_code == 404, path
        assert (await site.client.post(path, data=ONE_CLICK)).status_code == 404, path
    assert snapshot(site.factory) == before


async def test_a_post_without_the_one_click_body_changes_nothing(site: Site) -> None:
    _, token = add_member(site, JANE)
    before = snapshot(site.factory)
    for body in ({}, {"List-Unsubscribe": "yes"}, {"unsubscribe": "One-Click"}):
        response = await site.client.post(url(token), data=body)
        assert response.status_code == 400
        assert "Nothing was changed" in response.text
    assert snapshot(site.factory) == before


async def test_one_click_is_not_refused_as_cross_site(site: Site) -> None:
    """Mail clients and providers post it from anywhere; the token is the authority."""
    _, token = add_member(site, JANE)
    response = await site.client.post(
        url(token),
        data=ONE_CLICK,
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://mail.example.com"},
    )
    assert response.status_code == 200
    assert member_addresses(site) == []


async def test_a_link_from_before_leaving_and_joining_again_does_not_remove_the_new_membership(
    site: Site,
) -> None:
    _, old = add_member(site, JANE)
    assert (await site.client.post(url(old), data=ONE_CLICK)).status_code == 200
    _, new = add_member(site, JANE)
    again = await site.client.post(url(old), data=ONE_CLICK)
    assert again.status_code == 200 and "You have already left" in again.text
    assert member_addresses(site) == [JANE]
    assert (await site.client.post(url(new), data=ONE_CLICK)).status_code == 200
    assert member_addresses(site) == []


# --- A GET (or HEAD) of any token URL, in any state, changes nothing. -----------------


def _confirm_pending(site: Site) -> str:
    return "/confirm/" + subscribe_token(site, "pending@agency.gov")


def _confirm_leave(site: Site) -> str:
    add_member(site, "leaving@agency.gov")
    return "/confirm/" + unsubscribe_request_token(site, "leaving@agency.gov")


def _confirm_expired(site: Site) -> str:
    token = subscribe_token(site, "late@agency.gov")
    expire(site, token)
    return "/confirm/" + token


def _unsubscribe_valid(site: Site) -> str:
    return url(add_member(site, "reader@agency.gov")[1])


TOKEN_URLS: dict[str, Callable[[Site], str]] = {
    "confirm-pending-join": _confirm_pending,
    "confirm-pending-leave": _confirm_leave,
    "confirm-expired": _confirm_expired,
    "confirm-unknown": lambda site: "/confirm/" + "b" * 32,
    "confirm-malformed": lambda site: "/confirm/zz%20top",
    "unsubscribe-valid": _unsubscribe_valid,
    "unsubscribe-forged": lambda site: url("1.AAAAAAAAAAAAAAAAAAAAAA"),
    "unsubscribe-malformed": lambda site: url("x"),
}


@pytest.mark.parametrize("state", sorted(TOKEN_URLS))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_get_of_any_token_url_changes_nothing(site: Site, state: str, method: str) -> None:
    path = TOKEN_URLS[state](site)
    before = snapshot(site.factory)
    for _ in range(3):  # security gateways fetch more than once
        response = await site.client.request(method, path)
        assert response.status_code in (200, 404, 410)
    assert snapshot(site.factory) == before


async def test_a_get_of_used_links_changes_nothing(site: Site) -> None:
    from tests.test_web_confirm import form_key

    token = subscribe_token(site, JANE)
    await site.client.post(f"/confirm/{token}", data=form_key(site, token))
    _, unsub = add_member(site, "reader@agency.gov")
    await site.client.post(url(unsub), data=ONE_CLICK)
    before = snapshot(site.factory)
    assert (await site.client.get(f"/confirm/{token}")).status_code == 410
    assert (await site.client.get(url(unsub))).status_code == 200
    assert snapshot(site.factory) == before
