# SPDX-License-Identifier: Apache-2.0
"""JWZ threading on a golden set: replies, replies without References, subject-only
threads, a broken References chain, a missing parent, duplicate Message-IDs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from listserv.archive.threading import (
    Item,
    Node,
    base_subject,
    is_reply_subject,
    references_of,
    thread,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def item(key: int, mid: str, subject: str, *refs: str) -> Item:
    return Item(key, mid, list(refs), subject, T0 + timedelta(hours=key))


def shape(node: Node) -> object:
    """A thread as nested tuples of keys (0 for a missing post)."""
    key = node.item.key if node.item else 0
    return (key, [shape(c) for c in node.children]) if node.children else key


def test_replies_by_references_nest_in_date_order() -> None:
    threads = thread(
        [
            item(1, "<a@x>", "Records schedules"),
            item(2, "<b@x>", "Re: Records schedules", "<a@x>"),
            item(3, "<c@x>", "Re: Records schedules", "<a@x>", "<b@x>"),
            item(4, "<d@x>", "Re: Records schedules", "<a@x>"),
        ]
    )
    assert [shape(t) for t in threads] == [(1, [(2, [3]), 4])]
    assert [(d, i.key) for d, i in threads[0].walk()] == [(0, 1), (1, 2), (2, 3), (1, 4)]


def test_a_reply_with_only_in_reply_to_joins_its_parent() -> None:
    refs = references_of("", "<a@x>")
    threads = thread([item(1, "<a@x>", "Hello"), item(2, "<b@x>", "Re: Hello", *refs)])
    assert [shape(t) for t in threads] == [(1, [2])]


def test_a_reply_without_any_references_joins_by_subject() -> None:
    threads = thread(
        [
            item(1, "<a@x>", "[SM-COP] Instagram policy"),
            item(2, "<b@x>", "RE: [SM-COP] instagram  policy"),
            item(3, "<c@x>", "Something else"),
        ]
    )
    assert [shape(t) for t in threads] == [(1, [2]), 3]


def test_two_posts_that_begin_the_same_subject_become_siblings() -> None:
    threads = thread([item(1, "<a@x>", "Lunch"), item(2, "<b@x>", "Lunch")])
    assert [shape(t) for t in threads] == [(0, [1, 2])]


def test_a_missing_parent_keeps_its_replies_together() -> None:
    # Both answer <gone@x>, which is not in the set.
    threads = thread(
        [
            item(1, "<b@x>", "Re: Question", "<gone@x>"),
            item(2, "<c@x>", "Re: Question", "<gone@x>"),
        ]
    )
    assert [shape(t) for t in threads] == [(0, [1, 2])]


def test_a_broken_references_chain_still_threads_and_never_loops() -> None:
    threads = thread(
        [
            item(1, "<a@x>", "Start"),
            # References name a message that names this one back, and itself.
            item(2, "<b@x>", "Re: Start", "<a@x>", "<c@x>", "<b@x>"),
            item(3, "<c@x>", "Re: Start", "<a@x>", "<b@x>"),
            # A chain that skips a link but still ends at its real parent.
            item(4, "<d@x>", "Re: Start", "<zzz@x>", "<c@x>"),
        ]
    )
    assert len(threads) == 1
    keys = sorted(i.key for i in threads[0].items())
    assert keys == [1, 2, 3, 4]


def test_a_reply_that_arrives_before_its_parent_is_placed_under_it() -> None:
    threads = thread(
        [
            Item(2, "<b@x>", ["<a@x>"], "Re: Early", T0),
            Item(1, "<a@x>", [], "Early", T0 + timedelta(minutes=5)),
        ]
    )
    assert [shape(t) for t in threads] == [(1, [2])]


def test_duplicate_message_ids_are_both_kept() -> None:
    threads = thread([item(1, "<a@x>", "One"), item(2, "<a@x>", "Two")])
    assert sorted(i.key for t in threads for i in t.items()) == [1, 2]


def test_subjects_fold_reply_markers_and_list_tags() -> None:
    assert base_subject("Re: [SM-COP] AW: Fwd: Records  Schedules") == "records schedules"
    assert base_subject("Re[2]: hello") == "hello"
    assert is_reply_subject("[SM-COP] Re: x") and not is_reply_subject("Fwd: x")
    assert references_of("<a@x> <b@x>", "<b@x>") == ["<a@x>", "<b@x>"]
    assert references_of("<a@x>", "<c@x>") == ["<a@x>", "<c@x>"]
