# SPDX-License-Identifier: Apache-2.0
"""The archive in headless Chromium: a post carrying scripts, event handlers,
`javascript:` links and remote images runs and loads none of them, and axe-core
finds no serious problem on the months, month, post and search pages."""

from __future__ import annotations

from typing import Any

import pytest

from listserv.app import Service
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import ArchiveAccess
from listserv.templates import Templates
from tests.archive_helpers import T0, archive_raw, raw_post
from tests.browser.test_browser import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE = """<html><body>
<p>Hello <b>all</b>, see <a href="https://www.archives.gov/">the archives</a>.</p>
<script>window.ran = 'script';</script>
<img src="https://tracker.example.com/pixel.gif" onerror="window.ran = 'onerror'">
<img src="x" onerror="window.ran = 'onerror'">
<a id="js" href="javascript:window.ran='link'">click me</a>
<svg onload="window.ran = 'svg'"></svg>
<div style="background:url(https://tracker.example.com/bg.png)">styled</div>
<form action="https://evil.example.com/"><input name="password"></form>
</body></html>"""


def _seed(service: Service) -> None:
    with service.factory() as session:
        ctx = Context(session=session, settings=service.settings, templates=Templates())
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        mlist.archive_access = ArchiveAccess.PUBLIC
        archive_raw(
            ctx,
            mlist,
            raw_post(1, "Records schedules", "Who has a schedule for Instagram?"),
            raw_post(
                2,
                "Re: Records schedules",
                "GRS 6.4 covers it.",
                date=T0.replace(hour=10),
                refs="<post1@agency.gov>",
            ),
            raw_post(3, "Hostile mail", HOSTILE, content_type="text/html; charset=utf-8"),
        )
        session.commit()


async def test_hostile_mail_runs_and_loads_nothing_and_pages_pass_axe(
    browser: Any, web_service: Service, axe_source: str
) -> None:
    _seed(web_service)
    base = web_service.settings.web.base_url
    context = await browser.new_context()
    page = await context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    found: dict[str, list[dict[str, Any]]] = {}

    await page.goto(f"{base}/lists/sm-cop/archive")
    found["months"] = await axe_violations(page, axe_source)
    await page.get_by_role("link", name="March 2026", exact=True).click()
    await page.get_by_role("heading", name="SM-COP archive: March 2026").wait_for()
    found["month"] = await axe_violations(page, axe_source)
    await page.get_by_role("link", name="Hostile mail").click()
    await page.get_by_role("heading", name="Hostile mail").wait_for()
    requested_before = list(requested)
    found["post"] = await axe_violations(page, axe_source)  # axe itself is our evaluate
    assert await page.evaluate("() => window.ran === undefined")
    await page.get_by_text("click me").click()
    assert await page.evaluate("() => window.ran === undefined")
    assert await page.locator("article img, article svg, article form, article script").count() == 0
    await page.get_by_label("Search the SM-COP archive").fill('"records schedule"')
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("heading", name="Results").wait_for()
    assert await page.locator("mark").count() >= 1
    found["search"] = await axe_violations(page, axe_source)
    await context.close()

    outside = [url for url in requested_before if not url.startswith(base)]
    assert outside == [], outside
    serious = {
        name: [v for v in violations if v["impact"] in {"serious", "critical"}]
        for name, violations in found.items()
    }
    assert all(not v for v in serious.values()), serious
