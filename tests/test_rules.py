# SPDX-License-Identifier: Apache-2.0
"""Posting rules as domain logic: a real database, no sockets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from listserv import roster
from listserv.addresses import Destination
from listserv.context import Context
from listserv.lists import get_list
from listserv.message import parse_message
from listserv.models import Ban, MailingList, Post, PostStatus, Role
from listserv.posting.rules import (
    RULES,
    Action,
    Hit,
    PostContext,
    Verdict,
    administrivia,
    evaluate,
    post_context,
)
from tests.actors import as_actor
from tests.conftest import make_message

JANE = "jane.doe@agency.gov"
STRANGER = "stranger@agency.gov"
OWNER = "owner@digital.gov"


@pytest.fixture
def ctx(ctx_factory: Callable[..., Context]) -> Context:
    return ctx_factory()


@pytest.fixture
def mlist(ctx: Context) -> MailingList:
    found = get_list(ctx.session, "sm-cop")
    assert found is not None
    roster.add_member(ctx.session, found, JANE, name="Jane Doe", actor=as_actor("test"))
    ctx.session.flush()
    return found


def judge(
    ctx: Context, mlist: MailingList, msg: EmailMessage, envelope_from: str | None = None
) -> Verdict:
    raw = msg.as_bytes(policy=SMTP)
    sender = envelope_from if envelope_from is not None else JANE
    return evaluate(
        post_context(ctx, mlist, parse_message(raw), size=len(raw), envelope_from=sender)
    )


def reasons(verdict: Verdict) -> str:
    return " | ".join(verdict.all_reasons)


def test_rules_run_in_the_documented_order() -> None:
    assert [rule.__name__ for rule in RULES] == [
        "loop",
        "auto_reply",
        "administrivia",
        "oversize",
        "banned",
        "emergency",
        "member_moderated",
        "non_member",
        "moderated_list",
        "announce_only",
        "duplicate",
    ]


def test_actions_are_ordered_by_severity() -> None:
    assert Action.ACCEPT < Action.HOLD < Action.REJECT < Action.DISCARD


def test_member_post_is_accepted(ctx: Context, mlist: MailingList) -> None:
    verdict = judge(ctx, mlist, make_message())
    assert verdict.action == Action.ACCEPT and verdict.hits == ()


def test_sender_matches_case_insensitively(ctx: Context, mlist: MailingList) -> None:
    verdict = judge(ctx, mlist, make_message(sender="Jane <JANE.DOE@AGENCY.GOV>"))
    assert verdict.action == Action.ACCEPT


def test_non_member_follows_the_list_setting(ctx: Context, mlist: MailingList) -> None:
    msg = make_message(sender=STRANGER)
    expected = {
        "hold": Action.HOLD,
        "reject": Action.REJECT,
        "discard": Action.DISCARD,
        "accept": Action.ACCEPT,
    }
    for setting, action in expected.items():
        mlist.non_member_action = setting
        assert judge(ctx, mlist, msg, STRANGER).action == action, setting


def test_owners_and_moderators_are_allowed_posters(ctx: Context, mlist: MailingList) -> None:
    roster.add_member(
        ctx.session, mlist, "mod@agency.gov", role=Role.MODERATOR, actor=as_actor("test")
    )
    assert judge(ctx, mlist, make_message(sender=OWNER)).action == Action.ACCEPT
    assert judge(ctx, mlist, make_message(sender="mod@agency.gov")).action == Action.ACCEPT


def test_several_from_addresses_are_not_a_member(ctx: Context, mlist: MailingList) -> None:
    msg = make_message(sender=f"{JANE}, other@agency.gov")
    verdict = judge(ctx, mlist, msg)
    assert verdict.action == Action.HOLD
    assert "exactly one From" in reasons(verdict)


def test_loop_by_list_id_x_loop_or_our_message_id(ctx: Context, mlist: MailingList) -> None:
    for headers in (
        {"List_Id": "SM-COP <SM-COP.lists.example.gov>"},
        {"X_Loop": "SM-COP@lists.example.gov"},
    ):
        verdict = judge(ctx, mlist, make_message(**headers))
        assert verdict.action == Action.DISCARD and "loop" in reasons(verdict).lower()
    ours = make_message()
    del ours["Message-ID"]
    ours["Message-ID"] = "<123.456@lists.example.gov>"
    assert "made by this server" in reasons(judge(ctx, mlist, ours))
    other_list = make_message(List_Id="Other <other.lists.example.org>")
    assert judge(ctx, mlist, other_list).action == Action.ACCEPT


@pytest.mark.parametrize(
    ("headers", "envelope"),
    [
        ({"Auto_Submitted": "auto-replied"}, JANE),
        ({"Auto_Submitted": "auto-generated"}, JANE),
        ({"Precedence": "junk"}, JANE),
        ({"Precedence": "list"}, JANE),
        ({}, ""),
        ({}, "mailer-daemon@agency.gov"),
    ],
)
def test_auto_replies_are_discarded(
    ctx: Context, mlist: MailingList, headers: dict[str, str], envelope: str
) -> None:
    verdict = judge(ctx, mlist, make_message(**headers), envelope)
    assert verdict.action == Action.DISCARD
    assert verdict.decisive is not None and verdict.decisive.route_to is None


def test_auto_submitted_no_is_a_person(ctx: Context, mlist: MailingList) -> None:
    assert judge(ctx, mlist, make_message(Auto_Submitted="no")).action == Action.ACCEPT


def test_an_auto_reply_that_looks_like_a_command_is_not_routed(
    ctx: Context, mlist: MailingList
) -> None:
    """Loop/auto-reply come before administrivia, so a robot is never answered."""
    verdict = judge(ctx, mlist, make_message(subject="subscribe", Precedence="bulk"))
    assert verdict.action == Action.DISCARD
    assert verdict.decisive is not None
    assert verdict.decisive.reason.startswith("Automatic message")
    assert verdict.decisive.route_to is None
    assert any(h.route_to == Destination.REQUEST for h in verdict.hits)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("subscribe", "Jane Doe, Web Manager\n"),
        ("Unsubscribe", ""),
        ("Re: [SM-COP] unsubscribe", "please\n"),
        ("join sm-cop", ""),
        ("signoff", ""),
        ("leave", ""),
        ("help", ""),
        ("set digest", ""),
        ("confirm " + "a" * 32, ""),
        ("Leave #SocialGov", "I am changing jobs, thanks for everything. " * 5 + "\n"),
        ("Join the Social Media Community", ""),
        ("", "unsubscribe\n"),
        ("Question", "Hi,\nSUBSCRIBE SM-COP Jane Doe\n"),
        ("", "unsubscribe me\n\n-- \nJane\n"),
    ],
)
def test_administrivia_is_routed_to_the_request_address(
    ctx: Context, mlist: MailingList, subject: str, body: str
) -> None:
    verdict = judge(ctx, mlist, make_message(subject=subject, body=body or "\n"))
    assert verdict.action == Action.DISCARD, reasons(verdict)
    assert verdict.decisive is not None
    assert verdict.decisive.route_to == Destination.REQUEST


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Help with Facebook verification", "Has anyone done this?\n"),
        ("Join us Friday", "Webinar at 2pm.\n"),
        ("Subscribe to our newsletter", "It is great.\n"),
        ("Threads", "Help!\nWe need a policy.\n"),
        ("Threads", "Join sm-cop-announce too\n"),
        ("Threads", "> unsubscribe\nNo, stay!\n"),
        ("Threads", "One\nTwo\nThree\nFour\nFive\nSix\nunsubscribe\n"),
        ("Leave policy", "How do agencies handle parental leave?\n"),
    ],
)
def test_posts_that_merely_mention_commands_are_posts(
    ctx: Context, mlist: MailingList, subject: str, body: str
) -> None:
    assert judge(ctx, mlist, make_message(subject=subject, body=body)).action == Action.ACCEPT


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Help", "Our account was hacked, who do we call?\n"),
        ("Leave", "Line one\nLine two\nLine three\nLine four\n"),
    ],
)
def test_command_subject_over_prose_is_held_for_a_moderator(
    ctx: Context, mlist: MailingList, subject: str, body: str
) -> None:
    verdict = judge(ctx, mlist, make_message(subject=subject, body=body))
    assert verdict.action == Action.HOLD
    assert "looks like a command" in reasons(verdict)


def test_administrivia_outranks_the_non_member_hold(ctx: Context, mlist: MailingList) -> None:
    verdict = judge(ctx, mlist, make_message(sender=STRANGER, subject="subscribe"), STRANGER)
    assert verdict.action == Action.DISCARD
    assert [h.action for h in verdict.hits] == [Action.DISCARD, Action.HOLD]
    assert verdict.decisive is not None and verdict.decisive.route_to == Destination.REQUEST


def test_oversize_uses_the_list_limit_then_the_site_limit(ctx: Context, mlist: MailingList) -> None:
    msg = make_message(body="x" * 3000 + "\n")
    assert judge(ctx, mlist, msg).action == Action.ACCEPT
    mlist.max_message_size = 1000
    verdict = judge(ctx, mlist, msg)
    assert verdict.action == Action.REJECT and "1,000 bytes" in reasons(verdict)


def test_banned_sender_is_discarded(ctx: Context, mlist: MailingList) -> None:
    ctx.session.add(Ban(list_id=mlist.id, pattern=JANE, created_by="test"))
    ctx.session.flush()
    verdict = judge(ctx, mlist, make_message())
    assert verdict.action == Action.DISCARD and "banned" in reasons(verdict)


def test_emergency_hold_holds_owners_too(ctx: Context, mlist: MailingList) -> None:
    mlist.emergency_hold = True
    assert judge(ctx, mlist, make_message(sender=OWNER)).action == Action.HOLD


def test_flagged_and_suspended_members_are_held(ctx: Context, mlist: MailingList) -> None:
    member = roster.find_member(ctx.session, mlist, JANE)
    assert member is not None
    member.moderated_until = ctx.now + timedelta(days=1)
    assert "moderated until" in reasons(judge(ctx, mlist, make_message()))
    member.moderated_until = ctx.now - timedelta(seconds=1)
    assert judge(ctx, mlist, make_message()).action == Action.ACCEPT
    member.suspended_until = ctx.now + timedelta(days=30)
    verdict = judge(ctx, mlist, make_message())
    assert verdict.action == Action.HOLD and "suspended" in reasons(verdict)


def test_moderated_list_holds_members_not_moderators(ctx: Context, mlist: MailingList) -> None:
    mlist.moderated = True
    assert judge(ctx, mlist, make_message()).action == Action.HOLD
    assert judge(ctx, mlist, make_message(sender=OWNER)).action == Action.ACCEPT


def test_announce_only(ctx: Context, mlist: MailingList) -> None:
    mlist.announce_only = True
    member = judge(ctx, mlist, make_message())
    assert member.action == Action.HOLD and "announcement" in reasons(member)
    assert judge(ctx, mlist, make_message(sender=OWNER)).action == Action.ACCEPT
    mlist.non_member_action = "reject"
    stranger = judge(ctx, mlist, make_message(sender=STRANGER), STRANGER)
    assert stranger.action == Action.REJECT and len(stranger.hits) == 1
    mlist.non_member_action = "accept"
    assert judge(ctx, mlist, make_message(sender=STRANGER), STRANGER).action == Action.HOLD


def test_duplicate_of_an_accepted_or_held_post(ctx: Context, mlist: MailingList) -> None:
    msg = make_message()
    mid = msg["Message-ID"]
    ctx.session.add(Post(list_id=mlist.id, status=PostStatus.REJECTED, message_id=mid, raw=b"x"))
    ctx.session.flush()
    assert judge(ctx, mlist, msg).action == Action.ACCEPT  # a rejected one may be resent
    ctx.session.add(Post(list_id=mlist.id, status=PostStatus.ACCEPTED, message_id=mid, raw=b"x"))
    ctx.session.flush()
    verdict = judge(ctx, mlist, msg)
    assert verdict.action == Action.DISCARD and "Duplicate" in reasons(verdict)


def test_duplicate_ignores_the_post_itself(ctx: Context, mlist: MailingList) -> None:
    msg = make_message()
    post = Post(list_id=mlist.id, status=PostStatus.HELD, message_id=msg["Message-ID"], raw=b"x")
    ctx.session.add(post)
    ctx.session.flush()
    raw = msg.as_bytes(policy=SMTP)
    context = post_context(
        ctx, mlist, parse_message(raw), size=len(raw), envelope_from=JANE, post_id=post.id
    )
    assert evaluate(context).action == Action.ACCEPT


def test_most_severe_hit_wins_and_first_rule_breaks_ties(ctx: Context, mlist: MailingList) -> None:
    def hold(post: PostContext) -> Hit:
        return Hit(Action.HOLD, "first hold")

    def reject(post: PostContext) -> Hit:
        return Hit(Action.REJECT, "reject")

    def hold_again(post: PostContext) -> Hit:
        return Hit(Action.HOLD, "second hold")

    msg = parse_message(make_message().as_bytes(policy=SMTP))
    context = post_context(ctx, mlist, msg, size=10, envelope_from=JANE)
    verdict = evaluate(context, [hold, reject, hold_again])
    assert verdict.action == Action.REJECT and verdict.reasons == ["reject"]
    verdict = evaluate(context, [hold_again, hold])
    assert verdict.decisive == Hit(Action.HOLD, "second hold")
    assert verdict.all_reasons == ["second hold", "first hold"]


def test_administrivia_rule_alone_ignores_ordinary_posts(ctx: Context, mlist: MailingList) -> None:
    msg = parse_message(make_message(subject="Quarterly report").as_bytes(policy=SMTP))
    assert administrivia(post_context(ctx, mlist, msg, size=1, envelope_from=JANE)) is None
