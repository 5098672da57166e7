# SPDX-License-Identifier: Apache-2.0
"""Bans: which patterns are accepted, what they match, and that every change is audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from listserv import bans, roster
from listserv.acts import bans as ban_acts
from listserv.acts import subscriptions
from listserv.acts.errors import Conflict, NotFound
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import AuditEvent, Ban
from tests.actors import as_actor
from tests.admin_helpers import run_cli, write_config


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Spammer@Example.COM", "spammer@example.com"),
        ("*@SPAM.example", "*@spam.example"),
        ("*.spam.example", "*.spam.example"),
        ("^spam[0-9]+@", "^spam[0-9]+@"),
    ],
)
def test_patterns_are_stored_in_their_matching_form(typed: str, stored: str) -> None:
    assert bans.normalise_pattern(typed) == stored


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "needs an address"),
        ("^(unclosed", "not a valid regular expression"),
        ("^.*", "would ban everyone"),
        ("*", "would ban everyone"),
        ("*@*", "would ban everyone"),
        ("spam.example", "*@spam.example"),
        ("jane@exa mple.com", "not an address"),
        ("a\nb@x.com", "control characters"),
    ],
)
def test_unusable_patterns_are_refused_with_the_reason(typed: str, why: str) -> None:
    with pytest.raises(bans.BanError, match=None) as caught:
        bans.normalise_pattern(typed)
    assert why in str(caught.value)


@pytest.mark.parametrize(
    ("pattern", "address", "banned"),
    [
        ("spammer@example.com", "SPAMMER@example.com", True),
        ("spammer@example.com", "spammer2@example.com", False),
        ("*@spam.example", "anyone@spam.example", True),
        ("*@spam.example", "anyone@notspam.example", False),
        ("*@*.spam.example", "x@mail.spam.example", True),
        ("^spam[0-9]+@", "Spam42@anywhere.gov", True),
        ("^spam[0-9]+@", "jane.spam1@anywhere.gov", False),
        (r"^\S+@evil\.example$", "jane@evil.example", True),
    ],
)
def test_is_banned_matches_list_patterns(
    ctx_factory: Callable[..., Context], pattern: str, address: str, banned: bool
) -> None:
    ctx = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    ban_acts.ban(ctx, as_actor("owner@digital.gov", "cli", "host"), mlist, pattern)
    assert bans.is_banned(ctx, mlist, address) is banned
    # The posting rules and subscriptions use the same check.
    assert subscriptions.bans.is_banned is bans.is_banned
    # A list ban does not reach the site level.
    assert bans.is_banned(ctx, None, address) is False


def test_a_ban_or_unban_mid_batch_applies_to_the_batch_s_next_messages(
    ctx_factory: Callable[..., Context],
) -> None:
    """A processing batch reads the bans once (the memo); a ban or unban within it is seen."""
    ctx = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    later = replace(ctx, source="<next-message@agency.gov>")  # the batch's next message
    assert later.memo is ctx.memo
    assert bans.is_banned(ctx, mlist, "x@spam.example") is False
    owner = as_actor("owner@digital.gov", "cli", "host")
    ban_acts.ban(ctx, owner, mlist, "*@spam.example")
    assert bans.is_banned(later, mlist, "x@spam.example") is True
    ban_acts.unban(later, owner, mlist, "*@spam.example")
    assert bans.is_banned(ctx, mlist, "x@spam.example") is False


def test_site_bans_apply_to_every_list_and_are_listed_apart(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    ban_acts.ban(
        ctx, as_actor("root@host", "cli", "host"), None, "*@spam.example", reason="spam run"
    )
    assert bans.is_banned(ctx, mlist, "x@spam.example")
    assert bans.is_banned(ctx, None, "x@spam.example")
    assert [b.pattern for b in bans.list_bans(ctx.session, None)] == ["*@spam.example"]
    assert bans.list_bans(ctx.session, mlist) == []


def test_adding_and_removing_a_ban_is_audited_and_duplicates_are_refused(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx = ctx_factory(source="<cmd@agency.gov>")
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    owner = as_actor("owner@digital.gov", "email", "confirmed-reply")
    ban = ban_acts.ban(ctx, owner, mlist, "Troll@Example.com")
    assert ban.pattern == "troll@example.com"
    with pytest.raises(Conflict, match="already banned"):
        ban_acts.ban(ctx, owner, mlist, "troll@EXAMPLE.com")
    # Removal finds the ban whatever case it is typed in.
    assert ban_acts.unban(ctx, owner, mlist, "TROLL@example.com")
    with pytest.raises(NotFound):
        ban_acts.unban(ctx, owner, mlist, "troll@example.com")
    ctx.session.flush()
    events = ctx.session.scalars(
        select(AuditEvent).where(AuditEvent.action.in_(("ban-add", "ban-remove")))
    ).all()
    assert [(e.action, e.target, e.channel, e.actor) for e in events] == [
        ("ban-add", "troll@example.com", "email", "owner@digital.gov"),
        ("ban-remove", "troll@example.com", "email", "owner@digital.gov"),
    ]
    assert events[0].detail["after"]["kind"] == "address"
    assert events[1].detail["before"]["pattern"] == "troll@example.com"
    assert events[0].source == "<cmd@agency.gov>"
    assert ctx.session.scalars(select(Ban)).all() == []


def test_members_matching_names_current_members_a_new_ban_covers(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    for address in ("a@bad.gov", "b@bad.gov", "c@good.gov"):
        roster.add_member(ctx.session, mlist, address, actor=as_actor("test", "cli"))
    ban = ban_acts.ban(ctx, as_actor("root@host", "cli", "host"), mlist, "*@bad.gov")
    assert [m.address for m in bans.members_matching(ctx.session, mlist, ban.pattern)] == [
        "a@bad.gov",
        "b@bad.gov",
    ]


def test_bans_cli_adds_lists_and_removes_with_one_line_errors(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    ok = run_cli(config, "bans", "add", "sm-cop", "*@spam.example", "--reason", "spam")
    assert ok.code == 0, ok.stderr
    assert run_cli(config, "bans", "add", "--site", "^bot[0-9]+@").code == 0
    listed = run_cli(config, "bans", "list", "sm-cop", "--json").json()
    assert [(b["pattern"], b["scope"], b["kind"]) for b in listed] == [
        ("*@spam.example", "sm-cop", "glob"),
        ("^bot[0-9]+@", "site", "regex"),
    ]
    assert [b["pattern"] for b in run_cli(config, "bans", "list", "--site", "--json").json()] == [
        "^bot[0-9]+@"
    ]
    bad = run_cli(config, "bans", "add", "sm-cop", "^(oops")
    assert bad.code == 1
    assert bad.stderr.count("\n") == 1 and "not a valid regular expression" in bad.stderr
    missing = run_cli(config, "bans", "remove", "sm-cop", "nobody@example.com")
    assert missing.code == 1 and "is not banned" in missing.stderr
    both = run_cli(config, "bans", "list", "sm-cop", "--site")
    assert both.code == 1 and "not both" in both.stderr
    assert run_cli(config, "bans", "remove", "sm-cop", "*@spam.example").code == 0
    assert [b["pattern"] for b in run_cli(config, "bans", "list", "sm-cop", "--json").json()] == [
        "^bot[0-9]+@"
    ]
    actions = [
        (e["action"], e["channel"], e["list"])
        for e in run_cli(config, "audit", "--action", "ban-add", "--json").json()
    ]
    assert actions == [("ban-add", "cli", "sm-cop"), ("ban-add", "cli", "")]
