# SPDX-License-Identifier: Apache-2.0
"""The account page in headless Chromium, without JavaScript and by keyboard: a member
signs in with the mailed link, picks the plain-text digest and a new title, is refused
an address outside the list's domains (the error summary leads to the field), and
leaves; axe-core finds no WCAG 2.1 AA violation on any of these pages."""

from __future__ import annotations

from typing import Any

import pytest

from listserv import roster
from listserv.app import Service
from listserv.lists import get_list
from listserv.models import DeliveryMode
from tests.actors import as_actor
from tests.browser.test_browser import axe_violations, focused
from tests.browser.test_console_browser import ask_for_link, mailed_link
from tests.posting_helpers import JANE, member_row

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def add_jane(service: Service) -> int:
    with service.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        return roster.add_member(
            session, mlist, JANE, name="Jane Doe", title="Analyst", actor=as_actor("test")
        ).id


async def test_a_member_uses_the_account_page_by_keyboard(
    browser: Any, web_service: Service, axe_source: str
) -> None:
    service, base = web_service, web_service.settings.web.base_url
    member_id = add_jane(service)
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    # axe-core is a script and this browser runs none: each page is checked as a copy
    # in a scripted page of the same origin (same stylesheet).
    scripted = await browser.new_context()
    axe_page = await scripted.new_page()
    await axe_page.goto(f"{base}/lists")
    found: dict[str, list[dict[str, Any]]] = {}

    async def check(name: str) -> None:
        await axe_page.set_content(await page.content())
        found[name] = await axe_violations(axe_page, axe_source)

    await ask_for_link(page, base, JANE)
    await page.goto(await mailed_link(service, JANE, 1))
    await page.get_by_role("button", name="Sign in").press("Enter")
    await page.get_by_role("heading", name="Your account").wait_for()
    await check("account")

    # Delivery by arrow keys inside the radio group, then Tab through the fields.
    await page.get_by_label("Each post, as it is sent").focus()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    assert await page.get_by_label("A daily digest in plain text").is_checked()
    order = []
    for _ in range(3):
        await page.keyboard.press("Tab")
        now = await focused(page)
        assert now["outline"] != "none" and now["width"] != "0px", now
        order.append(now["id"] or now["text"])
    assert order == [f"name-{member_id}", f"title-{member_id}", "Save SM-COP settings"]
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("Digital Media Specialist")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.get_by_text("Your settings for SM-COP are saved.").wait_for()
    assert page.url.endswith("/account?done=saved&list=sm-cop")
    await check("saved")
    member = member_row(service, JANE)
    assert member is not None
    assert (member.delivery_mode, member.digest_format) == (DeliveryMode.DIGEST, "plain")
    assert member.job_title == "Digital Media Specialist"

    # An address the list does not take: the summary first, its link leads to the field.
    await page.get_by_label("New email address").fill("jane@example.com")
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="There is a problem").wait_for()
    await check("address refused")
    summary = page.locator(".error-summary a")
    await summary.focus()
    await page.keyboard.press("Enter")
    assert (await focused(page))["id"] == "new_address"

    await page.get_by_role("button", name="Leave SM-COP").press("Enter")
    await page.get_by_text("You have left SM-COP.").wait_for()
    await check("left")
    assert member_row(service, JANE) is None
    assert len(found) == 4 and found == {name: [] for name in found}, found
    await context.close()
    await scripted.close()
