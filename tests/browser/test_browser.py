# SPDX-License-Identifier: Apache-2.0
"""A person in headless Chromium: joins through the form, confirms on the page, leaves
through the List-Unsubscribe link of a list message; keyboard only; axe-core finds no
serious accessibility problem on any page."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from listserv.app import Service
from listserv.models import AuditEvent, Member, MembershipEvent
from tests.conftest import mail_to, make_message, send, settle
from tests.web_helpers import confirm_url

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JANE = "jane.doe@agency.gov"
UNSUBSCRIBE_URL = re.compile(r"<(https?://[^>]+/unsubscribe/[^>]+)>")


def members(service: Service) -> dict[str, tuple[str, str]]:
    with service.factory() as session:
        rows = session.scalars(select(Member).where(Member.role == "member"))
        return {m.address_key: (m.display_name, m.job_title) for m in rows}


def unsubscribe_link(message: EmailMessage) -> str:
    match = UNSUBSCRIBE_URL.search(" ".join(str(message["List-Unsubscribe"]).split()))
    assert match is not None, message["List-Unsubscribe"]
    return match.group(1)


async def join_confirm_and_get_a_post(service: Service, page: Any, base: str) -> EmailMessage:
    """Join by keyboard, confirm by button, post once; returns Jane's copy of the post."""
    await page.goto(f"{base}/lists")
    await page.get_by_role("link", name="SM-COP").click()
    await page.get_by_role("heading", name="SM-COP", exact=True).wait_for()
    assert "Be the first community member to join" in await page.inner_text("main")
    # Keyboard only: tab into the form, type, and submit with Enter.
    await page.get_by_label("Your name").focus()
    await page.keyboard.type("Jane Doe")
    await page.keyboard.press("Tab")
    await page.keyboard.type("Digital Media Specialist")
    await page.keyboard.press("Tab")
    await page.keyboard.type(JANE)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.get_by_role("heading", name="Check your mail").wait_for()
    assert members(service) == {}

    [confirmation] = await mail_to(service, JANE)
    await page.goto(confirm_url(confirmation))
    await page.get_by_role("heading", name="Join SM-COP").wait_for()
    assert "as Jane Doe" in await page.inner_text("main")
    assert members(service) == {}  # opening the page changed nothing
    await page.get_by_role("button", name="Join SM-COP").press("Enter")
    await page.get_by_role("heading", name="Welcome to SM-COP").wait_for()
    assert members(service) == {JANE: ("Jane Doe", "Digital Media Specialist")}
    [_, welcome] = await mail_to(service, JANE, count=2)
    assert welcome["Subject"] == "Welcome to SM-COP"

    # A post to the list reaches Jane with her own one-click link.
    await send(service, make_message(sender=f"Jane Doe <{JANE}>", subject="Hello"))
    copies = await mail_to(service, JANE, count=3)
    [post] = [m for m in copies if "Hello" in str(m["Subject"])]
    assert post["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return post


async def leave_through_the_link(service: Service, page: Any, post: EmailMessage) -> None:
    link = unsubscribe_link(post)
    await page.goto(link)
    await page.get_by_role("heading", name="Leave SM-COP").wait_for()
    assert JANE in await page.inner_text("main")
    assert JANE in members(service)  # the page alone removes nobody
    await page.get_by_role("button", name="Leave SM-COP").click()
    await page.get_by_role("heading", name="You have left SM-COP").wait_for()
    assert page.url == link  # 200 in place, no redirect
    assert members(service) == {}
    await settle(service)
    copies = await mail_to(service, JANE, count=4)
    assert copies[-1]["Subject"] == "You have left SM-COP"
    with service.factory() as session:
        left = session.scalars(select(MembershipEvent).where(MembershipEvent.event == "leave"))
        assert [(e.address_key, e.channel) for e in left] == [(JANE, "web")]
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "member-remove"))
        assert [(a.channel, a.auth) for a in audit] == [("web", "one-click-token")]


async def test_join_confirm_and_leave_in_chromium_without_javascript(
    browser: Any, web_service: Service
) -> None:
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    post = await join_confirm_and_get_a_post(web_service, page, web_service.settings.web.base_url)
    await leave_through_the_link(web_service, page, post)
    await context.close()


async def focused(page: Any) -> dict[str, str]:
    return await page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            return {tag: el.tagName.toLowerCase(), id: el.id, text: el.textContent.trim(),
                    outline: style.outlineStyle, width: style.outlineWidth};
        }"""
    )


async def test_the_list_page_works_by_keyboard_with_a_visible_focus(
    browser: Any, web_service: Service
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{web_service.settings.web.base_url}/lists/sm-cop")
    await page.keyboard.press("Tab")
    skip = await focused(page)
    assert skip["text"] == "Skip to main content" and skip["outline"] != "none"
    await page.keyboard.press("Enter")
    assert (await focused(page))["id"] == "main"
    order = []
    for _ in range(5):
        await page.keyboard.press("Tab")
        now = await focused(page)
        assert now["outline"] != "none" and now["width"] != "0px", now
        order.append(now["id"] or now["text"])
    assert order == ["Read the SM-COP archive", "name", "title", "address", "Join SM-COP"]
    await page.keyboard.press("Enter")  # an empty form: errors, with the summary first
    await page.get_by_role("heading", name="There is a problem").wait_for()
    await page.get_by_role("link", name="Enter your name").click()
    assert (await focused(page))["id"] == "name"
    await context.close()


SERIOUS = {"serious", "critical"}


async def axe_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    await page.evaluate(axe_source)
    result = await page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag',
                      values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
            resultTypes: ['violations'],
        })"""
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


async def test_every_page_passes_axe_with_no_serious_violations(
    browser: Any, web_service: Service, axe_source: str
) -> None:
    base = web_service.settings.web.base_url
    context = await browser.new_context()
    page = await context.new_page()
    found: dict[str, list[dict[str, Any]]] = {}

    async def check(name: str) -> None:
        found[name] = await axe_violations(page, axe_source)

    await page.goto(f"{base}/lists")
    await check("lists")
    await page.goto(f"{base}/lists/sm-cop")
    await check("list")
    await page.get_by_role("button", name="Join SM-COP").click()
    await page.get_by_role("heading", name="There is a problem").wait_for()
    await check("list with errors")
    await page.get_by_label("Your name").fill("Jane Doe")
    await page.get_by_label("Your work email address").fill(JANE)
    await page.get_by_role("button", name="Join SM-COP").click()
    await page.get_by_role("heading", name="Check your mail").wait_for()
    await check("check your mail")
    [confirmation] = await mail_to(web_service, JANE)
    await page.goto(confirm_url(confirmation))
    await check("confirm")
    await page.get_by_role("button", name="Join SM-COP").click()
    await page.get_by_role("heading", name="Welcome to SM-COP").wait_for()
    await check("welcome")
    with web_service.factory() as session:
        member = session.scalars(select(Member).where(Member.address_key == JANE)).one()
        from listserv.tokens import unsubscribe_token

        token = unsubscribe_token(
            web_service.settings.site.secret.get(), member.id, "sm-cop", member.unsubscribe_nonce
        )
    await page.goto(f"{base}/unsubscribe/sm-cop/{token}")
    await check("unsubscribe")
    await page.get_by_role("button", name="Leave SM-COP").click()
    await page.get_by_role("heading", name="You have left SM-COP").wait_for()
    await check("left")
    await page.goto(f"{base}/confirm/{'d' * 32}")
    await check("unknown link")
    await context.close()

    serious = {
        name: [v for v in violations if v["impact"] in SERIOUS]
        for name, violations in found.items()
    }
    assert serious == {name: [] for name in found}, serious
    assert found == {name: [] for name in found}, f"minor findings: {found}"
