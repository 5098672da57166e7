# SPDX-License-Identifier: Apache-2.0
"""The console in headless Chromium, without JavaScript: an owner signs in with the link
from the Maildir and a TOTP code computed from the enrolment secret, approves a held post
that then reaches the members; the refusals (roles, other lists, replayed and wrong codes,
used and expired links, a POST without CSRF, the idle timeout) answer as they should; and
axe-core finds no WCAG 2.1 AA violation on any console page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select, update

from listserv import roster
from listserv.app import Service
from listserv.lists import get_list
from listserv.models import Post, PostStatus, SignInLink, TotpSecret, WebSession, utcnow
from tests.actors import as_actor
from tests.browser.test_browser import axe_violations
from tests.conftest import mail_to, make_message, read_maildir, send, settle, wait_for
from tests.console_helpers import MODERATOR, OWNER, SECRET_ON_PAGE, console_settings, wrong_code
from tests.web_helpers import start_web_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JANE = "jane.doe@agency.gov"
LINK = re.compile(r"(https?://\S+/login/[a-z2-7]{32})")


SCRIPT_SUBJECT = '<script>alert("subject")</script>'


def script_post() -> Any:
    message = make_message(sender="Mallory <mallory@agency.gov>", subject=SCRIPT_SUBJECT)
    message.add_alternative(
        '<p>Hi</p><script>alert("body")</script><img src="x" onerror="alert(1)">',
        subtype="html",
    )
    return message


@pytest.fixture
async def console_service(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    async with start_web_service(console_settings(sqlite_url, tmp_path / "var")) as service:
        with service.factory() as session, session.begin():
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            roster.add_member(session, mlist, JANE, name="Jane Doe", actor=as_actor("test"))
        yield service


async def mailed_link(service: Service, address: str, count: int) -> str:
    """The link in the `count`th sign-in mail to `address`, read from the Maildir."""
    maildir = service.settings.delivery.maildir

    def sign_in_mails() -> list[Any]:
        mails = [
            m
            for _, m in read_maildir(maildir)
            if m["Delivered-To"] == address and "sign-in link" in str(m["Subject"])
        ]
        return mails if len(mails) >= count else []

    mails = await wait_for(sign_in_mails)
    body = mails[count - 1].get_body(("plain",))
    assert body is not None
    match = LINK.search(body.get_content())
    assert match is not None, body.get_content()
    return match.group(1)


async def ask_for_link(page: Any, base: str, address: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Your email address").fill(address)
    await page.get_by_role("button", name="Send me a sign-in link").click()
    await page.get_by_role("heading", name="Check your mail").wait_for()


def totp_step(service: Service, address: str) -> int:
    with service.factory() as session:
        return (
            session.scalar(select(TotpSecret.last_step).where(TotpSecret.address_key == address))
            or 0
        )


async def fresh_code(service: Service, address: str, secret: str) -> str:
    """A code of a step after the last one used (waits out the half-minute if need be)."""
    last = totp_step(service, address)
    now = int(utcnow().timestamp()) // 30
    step = max(now - 1, last + 1)
    if step > now + 1:
        await wait_for(lambda: int(utcnow().timestamp()) // 30 >= step - 1, timeout=35)
    return pyotp.TOTP(secret).generate_otp(step)


async def test_an_owner_signs_in_and_approves_a_held_post_that_reaches_the_members(
    browser: Any, console_service: Service, axe_source: str
) -> None:
    service, base = console_service, console_service.settings.web.base_url
    await send(
        service, make_message(sender="Sam Stranger <sam@agency.gov>", subject="Held for you")
    )
    await send(service, script_post())
    await settle(service)
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    found: dict[str, list[dict[str, Any]]] = {}
    # axe-core is a script and this browser runs none: each page the person sees is
    # checked as a copy in a scripted page of the same origin (same stylesheet).
    scripted = await browser.new_context()
    axe_page = await scripted.new_page()
    await axe_page.goto(f"{base}/lists")

    async def check(name: str) -> None:
        await axe_page.set_content(await page.content())
        found[name] = await axe_violations(axe_page, axe_source)

    await ask_for_link(page, base, OWNER)
    await check("check your mail")
    link = await mailed_link(service, OWNER, 1)
    await page.goto(link)
    await page.get_by_role("heading", name="Sign in as owner@digital.gov").wait_for()
    await check("sign-in link")
    await page.get_by_role("button", name="Sign in").press("Enter")  # keyboard
    await page.get_by_role("heading", name="Set up your second factor").wait_for()
    await check("enrol")
    match = SECRET_ON_PAGE.search(await page.content())
    assert match is not None
    secret = match.group(1)
    assert f"secret={secret}" in await page.inner_text("main")
    await page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on the second factor").click()
    await page.get_by_role("heading", name="Your recovery codes").wait_for()
    await check("recovery codes")
    await page.get_by_role("link", name="Continue to the lists you manage").click()
    await page.get_by_role("heading", name="Lists you manage").wait_for()
    await check("admin")
    await page.get_by_role("link", name="SM-COP", exact=True).click()
    await page.get_by_role("heading", name="SM-COP", exact=True).wait_for()
    await check("dashboard")
    await page.get_by_role("link", name="Held posts", exact=True).first.click()
    await page.get_by_role("link", name="Held for you").wait_for()
    await check("held queue")
    await page.get_by_role("link", name=SCRIPT_SUBJECT).click()
    await page.get_by_text("HTML as sent").click()  # <details> opens without script
    main = await page.inner_text("main")
    assert SCRIPT_SUBJECT in main and 'onerror="alert(1)"' in main  # shown, as text
    assert await page.locator("main script, main img, main [onerror]").count() == 0
    await page.go_back()
    await page.get_by_role("link", name="Held for you").click()
    await page.get_by_role("button", name="Approve").wait_for()
    await check("held post")
    await page.get_by_role("button", name="Approve", exact=True).click()
    await page.get_by_text("approved; it goes to 1 member(s)").wait_for()
    assert (await page.goto(f"{base}/admin/lists/other/held")).status == 404
    [copy] = await mail_to(service, JANE)
    assert copy["Subject"] == "[SM-COP] Held for you"
    assert copy["List-Id"] is not None and "FOIA" in copy.as_string().upper()
    with service.factory() as session:
        statuses = session.scalars(select(Post.status).order_by(Post.id)).all()
        assert statuses == [PostStatus.ACCEPTED, PostStatus.HELD]
    for name, path in (
        ("requests", "/requests"),
        ("settings", "/settings"),
        ("bans", "/bans"),
        ("bounces", "/bounces"),
        ("audit", "/audit"),
        ("members", "/members"),
    ):
        await page.goto(f"{base}/admin/lists/sm-cop{path}")
        await check(name)
    await page.get_by_role("link", name=JANE).click()
    await page.get_by_role("heading", name=re.compile(JANE)).wait_for()
    await check("member")
    await page.goto(f"{base}/admin/lists/sm-cop/settings")
    await page.get_by_role("button", name="Turn the legal hold on").click()
    await page.get_by_role("heading", name="Put SM-COP under legal hold?").wait_for()
    await check("confirm legal hold")
    await page.get_by_role("button", name="Yes, turn the legal hold on").click()
    await page.get_by_text("The legal hold of SM-COP is now on.").wait_for()
    await page.goto(f"{base}/account")
    await check("account")
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await page.get_by_role("heading", name="You have signed out").wait_for()
    await check("signed out")
    await page.goto(f"{base}/login/{'a' * 32}")
    await check("unknown link")
    await context.close()
    await scripted.close()
    assert len(found) == 19 and found == {name: [] for name in found}, found


async def test_refusals_in_the_browser(browser: Any, console_service: Service) -> None:
    service, base = console_service, console_service.settings.web.base_url
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    # A moderator enrols, then cannot open the settings or the roster.
    await ask_for_link(page, base, MODERATOR)
    await page.goto(await mailed_link(service, MODERATOR, 1))
    await page.get_by_role("button", name="Sign in").click()
    match = SECRET_ON_PAGE.search(await page.content())
    assert match is not None
    secret = match.group(1)
    await page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Turn on the second factor").click()
    await page.get_by_role("heading", name="Your recovery codes").wait_for()
    for path in (
        "/admin/lists/sm-cop/settings",
        "/admin/lists/sm-cop/members",
        "/admin/lists/other/held",
    ):
        response = await page.goto(f"{base}{path}")
        assert response.status == 404, path
    held = await page.goto(f"{base}/admin/lists/sm-cop/held")
    assert held.status == 200
    # A POST without its CSRF token: 403 (the browser's own cookie goes with it).
    refused = await context.request.post(
        f"{base}/admin/lists/sm-cop/held", form={"action": "approve", "post": "1"}
    )
    assert refused.status == 403
    # The idle timeout: the next console page asks to sign in again.
    with service.factory() as session, session.begin():
        session.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    await page.goto(f"{base}/admin/lists/sm-cop/held")
    await page.get_by_text("Your session has ended. Sign in again").wait_for()
    # A used link, and an expired one: 410 with what to do next.
    used = await page.goto(await mailed_link(service, MODERATOR, 1))
    assert used.status == 410
    await page.get_by_role("link", name="Ask for a new sign-in link").wait_for()
    await ask_for_link(page, base, MODERATOR)
    link = await mailed_link(service, MODERATOR, 2)
    with service.factory() as session, session.begin():
        session.execute(update(SignInLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = await page.goto(link)
    assert expired.status == 410 and "has expired" in await page.inner_text("main")
    # A replayed code, then wrong codes up to the lock: the sixth is refused.
    await ask_for_link(page, base, MODERATOR)
    await page.goto(await mailed_link(service, MODERATOR, 3))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="Enter your code").wait_for()
    used_code = pyotp.TOTP(secret).generate_otp(totp_step(service, MODERATOR))
    answers = []
    for typed in (
        [used_code] + [wrong_code(secret)] * 4 + [await fresh_code(service, MODERATOR, secret)]
    ):
        await page.get_by_label("Code or recovery code").fill(typed)
        async with page.expect_response(lambda r: r.request.method == "POST") as posted:
            await page.get_by_role("button", name="Continue").click()
        answers.append((await posted.value).status)
        await page.get_by_role("heading", name="Enter your code").wait_for()
    assert answers == [400, 400, 400, 400, 429, 429]
    assert "locked until" in await page.inner_text("main")
    await context.close()
