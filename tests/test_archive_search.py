# SPDX-License-Identifier: Apache-2.0
"""Archive search on SQLite (FTS5) and PostgreSQL (tsvector + GIN): each operator, the
ranking, the marks, and an index that follows the archive in the same transaction."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from listserv.acts import held
from listserv.archive import index
from listserv.archive import search as search_module
from listserv.archive.query import QueryError, parse_query
from listserv.archive.search import MARK_END, MARK_START, search
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import ArchiveEntry, MailingList, Post, PostStatus
from listserv.records import retention
from tests.actors import as_actor
from tests.archive_helpers import T0, archive_raw, raw_post


@pytest.fixture
def archived(ctx_factory: Callable[..., Context]) -> tuple[Context, MailingList]:
    ctx = ctx_factory(now=T0)
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    day = timedelta(days=1)
    archive_raw(
        ctx,
        mlist,
        raw_post(1, "Records schedules for Instagram", "Who has a records schedule for it?"),
        raw_post(
            2,
            "Re: Records schedules for Instagram",
            "NARA published a general records schedule last spring.",
            sender="sam@agency.gov",
            name="Sam Smith",
            date=T0 + day,
            refs="<post1@agency.gov>",
        ),
        raw_post(
            3,
            "TikTok guidance",
            "The draft TikTok guidance is out; the records officer reviewed it.",
            sender="lee@army.mil",
            name="Lee Park",
            date=T0 + 40 * day,
        ),
        raw_post(
            4,
            "Accessibility of video captions",
            "Captions help everyone. No schedule mentioned here.",
            sender="ana@sub.agency.gov",
            name="Ana Ruiz",
            date=T0 + 80 * day,
        ),
    )
    ctx.session.commit()
    return ctx, mlist


def found(ctx: Context, mlist: MailingList, text: str) -> list[int]:
    ids = [h.post_id for h in search(ctx.session, mlist.id, parse_query(text)).hits]
    numbers = dict(ctx.session.execute(select(Post.id, Post.message_id)).all())
    return sorted(int(numbers[i].removeprefix("<post").split("@")[0]) for i in ids)


def test_words_must_all_be_there(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    assert found(ctx, mlist, "records schedule") == [1, 2]
    assert found(ctx, mlist, "records tiktok") == [3]
    assert found(ctx, mlist, "nothingmatches") == []


def test_words_are_stemmed_and_case_folded(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    assert found(ctx, mlist, "SCHEDULES") == [1, 2, 4]
    assert found(ctx, mlist, "caption") == [4]


def test_a_phrase_needs_its_words_in_order(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    assert found(ctx, mlist, '"general records schedule"') == [2]
    assert found(ctx, mlist, '"schedule records general"') == []


def test_excluded_words_and_phrases(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    assert found(ctx, mlist, "schedule -nara") == [1, 4]
    assert found(ctx, mlist, 'schedule -"general records"') == [1, 4]


def test_or_takes_either(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    assert found(ctx, mlist, "tiktok OR captions") == [3, 4]
    assert found(ctx, mlist, "records tiktok OR nara") == [2, 3]


def test_from_an_address_or_a_domain(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    assert found(ctx, mlist, "records from:Sam@Agency.gov") == [2]
    assert found(ctx, mlist, "from:agency.gov") == [1, 2, 4]
    assert found(ctx, mlist, "from:army.mil") == [3]


def test_since_and_until(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    assert found(ctx, mlist, "records since:2026-04") == [3]
    assert found(ctx, mlist, "schedule until:2026-03-02") == [1]
    assert found(ctx, mlist, "schedule since:2026-03-03 until:2026-04") == [2]


def test_the_subject_outranks_the_body_and_matches_are_marked(
    archived: tuple[Context, MailingList],
) -> None:
    ctx, mlist = archived
    hits = search(ctx.session, mlist.id, parse_query("tiktok")).hits
    assert len(hits) == 1
    assert f"{MARK_START}TikTok{MARK_END}" in hits[0].subject
    assert MARK_START in hits[0].snippet
    ranked = search(ctx.session, mlist.id, parse_query("captions OR records")).hits
    assert ranked[0].subject.startswith(f"{MARK_START}Records") or MARK_START in ranked[0].subject


def test_pages_of_results(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    first = search(ctx.session, mlist.id, parse_query("from:agency.gov"), per_page=2)
    second = search(ctx.session, mlist.id, parse_query("from:agency.gov"), page=2, per_page=2)
    assert first.more and not second.more
    assert len(first.hits) == 2 and len(second.hits) == 1
    assert {h.post_id for h in first.hits}.isdisjoint(h.post_id for h in second.hits)


def test_typed_syntax_never_reaches_the_database(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    typed = ['records" OR "x', "NEAR(records schedule)", "records*", "'; DROP TABLE posts;--"]
    for text in [*typed, "records\\' OR 1=1 --", "\\x00records"]:
        search(ctx.session, mlist.id, parse_query(text))  # no error from FTS5 or tsquery
    with pytest.raises(QueryError):
        parse_query("-records")
    with pytest.raises(QueryError):
        parse_query("since:2026-13")


def test_words_written_into_postgresql_statements_cannot_end_their_literal() -> None:
    """PostgreSQL searches carry their words as literals (so each is planned on its
    own words); the parser keeps only letters and digits, and quoting holds anyway."""
    assert search_module._pg_text(("records", "schedule")) == "E'records schedule'"
    assert search_module._pg_text(("it's", "a\\b")) == "E'it''s a\\\\b'"
    words = parse_query("records' OR '1'='1 \\'; --").words()
    assert words and all(re.fullmatch(r"\w+", w) for w in words), words


def test_a_deleted_post_leaves_the_index_in_the_same_transaction(
    archived: tuple[Context, MailingList],
) -> None:
    ctx, mlist = archived
    [post_id] = [h.post_id for h in search(ctx.session, mlist.id, parse_query("nara")).hits]
    retention.delete_posts(ctx, as_actor("owner@digital.gov"), mlist, [post_id])
    assert search(ctx.session, mlist.id, parse_query("nara")).hits == []
    ctx.session.rollback()  # not committed: the post and its index entry are back
    assert [h.post_id for h in search(ctx.session, mlist.id, parse_query("nara")).hits] == [post_id]
    retention.delete_posts(ctx, as_actor("owner@digital.gov"), mlist, [post_id])
    ctx.session.commit()
    assert search(ctx.session, mlist.id, parse_query("nara")).hits == []
    assert ctx.session.get(ArchiveEntry, post_id) is None


def test_a_purged_post_disappears_from_search(archived: tuple[Context, MailingList]) -> None:
    ctx, mlist = archived
    mlist.retention_days = 30
    purged = retention.purge_list(ctx.session, mlist, T0 + timedelta(days=75))
    ctx.session.commit()
    assert purged.posts == 3
    assert found(ctx, mlist, "records OR captions") == [4]


def test_held_rejected_and_discarded_posts_are_never_indexed(
    archived: tuple[Context, MailingList],
) -> None:
    ctx, mlist = archived
    for n, status in enumerate((PostStatus.HELD, PostStatus.REJECTED, PostStatus.DISCARDED), 10):
        raw = raw_post(n, "Secret zebra plans", "zebra")
        post = Post(list_id=mlist.id, status=status, raw=raw, subject="Secret zebra plans")
        ctx.session.add(post)
        ctx.session.flush()
        assert index.add_post(ctx.session, post) is False
    ctx.session.commit()
    assert found(ctx, mlist, "zebra") == []


def test_matches_past_the_ranked_window_still_come_once_each(
    archived: tuple[Context, MailingList], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, mlist = archived
    monkeypatch.setattr(search_module, "RANK_WINDOW", 2)
    query = parse_query("schedule")
    pages = [search(ctx.session, mlist.id, query, page=n, per_page=1) for n in (1, 2, 3, 4)]
    ids = [h.post_id for p in pages for h in p.hits]
    assert len(ids) == 3 == len(set(ids))
    assert [p.more for p in pages] == [True, True, False, False]
    both = search(ctx.session, mlist.id, query, page=1, per_page=3)
    assert sorted(h.post_id for h in both.hits) == sorted(ids)


def test_a_held_post_is_found_once_a_moderator_approves_it(
    archived: tuple[Context, MailingList],
) -> None:
    ctx, mlist = archived
    raw = raw_post(20, "Held zebra question", "Is the zebra policy final?")
    post = Post(
        list_id=mlist.id,
        status=PostStatus.HELD,
        raw=raw,
        subject="Held zebra question",
        message_id="<post20@agency.gov>",
        sender="jane.doe@agency.gov",
        received_at=T0,
    )
    ctx.session.add(post)
    ctx.session.commit()
    assert found(ctx, mlist, "zebra") == []
    held.approve_post(ctx, as_actor("owner@digital.gov"), mlist, post.id)
    ctx.session.commit()
    assert found(ctx, mlist, "zebra") == [20]
