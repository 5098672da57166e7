# SPDX-License-Identifier: Apache-2.0
"""`GET /archive?q=` finds what the archive's search page finds: same syntax, same index.

Posts are archived through the importer (which writes the full-text index in
the same transaction), then each query is asked of the API and of
`archive.search.search`, the function behind the search page, on SQLite
(FTS5) and PostgreSQL (tsvector).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from listserv import db
from listserv.archive.query import parse_query
from listserv.archive.search import search
from listserv.config import Settings
from listserv.lists import get_list
from listserv.models import Post
from tests.api_helpers import BASE, ApiSite, bearer, open_api, problem
from tests.archive_helpers import T0, archive_raw, raw_post

ARCHIVE = f"{BASE}/lists/sm-cop/archive"
DAY = timedelta(days=1)


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[ApiSite]:
    async with open_api(settings) as opened:
        with db.session_scope(opened.factory) as session:
            mlist = get_list(session, "sm-cop")
            assert mlist is not None
            archive_raw(
                opened.ctx(session),
                mlist,
                raw_post(1, "Records schedules for Instagram", "Who has a records schedule?"),
                raw_post(
                    2,
                    "Re: Records schedules for Instagram",
                    "NARA published a general records schedule last spring.",
                    sender="sam@agency.gov",
                    name="Sam Smith",
                    date=T0 + DAY,
                ),
                raw_post(
                    3,
                    "TikTok guidance",
                    "The draft TikTok guidance is out; the records officer reviewed it.",
                    sender="lee@army.mil",
                    name="Lee Park",
                    date=T0 + 40 * DAY,
                ),
                raw_post(
                    4,
                    "Accessibility of video captions",
                    "Captions help everyone. The schedule of the general meeting moved.",
                    sender="ana@sub.agency.gov",
                    name="Ana Ruiz",
                    date=T0 + 80 * DAY,
                ),
            )
        yield opened


def numbers(site: ApiSite, ids: list[int]) -> list[int]:
    """The posts' numbers in `raw_post` (from their Message-IDs), in the order given."""
    with site.factory() as session:
        ids_to_mid = dict(session.execute(select(Post.id, Post.message_id)).all())
    return [int(ids_to_mid[i].removeprefix("<post").split("@")[0]) for i in ids]


async def api_found(site: ApiSite, text: str, token: str, limit: int = 100) -> list[int]:
    """Every page of the API's answer, followed by cursor."""
    ids: list[int] = []
    cursor = ""
    while True:
        url = f"{ARCHIVE}?q={quote(text)}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = await site.client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            return numbers(site, ids)
        cursor = page["next_cursor"]


def page_found(site: ApiSite, text: str) -> list[int]:
    """What the archive's search page lists for the same words."""
    with site.factory() as session:
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        hits = search(session, mlist.id, parse_query(text), per_page=100).hits
    return numbers(site, [h.post_id for h in hits])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("records schedule", [2, 1]),  # both words, in subject or body
        ('"general records schedule"', [2]),  # the phrase, not its words apart
        ("general schedule", [4, 2]),
        ("records -instagram", [3]),  # without the word
        ('schedule -"records schedule"', [4]),  # without the phrase
        ("tiktok OR captions", [4, 3]),
        ("schedules", [4, 2, 1]),  # stemmed, as the page's search is
        ("from:sam@agency.gov", [2]),
        ("from:agency.gov", [4, 2, 1]),  # the domain and its subdomains
        ("records from:army.mil", [3]),
        ("schedule since:2026-03-03 until:2026-04", [2]),
        ("nothingmatches", []),
    ],
)
async def test_q_finds_what_the_search_page_finds(
    site: ApiSite, text: str, expected: list[int]
) -> None:
    token = site.issue("reader", ("sm-cop",))
    assert await api_found(site, text, token) == expected
    assert sorted(page_found(site, text)) == sorted(expected)


async def test_q_pages_by_cursor_newest_first(site: ApiSite) -> None:
    token = site.issue("reader", ("sm-cop",))
    assert await api_found(site, "schedule", token, limit=1) == [4, 2, 1]
    assert await api_found(site, "from:agency.gov", token, limit=2) == [4, 2, 1]


async def test_q_the_page_refuses_is_a_422_naming_q(site: ApiSite) -> None:
    token = site.issue("reader", ("sm-cop",))
    for text in ("-instagram", "records since:March"):
        response = await site.client.get(f"{ARCHIVE}?q={quote(text)}", headers=bearer(token))
        assert problem(response, 422)["field"] == "q"


async def test_q_is_described_as_the_search_syntax(site: ApiSite) -> None:
    document = (await site.client.get(f"{BASE}/openapi.json")).json()
    operation = document["paths"]["/lists/{list}/archive"]["get"]
    [q] = [p for p in operation["parameters"] if p["name"] == "q"]
    assert "from:" in q["description"] and "-word" in q["description"]
