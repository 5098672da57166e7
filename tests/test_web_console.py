# SPDX-License-Identifier: Apache-2.0
"""The console over HTTP: who sees what, held posts, requests, members, charts.

Each test signs in the whole way (mailed link, TOTP) and works through the
pages' own forms; the acts beneath are tested on their own elsewhere, so
these check that the console calls them as the signed-in person, shows
their refusals, and shows nothing to those who may not see it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from listserv.models import (
    AuditEvent,
    Ban,
    Member,
    PendingRequest,
    Post,
    PostStatus,
    RequestStatus,
)
from tests.console_helpers import (
    ADMIN,
    MEMBER,
    MODERATOR,
    OTHER_OWNER,
    OWNER,
    Session,
    console_settings,
    hold,
    request_awaiting,
    sign_in,
)
from tests.web_helpers import (
    Site,
    add_member,
    main_text,
    open_site,
    outbox_to,
    parse_page,
    snapshot,
)


@pytest.fixture
async def site(db_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(console_settings(db_url, tmp_path / "var")) as site:
        add_member(site, MEMBER, "Jane Doe")
        yield site


@pytest.fixture
async def owner(site: Site) -> AsyncIterator[Session]:
    async with site.client_from("198.51.100.20") as browser:
        yield await sign_in(site, browser, OWNER)


def status_of(site: Site, post_id: int) -> str:
    with site.factory() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post.status


def audited(site: Site, action: str) -> list[tuple[str, str, str, str]]:
    with site.factory() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action))
        return [(a.actor, a.channel, a.auth, a.target) for a in rows]


async def test_admin_lists_what_waits_on_each_list(site: Site, owner: Session) -> None:
    hold(site)
    hold(site, subject="Another")
    request_awaiting(site, "bob@example.com")
    page = await owner.client.get("/admin")
    assert page.status_code == 200
    text = main_text(page.text)
    assert "SM-COP 1 2 held posts on SM-COP 1 open requests on SM-COP" in text
    assert "OTHER" not in text


async def test_an_owner_approves_a_held_post_and_it_goes_to_the_members(
    site: Site, owner: Session
) -> None:
    post_id = hold(site, subject="Please approve me")
    [notice] = [m for m in outbox_to(site.factory, OWNER) if "awaits approval" in str(m["Subject"])]
    link = f"{site.settings.web.base_url}/admin/lists/sm-cop/held/{post_id}"
    assert link in notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    queue = await owner.client.get("/admin/lists/sm-cop/held")
    assert "Please approve me" in main_text(queue.text)
    shown = await owner.client.get(f"/admin/lists/sm-cop/held/{post_id}")
    assert "Hello, list." in main_text(shown.text)
    done = await owner.client.post(
        f"/admin/lists/sm-cop/held/{post_id}", data={"csrf": owner.csrf, "action": "approve"}
    )
    assert done.status_code == 200
    assert f"Post {post_id} approved" in main_text(done.text)
    assert status_of(site, post_id) == PostStatus.ACCEPTED
    copies = [
        m for m in outbox_to(site.factory, MEMBER) if "Please approve me" in str(m["Subject"])
    ]
    assert len(copies) == 1
    assert audited(site, "post-approved") == [(OWNER, "web", "link+totp", f"post:{post_id}")]
    again = await owner.client.post(
        f"/admin/lists/sm-cop/held/{post_id}", data={"csrf": owner.csrf, "action": "approve"}
    )
    assert again.status_code == 409 and "already handled by owner@digital.gov" in again.text


async def test_several_posts_are_rejected_at_once_with_a_reason(site: Site, owner: Session) -> None:
    first, second = hold(site, sender="a@agency.gov"), hold(site, sender="b@agency.gov")
    done = await owner.client.post(
        "/admin/lists/sm-cop/held",
        data={
            "csrf": owner.csrf,
            "action": "reject",
            "reason": "Off topic",
            "post": [first, second],
        },
    )
    assert done.status_code == 200
    assert {status_of(site, first), status_of(site, second)} == {PostStatus.REJECTED}
    notice = outbox_to(site.factory, "a@agency.gov")[-1]
    assert "Off topic" in notice.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    empty = await owner.client.post(
        "/admin/lists/sm-cop/held", data={"csrf": owner.csrf, "action": "approve"}
    )
    assert "Select at least one post" in main_text(empty.text)


async def test_ban_sender_bans_and_discards(site: Site, owner: Session) -> None:
    post_id = hold(site, sender="spammer@agency.gov")
    done = await owner.client.post(
        f"/admin/lists/sm-cop/held/{post_id}", data={"csrf": owner.csrf, "action": "ban"}
    )
    assert "spammer@agency.gov is banned" in main_text(done.text)
    assert status_of(site, post_id) == PostStatus.DISCARDED
    with site.factory() as session:
        assert session.scalars(select(Ban.pattern)).all() == ["spammer@agency.gov"]


async def test_a_held_post_with_script_shows_it_as_text(site: Site, owner: Session) -> None:
    post_id = hold(
        site,
        subject='<script>alert("subject")</script>',
        html='<p>Hi</p><script>alert("body")</script><img src="https://evil.example/x.png" onerror="alert(1)">'
        '<a href="javascript:alert(2)">click</a>',
    )
    for path in ("/admin/lists/sm-cop/held", f"/admin/lists/sm-cop/held/{post_id}"):
        page = await owner.client.get(path)
        assert page.status_code == 200
        parsed = parse_page(page.text)
        assert parsed.scripts == 0 and parsed.inline == 0, path
        main = page.text[page.text.find("<main") : page.text.find("</main>")]
        assert "<script" not in main and "<img" not in main
        assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt;" in page.text
    assert "onerror=&#34;alert(1)&#34;" in page.text  # the source, as text
    assert "javascript:" not in page.text.replace("javascript:alert(2)&#34;", "")
    assert "evil.example/x.png&#34;" in page.text and 'src="https://evil' not in page.text


async def test_a_moderator_sees_held_posts_and_requests_only(site: Site) -> None:
    post_id = hold(site)
    async with site.client_from("198.51.100.21") as browser:
        moderator = await sign_in(site, browser, MODERATOR)
        admin = await browser.get("/admin")
        assert 'href="/admin/lists/sm-cop/held"' in admin.text
        for path in (
            "/admin/lists/sm-cop/held",
            f"/admin/lists/sm-cop/held/{post_id}",
            "/admin/lists/sm-cop/requests",
        ):
            assert (await browser.get(path)).status_code == 200, path
        for path in (
            "/admin/lists/sm-cop",
            "/admin/lists/sm-cop/members",
            "/admin/lists/sm-cop/members.csv",
            "/admin/lists/sm-cop/settings",
        ):
            assert (await browser.get(path)).status_code == 404, path
        page = await browser.get(f"/admin/lists/sm-cop/held/{post_id}")
        assert "Ban sender" not in page.text
        refused = await browser.post(
            "/admin/lists/sm-cop/members", data={"csrf": moderator.csrf, "address": "x@agency.gov"}
        )
        assert refused.status_code == 404
        done = await browser.post(
            f"/admin/lists/sm-cop/held/{post_id}",
            data={"csrf": moderator.csrf, "action": "discard"},
        )
        assert done.status_code == 200 and status_of(site, post_id) == PostStatus.DISCARDED


async def test_an_owner_of_one_list_gets_404_on_another(site: Site, owner: Session) -> None:
    for path in (
        "/admin/lists/other",
        "/admin/lists/other/held",
        "/admin/lists/other/members",
        "/admin/lists/other/requests",
        "/admin/lists/nosuch/held",
    ):
        assert (await owner.client.get(path)).status_code == 404, path
    post = await owner.client.post(
        "/admin/lists/other/held", data={"csrf": owner.csrf, "action": "approve", "post": "1"}
    )
    assert post.status_code == 404
    async with site.client_from("198.51.100.22") as browser:
        await sign_in(site, browser, OTHER_OWNER)
        assert (await browser.get("/admin/lists/sm-cop/held")).status_code == 404
        assert (await browser.get("/admin/lists/other")).status_code == 200


async def test_a_site_admin_manages_every_list(site: Site) -> None:
    async with site.client_from("198.51.100.23") as browser:
        await sign_in(site, browser, ADMIN)
        text = main_text((await browser.get("/admin")).text)
        assert "SM-COP" in text and "OTHER" in text
        assert (await browser.get("/admin/lists/other/members")).status_code == 200


async def test_requests_are_approved_or_rejected_with_a_reason(site: Site, owner: Session) -> None:
    bob = request_awaiting(site, "bob@example.com", "Bob Outsider")
    carol = request_awaiting(site, "carol@example.org", "Carol")
    page = await owner.client.get("/admin/lists/sm-cop/requests")
    text = main_text(page.text)
    assert "bob@example.com" in text and "Bob Outsider" in text and "outside who may join" in text
    done = await owner.client.post(
        f"/admin/lists/sm-cop/requests/{bob}", data={"csrf": owner.csrf, "action": "approve"}
    )
    assert done.status_code == 200
    refused = await owner.client.post(
        f"/admin/lists/sm-cop/requests/{carol}",
        data={
            "csrf": owner.csrf,
            "action": "reject",
            "reason": "Contractors join via their agency",
        },
    )
    assert refused.status_code == 200
    with site.factory() as session:
        statuses = dict(session.execute(select(PendingRequest.id, PendingRequest.status)).all())
        keys = set(session.scalars(select(Member.address_key)))
    assert statuses[bob] == RequestStatus.DONE and statuses[carol] == RequestStatus.REJECTED
    assert "bob@example.com" in keys and "carol@example.org" not in keys
    told = outbox_to(site.factory, "carol@example.org")[-1].get_body(("plain",))
    assert told is not None and "Contractors join via their agency" in told.get_content()
    twice = await owner.client.post(
        f"/admin/lists/sm-cop/requests/{bob}", data={"csrf": owner.csrf, "action": "reject"}
    )
    assert twice.status_code == 409 and "already handled" in main_text(twice.text)


async def test_members_are_searched_filtered_and_paginated(site: Site, owner: Session) -> None:
    for n in range(60):
        add_member(site, f"person{n:02d}@agency.gov", f"Person Number{n:02d}")
    found = await owner.client.get("/admin/lists/sm-cop/members", params={"q": "NUMBER1"})
    text = main_text(found.text)
    assert "10 row(s) found" in text and "person15@agency.gov" in text
    assert "person25@agency.gov" not in text
    owners = await owner.client.get("/admin/lists/sm-cop/members", params={"role": "owner"})
    assert "1 row(s) found" in main_text(owners.text)
    first = await owner.client.get("/admin/lists/sm-cop/members")
    assert "Page 1 of 2" in main_text(first.text) and "person48@agency.gov" not in first.text
    second = await owner.client.get("/admin/lists/sm-cop/members", params={"page": "2"})
    assert "person55@agency.gov" in second.text
    wild = await owner.client.get("/admin/lists/sm-cop/members", params={"q": "%"})
    assert "0 row(s) found" in main_text(wild.text)
    # The search answers from memory, and sees every change to the roster at once.
    await owner.client.post(
        "/admin/lists/sm-cop/members",
        data={"csrf": owner.csrf, "address": "new.person@agency.gov", "name": "Zed Number99"},
    )
    again = await owner.client.get("/admin/lists/sm-cop/members", params={"q": "number9"})
    assert "1 row(s) found" in main_text(again.text) and "new.person@agency.gov" in again.text


async def test_adding_refuses_what_the_act_refuses_and_force_admits(
    site: Site, owner: Session
) -> None:
    refused = await owner.client.post(
        "/admin/lists/sm-cop/members", data={"csrf": owner.csrf, "address": "bob@gmail.com"}
    )
    assert refused.status_code == 400
    assert "There is a problem" in refused.text and ".gov" in main_text(refused.text)
    assert 'value="bob@gmail.com"' in refused.text  # the form keeps what was typed
    forced = await owner.client.post(
        "/admin/lists/sm-cop/members",
        data={"csrf": owner.csrf, "address": "bob@gmail.com", "name": "Bob", "force": "yes"},
    )
    assert forced.status_code == 200 and "bob@gmail.com is now a member" in forced.text
    with site.factory() as session:
        bob = session.scalars(select(Member).where(Member.address_key == "bob@gmail.com")).one()
    assert not [m for m in outbox_to(site.factory, "bob@gmail.com")]  # welcome unticked
    changed = await owner.client.post(
        f"/admin/lists/sm-cop/members/{bob.id}",
        data={"csrf": owner.csrf, "action": "delivery", "delivery": "digest"},
    )
    assert "now gets DIGEST" in main_text(changed.text)
    bad_date = await owner.client.post(
        f"/admin/lists/sm-cop/members/{bob.id}",
        data={"csrf": owner.csrf, "action": "suspend", "until": "soon"},
    )
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in main_text(bad_date.text)
    removed = await owner.client.post(
        f"/admin/lists/sm-cop/members/{bob.id}",
        data={"csrf": owner.csrf, "action": "remove", "note": "left the agency"},
    )
    assert "bob@gmail.com was removed" in main_text(removed.text)
    assert [a[:3] for a in audited(site, "member-remove")] == [(OWNER, "web", "link+totp")]


async def test_a_csv_import_reports_every_refused_line(site: Site, owner: Session) -> None:
    csv = (
        "address,name\n"
        "ann@agency.gov,Ann\n"
        "not-an-address,Nobody\n"
        "bob@gmail.com,Bob\n"
        "ann@agency.gov,Ann again\n"
        f"{MEMBER},Jane\n"
    )
    done = await owner.client.post(
        "/admin/lists/sm-cop/members/import",
        data={"csrf": owner.csrf},
        files={"file": ("roster.csv", csv.encode(), "text/csv")},
    )
    assert done.status_code == 200, done.text
    text = main_text(done.text)
    assert "added 1, already members 1, duplicates in file 1, refused 2" in text
    assert "3 not-an-address" in text and "4 bob@gmail.com" in text
    exported = await owner.client.get("/admin/lists/sm-cop/members.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "ann@agency.gov,Ann," in exported.text


async def test_oversized_form_posts_and_uploads_get_413(site: Site, owner: Session) -> None:
    big = b"x@agency.gov\n" * (site.settings.smtp.max_message_size // 13 + 10)
    upload = await owner.client.post(
        "/admin/lists/sm-cop/members/import",
        data={"csrf": owner.csrf},
        files={"file": ("big.csv", big, "text/csv")},
    )
    assert upload.status_code == 413 and "more data than this site accepts" in upload.text
    form = await owner.client.post(
        "/admin/lists/sm-cop/members", data={"csrf": owner.csrf, "name": "x" * 100_000}
    )
    assert form.status_code == 413


async def test_the_dashboard_draws_charts_with_tables(site: Site, owner: Session) -> None:
    for n in range(3):
        add_member(site, f"p{n}@agency.gov")
    with site.factory() as session:
        p0 = session.scalars(select(Member.id).where(Member.address_key == "p0@agency.gov")).one()
    await owner.client.post(
        f"/admin/lists/sm-cop/members/{p0}", data={"csrf": owner.csrf, "action": "remove"}
    )
    page = await owner.client.get("/admin/lists/sm-cop", params={"period": "month"})
    assert page.status_code == 200
    assert page.text.count('<svg role="img"') >= 1
    text = main_text(page.text)
    assert "Members over time, as figures" in text
    assert "Members 3" in text  # Jane and three more, one removed by the owner
    assert "Joined Left Removed Members at the end" in text
    assert " 4 0 1 3" in text
    assert "<polyline" in page.text


async def test_console_pages_carry_the_security_headers(owner: Session) -> None:
    page = await owner.client.get("/admin/lists/sm-cop/held")
    assert "script-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


async def test_no_console_get_changes_anything(site: Site, owner: Session) -> None:
    post_id = hold(site)
    request_awaiting(site, "bob@example.com")
    with site.factory() as session:
        member_id = session.scalars(select(Member.id).where(Member.address_key == MEMBER)).one()
    before = snapshot(site.factory)
    del before["web_sessions"]  # the idle clock of the session moves on: not a change of state
    paths = [
        "/admin",
        "/admin/lists/sm-cop",
        "/admin/lists/sm-cop?period=day",
        "/admin/lists/sm-cop/held",
        f"/admin/lists/sm-cop/held/{post_id}",
        "/admin/lists/sm-cop/requests",
        "/admin/lists/sm-cop/members?q=jane",
        f"/admin/lists/sm-cop/members/{member_id}",
        "/admin/lists/sm-cop/members.csv",
        "/admin/lists/sm-cop/bans",
        "/admin/lists/sm-cop/bounces",
        "/admin/lists/sm-cop/settings",
        "/admin/lists/sm-cop/audit",
        "/admin/lists/sm-cop/audit.csv",
        "/account",
        "/login",
        "/login/second-factor",
    ]
    for path in paths:
        response = await owner.client.get(path)
        assert response.status_code in (200, 303), path
    after = snapshot(site.factory)
    del after["web_sessions"]
    assert after == before
