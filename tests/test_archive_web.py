# SPDX-License-Identifier: Apache-2.0
"""The archive's pages: access per list, months, threads, a post, search, mbox, Atom,
ETag/304, attachments as downloads only, and mail that cannot run anything."""

from __future__ import annotations

import mailbox
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
from sqlalchemy import select

from listserv import roster
from listserv.config import Settings
from listserv.lists import get_list
from listserv.models import ArchiveAccess, Post
from listserv.web.archive_pages import ATTACHMENT_CSP
from tests.actors import as_actor
from tests.archive_helpers import T0, archive_raw, raw_post
from tests.conftest import make_message
from tests.posting_helpers import JANE, add_member, post_and_settle, set_list
from tests.web_helpers import Site, open_site, parse_page, start_web_service

ARCHIVE = "/lists/sm-cop/archive"
MEMBER = "member@agency.gov"

UNSAFE_HTML = """<html><head><style>body{display:none}</style></head><body>
<p onclick="steal()">Hello <b>all</b></p>
<script>alert(document.cookie)</script>
<a href="javascript:alert(1)">click me</a>
<img src="https://tracker.example.com/pixel.gif" onerror="alert(2)">
<div style="background:url(https://tracker.example.com/bg.png)">styled</div>
<iframe src="https://evil.example.com/"></iframe>
<a href="https://www.archives.gov/records-mgmt">a real link</a>
</body></html>"""

WITH_ATTACHMENT = (
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: text/plain\r\n\r\nSee the attached schedule.\r\n"
    '--b\r\nContent-Type: text/html; name="evil.html"\r\n'
    'Content-Disposition: attachment; filename="evil.html"\r\n\r\n'
    "<script>alert(3)</script>\r\n--b--\r\n"
)


def _seed(site: Site, access: str = ArchiveAccess.PUBLIC) -> dict[int, int]:
    """Five posts in two months, two threads in March; returns number → post id."""
    with site.factory() as session:
        ctx = site.ctx(session)
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        mlist.archive_access = access
        archive_raw(
            ctx,
            mlist,
            raw_post(1, "Records schedules", "Who has one? Write to jane.doe@agency.gov."),
            raw_post(
                2,
                "Re: Records schedules",
                "GRS 6.4.",
                sender="sam@agency.gov",
                name="Sam Smith",
                date=T0.replace(hour=10),
                refs="<post1@agency.gov>",
            ),
            raw_post(
                3,
                "Unsafe mail",
                UNSAFE_HTML,
                content_type="text/html; charset=utf-8",
                date=T0.replace(hour=11),
            ),
            raw_post(4, "Attachment", "", content_type="", date=T0.replace(day=20))[:-2].replace(
                b"Content-Type: \r\n\r\n", WITH_ATTACHMENT.encode()
            ),
            raw_post(5, "April news", "From the top: news.", date=T0.replace(month=4)),
        )
        session.commit()
        rows = session.execute(select(Post.message_id, Post.id)).all()
    return {int(m.removeprefix("<post").split("@")[0]): i for m, i in rows}


async def test_a_members_only_archive_sends_the_signed_out_to_sign_in(settings: Settings) -> None:
    async with open_site(settings) as site:
        ids = _seed(site, ArchiveAccess.MEMBERS)
        for path in (
            ARCHIVE,
            f"{ARCHIVE}/2026-03",
            f"{ARCHIVE}/msg/{ids[1]}",
            f"{ARCHIVE}/2026-03.mbox",
            f"{ARCHIVE}/search?q=records",
        ):
            response = await site.client.get(path)
            assert response.status_code == 303, path
            location = httpx.URL(response.headers["location"])
            assert location.path == "/login"
            assert location.params["next"] == path
    async with open_site(settings, viewer=lambda request: "stranger@agency.gov") as site:
        unknown = await site.client.get("/lists/no-such-list/archive")
        for path in (ARCHIVE, f"{ARCHIVE}/msg/{ids[1]}", f"{ARCHIVE}/2026-03.mbox"):
            response = await site.client.get(path)
            assert response.status_code == 404, path
            assert response.text == unknown.text  # nothing says the list has posts
    async with open_site(settings, viewer=lambda request: MEMBER) as site:
        with site.factory() as session, session.begin():
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            roster.add_member(session, mlist, MEMBER, actor=as_actor())
        response = await site.client.get(f"{ARCHIVE}/msg/{ids[1]}")
        assert response.status_code == 200
        assert "jane.doe@agency.gov" in response.text  # members see addresses in full
        assert response.headers["cache-control"] == "private, no-cache"
        assert (await site.client.get("/lists/sm-cop/archive/feed.atom")).status_code == 404


async def test_months_threads_post_and_neighbours(settings: Settings) -> None:
    async with open_site(settings) as site:
        ids = _seed(site)
        months = await site.client.get(ARCHIVE)
        assert months.status_code == 200
        text = re.sub(r"\s+", " ", months.text)
        assert "March 2026</a></td> <td>4</td>" in text and "April 2026</a></td> <td>1</td>" in text

        march = await site.client.get(f"{ARCHIVE}/2026-03")
        assert march.status_code == 200
        body = march.text
        # Newest thread first; the reply sits under its parent.
        assert body.index("Attachment") < body.index("Unsafe mail") < body.index("Records")
        assert re.search(rf'class="depth-1">\s*<a href="[^"]*/msg/{ids[2]}"', body)
        assert (await site.client.get(f"{ARCHIVE}/2026-05")).status_code == 404
        assert (await site.client.get(f"{ARCHIVE}/2026-13")).status_code == 404

        post = await site.client.get(f"{ARCHIVE}/msg/{ids[2]}")
        assert post.status_code == 200
        page = post.text
        assert "Sam Smith &lt;sam@…&gt;" in page  # signed out: no domain
        assert "agency.gov" not in page.split("<main", 1)[1].split("Public records notice")[0]
        assert f'href="/lists/sm-cop/archive/msg/{ids[1]}" rel="prev"' in page
        assert f'href="/lists/sm-cop/archive/msg/{ids[3]}" rel="next"' in page
        assert 'aria-current="page"' in page and "This thread" in page
        assert "Freedom of Information Act" in page
        assert post.headers["cache-control"] == "public, no-cache"


async def test_pages_answer_304_while_unchanged(settings: Settings) -> None:
    async with open_site(settings) as site:
        ids = _seed(site)
        for path in (ARCHIVE, f"{ARCHIVE}/2026-03", f"{ARCHIVE}/msg/{ids[1]}"):
            first = await site.client.get(path)
            etag = first.headers["etag"]
            assert first.headers["last-modified"]
            again = await site.client.get(path, headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.content == b""
        with site.factory() as session, session.begin():
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            archive_raw(site.ctx(session), mlist, raw_post(9, "Later", "x", date=T0.replace(day=9)))
        changed = await site.client.get(f"{ARCHIVE}/2026-03", headers={"If-None-Match": etag})
        assert changed.status_code == 200


async def test_a_post_that_carries_scripts_shows_none_of_them_active(settings: Settings) -> None:
    async with open_site(settings) as site:
        ids = _seed(site)
        response = await site.client.get(f"{ARCHIVE}/msg/{ids[3]}")
        assert response.status_code == 200
        page = response.text
        parsed = parse_page(page)
        assert parsed.scripts == 0 and parsed.inline == 0  # no script/style, no on*/style=
        for gone in ("javascript:", "tracker.example.com", "steal()", "alert("):
            assert gone not in page, gone
        article = page.split("<article", 1)[1].split("</article>", 1)[0]
        assert "<img" not in article and "<iframe" not in article
        assert "<b>all</b>" in page
        assert '<a href="https://www.archives.gov/records-mgmt" rel="nofollow noopener' in page
        assert "script-src 'none'" in response.headers["content-security-policy"]


async def test_attachments_are_listed_and_only_downloaded(settings: Settings) -> None:
    async with open_site(settings) as site:
        ids = _seed(site)
        page = (await site.client.get(f"{ARCHIVE}/msg/{ids[4]}")).text
        assert "See the attached schedule." in page and "alert(3)" not in page
        [link] = re.findall(r'href="(/lists/sm-cop/archive/msg/\d+/part/\d+)" download', page)
        download = await site.client.get(link)
        assert download.status_code == 200
        assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''evil.html"
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["x-content-type-options"] == "nosniff"
        assert download.headers["content-security-policy"] == ATTACHMENT_CSP
        assert b"<script>alert(3)</script>" in download.content
        assert (await site.client.get(f"{ARCHIVE}/msg/{ids[4]}/part/9")).status_code == 404


async def test_a_month_as_mbox_is_the_original_bytes(settings: Settings, tmp_path: Path) -> None:
    async with open_site(settings) as site:
        _seed(site)
        response = await site.client.get(f"{ARCHIVE}/2026-04.mbox")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/mbox")
        path = tmp_path / "april.mbox"
        path.write_bytes(response.content)
        [msg] = list(mailbox.mbox(str(path)))
        assert msg["Message-ID"] == "<post5@agency.gov>"
        assert b">From the top" in response.content  # From lines quoted in mboxrd framing
        with site.factory() as session:
            raw = session.scalar(select(Post.raw).where(Post.message_id == "<post5@agency.gov>"))
        assert raw is not None
        assert raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ") in response.content


async def test_search_page_marks_matches_and_explains_mistakes(settings: Settings) -> None:
    async with open_site(settings) as site:
        ids = _seed(site)
        found = await site.client.get(f"{ARCHIVE}/search", params={"q": "records"})
        assert found.status_code == 200
        assert "<mark>Records</mark>" in found.text
        assert f"/archive/msg/{ids[1]}" in found.text
        bad = await site.client.get(f"{ARCHIVE}/search", params={"q": "-records"})
        assert bad.status_code == 400 and "not only words to leave out" in bad.text
        none = await site.client.get(f"{ARCHIVE}/search", params={"q": "<script>zz</script>"})
        assert "<script>zz" not in none.text and "No post matches" in none.text


async def test_atom_feed_of_a_public_archive(settings: Settings) -> None:
    async with open_site(settings) as site:
        ids = _seed(site)
        response = await site.client.get(f"{ARCHIVE}/feed.atom")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/atom+xml")
        feed = ET.fromstring(response.content)
        ns = {"a": "http://www.w3.org/2005/Atom"}
        entries = feed.findall("a:entry", ns)
        assert len(entries) == 5
        assert entries[0].findtext("a:title", namespaces=ns) == "April news"
        assert entries[-1].findtext("a:id", namespaces=ns, default="").endswith(f"/msg/{ids[1]}")
        assert b"jane.doe@agency.gov" not in response.content


async def test_a_post_accepted_over_smtp_is_archived_and_found(settings: Settings) -> None:
    async with start_web_service(settings) as service:
        add_member(service, JANE, "Jane Doe")
        set_list(service, archive_access=ArchiveAccess.PUBLIC)
        msg = make_message(subject="Zebra crossing policy", body="Striped zebras everywhere.\n")
        await post_and_settle(service, msg)
        base = service.settings.web.base_url
        async with httpx.AsyncClient(base_url=base) as client:  # a real socket
            found = await client.get(f"{ARCHIVE}/search", params={"q": "zebra"})
            assert found.status_code == 200 and "<mark>Zebra</mark>" in found.text
            [link] = re.findall(r'href="(/lists/sm-cop/archive/msg/\d+)"', found.text)
            page = await client.get(link)
            assert "Striped zebras everywhere." in page.text
