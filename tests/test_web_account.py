# SPDX-License-Identifier: Apache-2.0
"""The account page over the real app: a member's own lists, each form, CSRF, leaving,
someone else's membership out of reach, asking for a new address, the data download."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from listserv import roster
from listserv.actors import email_actor
from listserv.confirmations.dispatch import confirm
from listserv.lists import get_list
from listserv.models import (
    AuditEvent,
    BounceEvent,
    DeliveryMode,
    Member,
    MembershipChange,
    MembershipEvent,
    PendingRequest,
    RequestKind,
    WebSession,
    utcnow,
)
from tests.actors import as_actor
from tests.console_helpers import MEMBER, OWNER, console_settings, form_fields, hold, sign_in
from tests.web_helpers import (
    Site,
    confirm_url,
    main_text,
    open_site,
    option_token,
    outbox_to,
    parse_page,
    snapshot,
    unsubscribe_request_token,
)

BOB = "bob.smith@agency.gov"


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(console_settings(db_url, tmp_path / "var")) as site:
        yield site


def join(site: Site, address: str, list_name: str = "sm-cop", **values: Any) -> int:
    """A member written through the roster (history and audit); their row id."""
    with site.factory() as session, session.begin():
        mlist = get_list(session, list_name)
        assert mlist is not None
        member = roster.add_member(session, mlist, address, actor=as_actor("test"), **values)
        return member.id


def row(site: Site, member_id: int) -> Member | None:
    with site.factory() as session:
        member = session.get(Member, member_id)
        if member is not None:
            session.expunge(member)
        return member


def audits(site: Site, action: str) -> list[AuditEvent]:
    with site.factory() as session:
        found = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
        return found


def unchanged(site: Site) -> dict[str, Any]:
    """Every table but the sessions' idle clocks, which each signed-in request moves on."""
    tables = snapshot(site.factory)
    tables.pop("web_sessions")
    return tables


def client(site: Site) -> httpx.AsyncClient:
    return site.client_from("198.51.100.20")


async def test_the_page_lists_each_membership_with_labelled_forms(site: Site) -> None:
    sm_cop = join(site, MEMBER, name="Jane Doe", title="Web manager")
    other = join(site, MEMBER, "other")
    join(site, BOB, name="Bob Smith")
    async with client(site) as browser:
        await sign_in(site, browser, MEMBER)
        page = await browser.get("/account")
    assert page.status_code == 200
    text = main_text(page.text)
    assert "SM-COP" in text and "OTHER" in text and "Bob Smith" not in text
    parsed = parse_page(page.text)
    actions = [f["action"] for f in parsed.forms]
    for member_id in (sm_cop, other):
        assert f"/account/memberships/{member_id}" in actions
        assert f"/account/memberships/{member_id}/leave" in actions
    assert "/account/address" in actions
    assert all(f["method"] == "post" and f["fields"].get("csrf") for f in parsed.forms)
    shown = [i for i in parsed.inputs if i.get("type") != "hidden"]
    assert shown and all(i["id"] in parsed.labels for i in shown)  # every field labelled
    assert parsed.scripts == 0 and parsed.inline == 0
    checked = [i["value"] for i in parsed.inputs if i.get("type") == "radio" and "checked" in i]
    assert checked == ["mail", "mail"]
    assert 'value="Web manager"' in page.text
    assert 'href="/account/data.json"' in page.text


@pytest.mark.parametrize(
    ("choice", "mode", "digest_format"),
    [
        ("digest-plain", DeliveryMode.DIGEST, "plain"),
        ("digest-mime", DeliveryMode.DIGEST, "mime"),
        ("nomail", DeliveryMode.NOMAIL, "plain"),
    ],
)
async def test_the_settings_form_changes_delivery_name_and_title_audited_web(
    site: Site, choice: str, mode: DeliveryMode, digest_format: str
) -> None:
    member_id = join(site, MEMBER, name="Jane Doe")
    with site.factory() as session, session.begin():
        member = session.get(Member, member_id)
        assert member is not None
        member.digest_format = "plain"  # a MIME choice must set it back; the others keep it
    async with client(site) as browser:
        signed = await sign_in(site, browser, MEMBER)
        answer = await browser.post(
            f"/account/memberships/{member_id}",
            data={
                "csrf": signed.csrf,
                "delivery": choice,
                "name": " Jane  Q. Doe ",
                "title": "CIO",
            },
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/account?done=saved&list=sm-cop"
        shown = await browser.get(answer.headers["location"])
    assert "Your settings for SM-COP are saved." in main_text(shown.text)
    member = row(site, member_id)
    assert member is not None
    assert (member.delivery_mode, member.digest_format) == (mode, digest_format)
    assert (member.display_name, member.job_title) == ("Jane Q. Doe", "CIO")
    [record] = audits(site, "member-change")
    assert (record.actor, record.channel, record.auth) == (MEMBER, "web", "link")
    assert record.detail["after"]["delivery_mode"] == mode
    with site.factory() as session:
        events = session.scalars(
            select(MembershipEvent.event).where(MembershipEvent.address_key == MEMBER)
        ).all()
    assert events == [MembershipChange.JOIN, MembershipChange.CHANGE]  # one event for the form


async def test_every_form_without_the_sessions_csrf_token_gets_403(site: Site) -> None:
    member_id = join(site, MEMBER)
    async with client(site) as browser:
        await sign_in(site, browser, MEMBER)
        before = unchanged(site)
        for path, data in (
            (f"/account/memberships/{member_id}", {"delivery": "nomail"}),
            (f"/account/memberships/{member_id}/leave", {}),
            ("/account/address", {"new_address": "jane@army.mil"}),
        ):
            for csrf in ({}, {"csrf": "0" * 32}):
                answer = await browser.post(path, data={**data, **csrf})
                assert answer.status_code == 403, path
                assert "Nothing was changed" in main_text(answer.text)
        assert unchanged(site) == before
    assert outbox_to(site.factory, "jane@army.mil") == []


async def test_a_signed_out_browser_is_sent_to_sign_in(site: Site) -> None:
    member_id = join(site, MEMBER)
    async with client(site) as browser:
        for answer in (
            await browser.get("/account"),
            await browser.get("/account/data.json"),
            await browser.post(f"/account/memberships/{member_id}/leave", data={"csrf": "x"}),
        ):
            assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert row(site, member_id) is not None


async def test_another_persons_membership_cannot_be_changed_or_left(site: Site) -> None:
    join(site, MEMBER)
    bobs = join(site, BOB, name="Bob Smith")
    for address in (MEMBER, OWNER):  # a member, and an owner of Bob's list
        async with client(site) as browser:
            signed = await sign_in(site, browser, address)
            before = unchanged(site)
            changed = await browser.post(
                f"/account/memberships/{bobs}",
                data={"csrf": signed.csrf, "delivery": "nomail", "name": "Mallory"},
            )
            left = await browser.post(
                f"/account/memberships/{bobs}/leave", data={"csrf": signed.csrf}
            )
            for answer in (changed, left):
                assert answer.status_code == 404
                assert "That is not one of your memberships." in main_text(answer.text)
            assert unchanged(site) == before
    member = row(site, bobs)
    assert member is not None and member.display_name == "Bob Smith"
    assert member.delivery_mode == DeliveryMode.REGULAR


async def test_leaving_mails_the_goodbye_leaving_by_email_mails(site: Site) -> None:
    member_id = join(site, MEMBER)
    join(site, MEMBER, "other")
    join(site, BOB)
    async with client(site) as browser:
        signed = await sign_in(site, browser, MEMBER)
        answer = await browser.post(
            f"/account/memberships/{member_id}/leave", data={"csrf": signed.csrf}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/account?done=left&list=sm-cop"
        page = await browser.get(answer.headers["location"])
    text = main_text(page.text)
    assert "You have left SM-COP." in text and "OTHER" in text
    assert row(site, member_id) is None
    [record] = audits(site, "member-remove")
    assert (record.actor, record.target, record.channel) == (MEMBER, MEMBER, "web")
    # Bob leaves by email, confirming: the same goodbye, word for word.
    token = unsubscribe_request_token(site, BOB)
    with site.factory() as session, session.begin():
        confirm(site.ctx(session), email_actor(BOB), token)
    [web_goodbye] = [m for m in outbox_to(site.factory, MEMBER) if "left" in str(m["Subject"])]
    [mail_goodbye] = [m for m in outbox_to(site.factory, BOB) if "left" in str(m["Subject"])]
    assert str(web_goodbye["Subject"]) == str(mail_goodbye["Subject"]) == "You have left SM-COP"
    web_body = web_goodbye.get_body(("plain",))
    mail_body = mail_goodbye.get_body(("plain",))
    assert web_body is not None and mail_body is not None
    assert web_body.get_content().replace(MEMBER, "X") == mail_body.get_content().replace(BOB, "X")
    notices = [m for m in outbox_to(site.factory, OWNER) if MEMBER in m.get_body().get_content()]
    assert len(notices) == 1 and "web" in notices[0].get_body().get_content()


@pytest.mark.parametrize(
    ("new_address", "status", "words"),
    [
        ("jane@gmail.com", 400, "gmail.com"),
        ("jane@agency.gov.evil.com", 400, "agency.gov.evil.com"),
        (BOB, 409, f"{BOB} is already a member of SM-COP."),
        ("not an address", 400, "is not an email address"),
        (MEMBER.upper(), 400, "That is already your address."),
    ],
)
async def test_a_new_address_the_lists_would_refuse_is_refused_on_the_page(
    site: Site, new_address: str, status: int, words: str
) -> None:
    join(site, MEMBER)
    join(site, BOB)
    async with client(site) as browser:
        signed = await sign_in(site, browser, MEMBER)
        before = unchanged(site)
        answer = await browser.post(
            "/account/address", data={"csrf": signed.csrf, "new_address": new_address}
        )
    assert answer.status_code == status
    text = main_text(answer.text)
    assert "There is a problem" in text and words in text
    assert 'aria-invalid="true"' in answer.text  # the field is marked
    assert unchanged(site) == before
    assert [
        m for m in outbox_to(site.factory, new_address) if "new address" in str(m["Subject"])
    ] == []


async def test_asking_for_a_new_address_mails_a_link_to_it_and_changes_nothing_yet(
    site: Site,
) -> None:
    member_id = join(site, MEMBER)
    async with client(site) as browser:
        signed = await sign_in(site, browser, MEMBER)
        answer = await browser.post(
            "/account/address", data={"csrf": signed.csrf, "new_address": "Jane.Doe@Army.MIL"}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/account?done=address"
        page = await browser.get("/account?done=address")
    assert "A confirmation link is on its way to your new address." in main_text(page.text)
    [mail] = outbox_to(site.factory, "Jane.Doe@army.mil")  # the local part as typed
    body = mail.get_body(("plain",))
    assert body is not None
    assert f"{site.settings.web.base_url}/confirm/" in body.get_content()
    assert MEMBER in body.get_content() and "SM-COP" in body.get_content()
    member = row(site, member_id)
    assert member is not None and member.address == MEMBER
    with site.factory() as session:
        request = session.scalars(select(PendingRequest)).one()
    assert (request.kind, request.list_id, request.address) == (
        RequestKind.CHANGE_ADDRESS,
        None,
        "Jane.Doe@army.mil",
    )
    [record] = audits(site, "address-change-requested")
    assert (record.actor, record.target, record.channel) == (MEMBER, "Jane.Doe@army.mil", "web")


async def test_the_data_download_holds_what_is_kept_about_the_person_and_no_secrets(
    site: Site,
) -> None:
    member_id = join(site, MEMBER, name="Jane Doe", title="Web manager")
    join(site, BOB, name="Bob Smith")
    hold(site, sender=MEMBER, subject="A question from Jane")
    hold(site, sender=BOB, subject="Bob asks")
    option_token(site, MEMBER, "nomail")
    with site.factory() as session, session.begin():
        session.add(
            BounceEvent(
                list_id=1, member_id=member_id, address=MEMBER, address_key=MEMBER,
                kind="temporary", source="dsn", status_code="4.2.2", diagnostic="mailbox full",
                at=utcnow(),
            )
        )  # fmt: skip
        nonce = session.scalars(
            select(Member.unsubscribe_nonce).where(Member.id == member_id)
        ).one()
    async with client(site) as browser:
        signed = await sign_in(site, browser, MEMBER)
        await browser.post(
            f"/account/memberships/{member_id}",
            data={"csrf": signed.csrf, "delivery": "digest-plain", "name": "Jane Doe", "title": ""},
        )
        before = unchanged(site)
        answer = await browser.get("/account/data.json")
        assert unchanged(site) == before  # GET reads only
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    data = json.loads(answer.text)
    assert data["address"] == MEMBER
    [membership] = data["memberships"]
    assert membership["list"] == "sm-cop" and membership["delivery"] == "digest"
    assert membership["digest_format"] == "plain" and membership["title"] == ""
    assert [e["event"] for e in data["history"]] == ["join", "change"]
    actions = {a["action"] for a in data["audit"]}
    assert {"member-add", "member-change", "sign-in-link-used"} <= actions
    assert [p["subject"] for p in data["posts"]] == ["A question from Jane"]
    assert [(b["status_code"], b["diagnostic"]) for b in data["bounces"]] == [
        ("4.2.2", "mailbox full")
    ]
    # The held post's moderation request (about her post), and her own SET request.
    assert [(r["kind"], r["status"]) for r in data["requests"]] == [
        ("moderate-post", "pending"),
        ("set-option", "pending"),
    ]
    [web_session] = data["sign_in"]["sessions"]
    assert web_session["auth"] == "link" and web_session["ended_at"] is None
    assert "Bob" not in answer.text and BOB not in answer.text
    with site.factory() as session:
        id_hash = session.scalars(select(WebSession.id_hash)).one()
    for secret in (id_hash, nonce, signed.csrf):
        assert secret not in answer.text


async def test_an_unknown_delivery_choice_is_refused_beside_the_field(site: Site) -> None:
    member_id = join(site, MEMBER)
    async with client(site) as browser:
        signed = await sign_in(site, browser, MEMBER)
        before = unchanged(site)
        answer = await browser.post(
            f"/account/memberships/{member_id}",
            data={"csrf": signed.csrf, "delivery": "fax", "name": "Jane"},
        )
    assert answer.status_code == 400
    assert "Choose how you get the list." in main_text(answer.text)
    assert f'href="#delivery-{member_id}"' in answer.text
    assert unchanged(site) == before


async def confirm_by_page(site: Site, address: str) -> httpx.Response:
    """Open the newest confirmation link mailed to `address` and press its button."""
    [mail] = [m for m in outbox_to(site.factory, address) if "new address" in str(m["Subject"])]
    path = confirm_url(mail).removeprefix(site.settings.web.base_url)
    async with client(site) as browser:
        page = await browser.get(path)
        assert page.status_code == 200 and "Use this address" in main_text(page.text)
        return await browser.post(path, data=form_fields(page.text))


async def test_confirming_checks_the_new_address_again_and_changes_nothing_if_refused(
    site: Site,
) -> None:
    member_id = join(site, MEMBER)
    async with client(site) as browser:
        signed = await sign_in(site, browser, MEMBER)
        answer = await browser.post(
            "/account/address", data={"csrf": signed.csrf, "new_address": "jane@army.mil"}
        )
        assert answer.status_code == 303
    join(site, "jane@army.mil")  # meanwhile an owner added the new address
    before = unchanged(site)
    pressed = await confirm_by_page(site, "jane@army.mil")
    assert pressed.status_code == 409
    text = main_text(pressed.text)
    assert "jane@army.mil is already a member of SM-COP. Nothing was changed." in text
    member = row(site, member_id)
    assert member is not None and member.address == MEMBER
    after = unchanged(site)
    assert after["members"] == before["members"]
    assert after["membership_events"] == before["membership_events"]


async def test_after_a_change_the_download_keeps_the_old_address_only_until_it_was_left(
    site: Site,
) -> None:
    member_id = join(site, MEMBER, name="Jane Doe")
    join(site, MEMBER, "other")
    async with client(site) as browser:
        signed = await sign_in(site, browser, MEMBER)
        await browser.post(
            "/account/address", data={"csrf": signed.csrf, "new_address": "jane@army.mil"}
        )
    pressed = await confirm_by_page(site, "jane@army.mil")
    assert pressed.status_code == 200 and "Your address is changed" in main_text(pressed.text)
    member = row(site, member_id)
    assert member is not None and member.address == "jane@army.mil"
    with site.factory() as session:
        moves = session.scalars(
            select(MembershipEvent).where(MembershipEvent.event == MembershipChange.ADDRESS)
        ).all()
        assert sorted((e.address_key, e.previous_address_key) for e in moves) == [
            ("jane@army.mil", MEMBER),
            ("jane@army.mil", MEMBER),
        ]
    [record] = audits(site, "address-changed")
    assert (record.target, record.auth, record.detail["sessions_ended"]) == (
        "jane@army.mil",
        "confirmed-reply",
        1,
    )
    join(site, MEMBER, name="Another Person")  # the old mailbox, given to someone else
    async with client(site) as browser:
        await sign_in(site, browser, "jane@army.mil")
        page = await browser.get("/account")
        assert "SM-COP" in main_text(page.text) and "OTHER" in main_text(page.text)
        data = json.loads((await browser.get("/account/data.json")).text)
    assert data["address"] == "jane@army.mil"
    assert [p["address"] for p in data["previous_addresses"]] == [MEMBER]
    assert [(e["list"], e["event"], e["address"]) for e in data["history"]] == [
        ("sm-cop", "join", MEMBER),
        ("other", "join", MEMBER),
        ("other", "address", "jane@army.mil"),  # moved list by list, in name order
        ("sm-cop", "address", "jane@army.mil"),
    ]
    assert "Another Person" not in json.dumps(data)
    assert {m["list"] for m in data["memberships"]} == {"sm-cop", "other"}
