# SPDX-License-Identifier: Apache-2.0
"""A member changes their address, end to end over real sockets: sign in with the mailed
link, ask on the account page, confirm from the link mailed to the new address, and the
next post reaches the new address once and the old one not at all; an ineligible address
is refused; the membership history keeps both addresses under one member."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from listserv.app import Service
from listserv.config import Settings
from listserv.models import DeliveryMode
from tests.admin_helpers import run_cli, write_config
from tests.conftest import mail_to, make_message, read_maildir, send, settle, wait_for
from tests.console_helpers import form_fields
from tests.posting_helpers import BOB, add_member, member_row
from tests.web_helpers import confirm_url, main_text, start_web_service

OLD = "jane.doe@agency.gov"
NEW = "jane.doe@army.mil"
LINK = re.compile(r"(https?://\S+/login/[a-z2-7]{32})")


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with start_web_service(settings) as service:
        yield service


def base(service: Service) -> str:
    return service.settings.web.base_url


def new_browser(service: Service) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base(service), headers={"Origin": base(service)})


async def sign_in(service: Service, browser: httpx.AsyncClient, address: str) -> str:
    """Sign the browser in with the link mailed to `address`; its CSRF token."""
    asked = await browser.post("/login", data={"address": address})
    assert asked.status_code == 200

    def sign_in_mails() -> list[EmailMessage]:
        return [
            m
            for _, m in read_maildir(service.settings.delivery.maildir)
            if m["Delivered-To"] == address and "sign-in" in str(m["Subject"])
        ]

    [mail] = await wait_for(sign_in_mails)
    body = mail.get_body(("plain",))
    assert body is not None
    match = LINK.search(body.get_content())
    assert match is not None
    page = await browser.get(match.group(1))
    pressed = await browser.post(match.group(1), data=form_fields(page.text))
    assert pressed.status_code == 303 and pressed.headers["location"] == "/account"
    account = await browser.get("/account")
    assert account.status_code == 200
    return form_fields(account.text, 0)["csrf"]


def copies(service: Service, subject: str) -> dict[str, int]:
    """How many copies of the post with this subject each address got."""
    counts: dict[str, int] = {}
    for _, message in read_maildir(service.settings.delivery.maildir):
        if subject in str(message["Subject"]):
            to = str(message["Delivered-To"])
            counts[to] = counts.get(to, 0) + 1
    return counts


async def test_a_member_changes_address_and_receives_the_next_post_once(
    service: Service, db_url: str, tmp_path: Path
) -> None:
    member_id = add_member(service, OLD, "Jane Doe", delivery_mode=DeliveryMode.REGULAR)
    add_member(service, BOB, "Bob Smith")
    async with new_browser(service) as browser:
        csrf = await sign_in(service, browser, OLD)
        asked = await browser.post("/account/address", data={"csrf": csrf, "new_address": NEW})
        assert asked.status_code == 303
        [confirmation] = await mail_to(service, NEW)
        url = confirm_url(confirmation)
        assert url.startswith(base(service) + "/confirm/")
        before_press = datetime.now(UTC).replace(tzinfo=None)
        # The link's GET (a mail gateway's fetch) shows a button and moves nothing.
        async with httpx.AsyncClient() as gateway:
            shown = await gateway.get(url)
        assert shown.status_code == 200 and "Use this address" in main_text(shown.text)
        assert member_row(service, OLD) is not None and member_row(service, NEW) is None
        async with httpx.AsyncClient(headers={"Origin": base(service)}) as new_mailbox:
            done = await new_mailbox.post(url, data=form_fields(shown.text))
        assert done.status_code == 200, done.text
        assert "Your address is changed" in main_text(done.text)
        # The old address's session has ended: it no longer proves who this is.
        ended = await browser.get("/account")
        assert ended.status_code == 303 and ended.headers["location"] == "/login?ended=1"

    moved = member_row(service, NEW)
    assert moved is not None and moved.id == member_id and moved.display_name == "Jane Doe"
    assert member_row(service, OLD) is None
    [told] = [m for m in await mail_to(service, OLD, 2) if "moved" in str(m["Subject"])]
    assert NEW in str(told["Subject"])

    await send(service, make_message(sender=f"Bob Smith <{BOB}>", subject="After the move"))
    await mail_to(service, NEW, 2)
    await settle(service)
    assert copies(service, "After the move") == {NEW: 1, BOB: 1}

    # The new address signs in and finds the list, with the settings the old one had.
    async with new_browser(service) as browser:
        await sign_in(service, browser, NEW)
        page = await browser.get("/account")
    assert "SM-COP" in main_text(page.text) and 'value="Jane Doe"' in page.text

    # The history: one member under both addresses, on the host as in the listing at a moment.
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "cli-var")
    shown_member = run_cli(config, "members", "show", "sm-cop", NEW, "--json")
    assert shown_member.code == 0, shown_member.stderr
    [record] = shown_member.json()
    assert [(e["event"], e["address"]) for e in record["history"]] == [
        ("join", OLD),
        ("address", NEW),
    ]
    now = datetime.now(UTC).replace(tzinfo=None).isoformat() + "Z"
    listing = run_cli(config, "members", "list", "sm-cop", "--at", now, "--json")
    assert listing.code == 0, listing.stderr
    listed = listing.json()
    assert [(m["address"], m["previously"]) for m in listed] == [(BOB, ""), (NEW, OLD)]
    earlier = before_press.isoformat() + "Z"
    then = run_cli(config, "members", "list", "sm-cop", "--at", earlier, "--json").json()
    assert [m["address"] for m in then] == [BOB, OLD]


async def test_an_ineligible_new_address_is_refused_and_mailed_nothing(service: Service) -> None:
    add_member(service, OLD, "Jane Doe")
    async with new_browser(service) as browser:
        csrf = await sign_in(service, browser, OLD)
        for address in ("jane@example.com", "jane@agency.gov.example.com"):
            refused = await browser.post(
                "/account/address", data={"csrf": csrf, "new_address": address}
            )
            assert refused.status_code == 400
            assert "There is a problem" in main_text(refused.text)
    await settle(service)
    delivered = {str(m["Delivered-To"]) for _, m in read_maildir(service.settings.delivery.maildir)}
    assert delivered == {OLD}  # the sign-in link only
    assert member_row(service, OLD) is not None
