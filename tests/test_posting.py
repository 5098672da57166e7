# SPDX-License-Identifier: Apache-2.0
"""The posting pipeline end to end: real SMTP in, rules, archive, fan-out, Maildir out."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from listserv.app import Service
from listserv.models import (
    AuditEvent,
    Ban,
    DeliveryMode,
    DeliveryStatus,
    Member,
    OutboxJob,
    OutboxRecipient,
    PendingRequest,
    PostStatus,
    RequestKind,
    RequestStatus,
    Role,
    utcnow,
)
from listserv.tokens import check_unsubscribe_token
from tests.conftest import TEST_SECRET, mail_to, make_message, send, settle
from tests.posting_helpers import (
    BOB,
    CAROL,
    JANE,
    LIST,
    OWNER,
    POSTING,
    add_member,
    all_posts,
    copies_of,
    delivered,
    notices_to,
    post_and_settle,
    post_for,
    set_list,
)

FOIA = "under the Freedom of Information Act (FOIA)"
DIGEST = "dora.digest@agency.gov"
NOMAIL = "ned.nomail@agency.gov"
DISABLED = "dan.bouncing@agency.gov"
STRANGER = "stranger@agency.gov"


def roster_of_three(service: Service) -> None:
    add_member(service, JANE, "Jane Doe")
    add_member(service, BOB, "Bob Smith")
    add_member(service, CAROL, "Carol")


async def test_member_post_reaches_every_regular_member_once_decorated(service: Service) -> None:
    roster_of_three(service)
    add_member(service, DIGEST, delivery_mode=DeliveryMode.DIGEST)
    add_member(service, NOMAIL, delivery_mode=DeliveryMode.NOMAIL)
    add_member(service, DISABLED, delivery_status=DeliveryStatus.DISABLED_BOUNCING)
    msg = make_message(subject="Threads policy", body="Does anyone have a Threads policy?\n")
    mid = msg["Message-ID"]
    await post_and_settle(service, msg)

    copies = copies_of(service, mid)
    assert sorted(copies) == sorted([JANE, BOB, CAROL])
    assert all(len(c) == 1 for c in copies.values())
    copy = copies[BOB][0]
    assert copy["Return-Path"] == "<sm-cop-bounces+bob.smith=agency.gov@lists.example.gov>"
    [author] = copy["From"].addresses
    assert (author.display_name, author.addr_spec) == ("Jane Doe via SM-COP", POSTING)
    assert JANE in str(copy["Reply-To"])
    assert str(copy["Subject"]) == "[SM-COP] Threads policy"
    assert copy["Precedence"] == "list"
    assert copy["List-Id"] == "SM-COP <sm-cop.lists.example.gov>"
    assert copy["List-Post"] == "<mailto:sm-cop@lists.example.gov>"
    assert "sm-cop-request@lists.example.gov" in copy["List-Help"]
    assert copy["List-Owner"] == "<mailto:sm-cop-owner@lists.example.gov>"
    assert copy["List-Subscribe"] == "<mailto:sm-cop-join@lists.example.gov>"
    assert copy["List-Archive"].endswith("/lists/sm-cop/archive>")
    assert copy["X-Loop"] == POSTING
    assert copy["Sender"] == "sm-cop-bounces@lists.example.gov"
    assert copy["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = " ".join(str(copy["List-Unsubscribe"]).split())
    assert "/unsubscribe/sm-cop/" in unsubscribe
    assert "<mailto:sm-cop-leave@lists.example.gov>" in unsubscribe
    text = copy.get_content()
    assert text.startswith("Does anyone have a Threads policy?")
    assert text.count(FOIA) == 1
    assert "sm-cop-leave@lists.example.gov" in text
    # Nobody but the regular members received anything at all.
    assert {str(m["Delivered-To"]) for m in delivered(service)} == {JANE, BOB, CAROL}

    post = post_for(service, mid)
    assert post.status == PostStatus.ACCEPTED
    assert (post.sender, post.sender_name, post.subject) == (JANE, "Jane Doe", "Threads policy")
    assert post.sha256 == hashlib.sha256(post.raw).hexdigest()
    assert post.date is not None and post.recipient_count == 3
    with service.factory() as session:
        job = session.scalar(select(OutboxJob).where(OutboxJob.post_id == post.id))
        assert job is not None and job.kind == "post" and job.personalized and job.verp
        assert job.mail_from == "sm-cop-bounces@lists.example.gov"
        assert post.decorated_sha256 == hashlib.sha256(job.raw).hexdigest()
        assert post.decorated_size == len(job.raw)
        recipients = session.scalars(
            select(OutboxRecipient).where(OutboxRecipient.job_id == job.id)
        ).all()
        assert len(recipients) == 3
        for recipient in recipients:
            member = session.get(Member, recipient.member_id)
            assert member is not None and member.address == recipient.address
            nonce = member.unsubscribe_nonce
            assert (
                check_unsubscribe_token(
                    TEST_SECRET, recipient.unsubscribe_token, LIST, {recipient.member_id: nonce}
                )
                == recipient.member_id
            )
            [own] = copies[recipient.address]
            assert f"/unsubscribe/sm-cop/{recipient.unsubscribe_token}>" in str(
                own["List-Unsubscribe"]
            )


async def test_reply_subject_keeps_one_prefix(service: Service) -> None:
    roster_of_three(service)
    msg = make_message(subject="Re: [SM-COP] Threads policy", In_Reply_To="<abc@agency.gov>")
    await post_and_settle(service, msg)
    [copy] = copies_of(service, msg["Message-ID"])[BOB]
    assert str(copy["Subject"]) == "Re: [SM-COP] Threads policy"
    assert post_for(service, msg["Message-ID"]).in_reply_to == "<abc@agency.gov>"


async def test_footer_lands_in_both_halves_of_multipart_alternative(service: Service) -> None:
    roster_of_three(service)
    msg = make_message(subject="Rich text", body="Plain words.\n")
    msg.add_alternative("<html><body><p>Rich words.</p></body></html>\n", subtype="html")
    await post_and_settle(service, msg)
    [copy] = copies_of(service, msg["Message-ID"])[CAROL]
    assert copy.get_content_type() == "multipart/alternative"
    plain = copy.get_body(("plain",))
    html = copy.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().count(FOIA) == 1
    html_text = html.get_content()
    assert html_text.count(FOIA) == 1
    assert html_text.index(FOIA) < html_text.lower().index("</body>")
    assert "Rich words." in html_text


async def test_bulk_copy_has_mailto_unsubscribe_and_no_one_click(service: Service) -> None:
    roster_of_three(service)
    set_list(service, delivery_style="bulk")
    msg = make_message(subject="Bulk")
    assert await send(service, msg) == {}
    await mail_to(service, CAROL)
    await settle(service)
    copies = copies_of(service, msg["Message-ID"])
    assert sorted(copies) == sorted([JANE, BOB, CAROL])
    copy = copies[JANE][0]
    assert copy["Return-Path"] == "<sm-cop-bounces@lists.example.gov>"
    unsubscribe = " ".join(str(copy["List-Unsubscribe"]).split())
    assert unsubscribe.startswith("<mailto:sm-cop-leave@lists.example.gov>")
    assert "/lists/sm-cop>" in unsubscribe
    assert copy["List-Unsubscribe-Post"] is None
    with service.factory() as session:
        job = session.scalar(select(OutboxJob).where(OutboxJob.kind == "post"))
        assert job is not None and not job.personalized and not job.verp


async def test_non_member_post_is_held_and_everyone_concerned_told(service: Service) -> None:
    roster_of_three(service)
    msg = make_message(sender=f"Stan Ger <{STRANGER}>", subject="Hello from outside")
    await post_and_settle(service, msg)
    mid = msg["Message-ID"]
    assert copies_of(service, mid) == {}
    post = post_for(service, mid)
    assert post.status == PostStatus.HELD
    assert "not a member" in post.reason
    [notice] = notices_to(service, OWNER)
    assert f"post {post.id}" in notice["Subject"]
    assert str(notice["Reply-To"]).startswith("sm-cop-confirm+")
    body = notice.get_content()
    for line in ("approve", "reject <reason", "discard", f"listserv held approve sm-cop {post.id}"):
        assert line in body
    assert "Hello everyone." in body  # the excerpt
    [told] = notices_to(service, STRANGER)
    assert "awaits approval" in told["Subject"]
    assert "not a member" in told.get_content()
    with service.factory() as session:
        request = session.scalar(select(PendingRequest))
        assert request is not None
        assert request.kind == RequestKind.MODERATE_POST
        assert request.status == RequestStatus.PENDING
        assert request.payload == {"post_id": post.id}
        assert request.expires_at - request.created_at == timedelta(days=14)


async def test_non_member_post_rejected_when_the_list_says_so(service: Service) -> None:
    roster_of_three(service)
    set_list(service, non_member_action="reject")
    msg = make_message(sender=STRANGER, subject="Let me in")
    await post_and_settle(service, msg)
    assert copies_of(service, msg["Message-ID"]) == {}
    assert post_for(service, msg["Message-ID"]).status == PostStatus.REJECTED
    [notice] = notices_to(service, STRANGER)
    assert "was not posted" in notice["Subject"]
    assert "not a member" in notice.get_content()
    assert notice["In-Reply-To"] == msg["Message-ID"]
    assert notices_to(service, OWNER) == []


async def test_non_member_post_discarded_silently_but_kept(service: Service) -> None:
    roster_of_three(service)
    set_list(service, non_member_action="discard")
    msg = make_message(sender=STRANGER)
    await post_and_settle(service, msg)
    assert delivered(service) == []
    post = post_for(service, msg["Message-ID"])
    assert post.status == PostStatus.DISCARDED and post.raw
    with service.factory() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "post-discarded"))
        assert event is not None and event.target == f"post:{post.id}"


async def test_non_member_post_accepted_when_the_list_is_open(service: Service) -> None:
    roster_of_three(service)
    set_list(service, non_member_action="accept")
    msg = make_message(sender=STRANGER)
    await post_and_settle(service, msg)
    assert sorted(copies_of(service, msg["Message-ID"])) == sorted([JANE, BOB, CAROL])


async def test_owner_posts_although_not_a_member(service: Service) -> None:
    roster_of_three(service)
    msg = make_message(sender=OWNER)
    await post_and_settle(service, msg)
    assert sorted(copies_of(service, msg["Message-ID"])) == sorted([JANE, BOB, CAROL])


async def test_moderated_list_holds_members_but_not_owners(service: Service) -> None:
    roster_of_three(service)
    set_list(service, moderated=True)
    member_post = make_message(sender=BOB)
    owner_post = make_message(sender=OWNER)
    await post_and_settle(service, member_post)
    await post_and_settle(service, owner_post)
    assert post_for(service, member_post["Message-ID"]).status == PostStatus.HELD
    assert "moderated" in post_for(service, member_post["Message-ID"]).reason
    assert copies_of(service, member_post["Message-ID"]) == {}
    assert len(copies_of(service, owner_post["Message-ID"])) == 3


async def test_announce_only_list_takes_posts_from_owners_and_moderators(
    service: Service,
) -> None:
    roster_of_three(service)
    add_member(service, "mod@agency.gov", role=Role.MODERATOR)
    set_list(service, announce_only=True)
    member_post = make_message(sender=BOB)
    moderator_post = make_message(sender="mod@agency.gov")
    await post_and_settle(service, member_post)
    await post_and_settle(service, moderator_post)
    held = post_for(service, member_post["Message-ID"])
    assert held.status == PostStatus.HELD and "announcement list" in held.reason
    assert len(copies_of(service, moderator_post["Message-ID"])) == 3


async def test_announce_only_never_accepts_a_non_member(service: Service) -> None:
    set_list(service, announce_only=True, non_member_action="accept")
    msg = make_message(sender=STRANGER)
    await post_and_settle(service, msg)
    assert post_for(service, msg["Message-ID"]).status == PostStatus.HELD


async def test_emergency_hold_holds_even_the_owner(service: Service) -> None:
    roster_of_three(service)
    set_list(service, emergency_hold=True)
    msg = make_message(sender=OWNER)
    await post_and_settle(service, msg)
    post = post_for(service, msg["Message-ID"])
    assert post.status == PostStatus.HELD and "emergency" in post.reason
    assert copies_of(service, msg["Message-ID"]) == {}


@pytest.mark.parametrize(
    ("flags", "held"),
    [
        ({"moderated": True}, True),
        ({"moderated_until": utcnow() + timedelta(days=3)}, True),
        ({"suspended_until": utcnow() + timedelta(days=3)}, True),
        ({"moderated_until": utcnow() - timedelta(days=1)}, False),
    ],
    ids=["moderated", "moderated-until-future", "suspended", "moderation-lapsed"],
)
async def test_flagged_member_is_held(service: Service, flags: dict, held: bool) -> None:
    roster_of_three(service)
    add_member(service, "flagged@agency.gov", **flags)
    msg = make_message(sender="flagged@agency.gov")
    await post_and_settle(service, msg)
    post = post_for(service, msg["Message-ID"])
    assert post.status == (PostStatus.HELD if held else PostStatus.ACCEPTED)
    assert bool(copies_of(service, msg["Message-ID"])) is not held


async def test_banned_sender_is_discarded_without_reply(service: Service) -> None:
    roster_of_three(service)
    with service.factory() as session, session.begin():
        session.add(Ban(list_id=None, pattern="*@spam.example", created_by="test"))
    msg = make_message(sender="x@spam.example")
    await post_and_settle(service, msg)
    post = post_for(service, msg["Message-ID"])
    assert post.status == PostStatus.DISCARDED and "banned" in post.reason
    assert delivered(service) == []


async def test_oversize_post_is_rejected_with_the_limit(service: Service) -> None:
    roster_of_three(service)
    set_list(service, max_message_size=2000)
    msg = make_message(sender=BOB, body="word " * 1000 + "\n")
    await post_and_settle(service, msg)
    assert post_for(service, msg["Message-ID"]).status == PostStatus.REJECTED
    assert copies_of(service, msg["Message-ID"]) == {}
    [notice] = notices_to(service, BOB)
    assert "2,000 bytes" in notice.get_content()


@pytest.mark.parametrize(
    "headers",
    [{"X_Loop": POSTING}, {"List_Id": "SM-COP <sm-cop.lists.example.gov>"}],
    ids=["x-loop", "list-id"],
)
async def test_our_own_mail_coming_back_is_discarded(service: Service, headers: dict) -> None:
    roster_of_three(service)
    msg = make_message(sender=BOB, **headers)
    await post_and_settle(service, msg)
    post = post_for(service, msg["Message-ID"])
    assert post.status == PostStatus.DISCARDED and "loop" in post.reason.lower()
    assert delivered(service) == []


@pytest.mark.parametrize(
    ("headers", "mail_from"),
    [
        ({"Auto_Submitted": "auto-replied"}, BOB),
        ({"Precedence": "bulk"}, STRANGER),
        ({}, ""),
        ({}, "MAILER-DAEMON@agency.gov"),
    ],
    ids=["auto-submitted", "precedence-bulk", "null-sender", "mailer-daemon"],
)
async def test_auto_replies_are_discarded_and_never_answered(
    service: Service, headers: dict, mail_from: str
) -> None:
    roster_of_three(service)
    set_list(service, non_member_action="reject")  # a human non-member would get a reply
    sender = BOB if mail_from in (BOB, "", "MAILER-DAEMON@agency.gov") else STRANGER
    msg = make_message(sender=sender, subject="Out of office", **headers)
    await post_and_settle(service, msg, mail_from=mail_from)
    post = post_for(service, msg["Message-ID"])
    assert post.status == PostStatus.DISCARDED
    assert "Automatic message" in post.reason
    assert delivered(service) == []


async def test_unsubscribe_sent_to_the_list_goes_to_request_handling(service: Service) -> None:
    roster_of_three(service)
    msg = make_message(sender=BOB, subject="unsubscribe", body="\n")
    await post_and_settle(service, msg)
    assert copies_of(service, msg["Message-ID"]) == {}
    post = post_for(service, msg["Message-ID"])
    assert post.status == PostStatus.DISCARDED
    assert "sm-cop-request@lists.example.gov" in post.reason
    [confirmation] = notices_to(service, BOB)
    assert "Confirm leaving" in confirmation["Subject"]
    assert {str(m["Delivered-To"]) for m in delivered(service)} == {BOB}


async def test_join_phrase_sent_to_the_list_starts_a_subscription(service: Service) -> None:
    msg = make_message(
        sender=f"Stan Ger <{STRANGER}>",
        subject="Join the Social Media Community",
        body="Stan Ger, Web Manager\n",
    )
    await post_and_settle(service, msg)
    [confirmation] = notices_to(service, STRANGER)
    assert "Confirm joining" in confirmation["Subject"]
    assert post_for(service, msg["Message-ID"]).status == PostStatus.DISCARDED
    assert notices_to(service, OWNER) == []  # not held for the moderators


async def test_help_subject_over_a_real_question_is_held_not_answered(service: Service) -> None:
    roster_of_three(service)
    msg = make_message(
        sender=BOB, subject="Help", body="Our agency account was hacked.\nWho do we call?\n"
    )
    await post_and_settle(service, msg)
    post = post_for(service, msg["Message-ID"])
    assert post.status == PostStatus.HELD and "looks like a command" in post.reason


async def test_duplicate_message_id_is_discarded(service: Service) -> None:
    roster_of_three(service)
    msg = make_message(sender=BOB)
    await post_and_settle(service, msg)
    await post_and_settle(service, msg)
    first, second = all_posts(service)
    assert (first.status, second.status) == (PostStatus.ACCEPTED, PostStatus.DISCARDED)
    assert "Duplicate" in second.reason
    copies = copies_of(service, msg["Message-ID"])
    assert sorted(copies) == sorted([JANE, BOB, CAROL])
    assert all(len(c) == 1 for c in copies.values())


async def test_every_message_is_stored_whatever_its_fate(service: Service) -> None:
    roster_of_three(service)
    messages: list[EmailMessage] = [
        make_message(sender=BOB),
        make_message(sender=STRANGER),
        make_message(sender=BOB, X_Loop=POSTING),
    ]
    for msg in messages:
        await send(service, msg)
    await settle(service)
    stored = {p.message_id: p.status for p in all_posts(service)}
    assert stored == {
        messages[0]["Message-ID"]: PostStatus.ACCEPTED,
        messages[1]["Message-ID"]: PostStatus.HELD,
        messages[2]["Message-ID"]: PostStatus.DISCARDED,
    }
    with service.factory() as session:
        actions = sorted(
            session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("post-%"))).all()
        )
        assert actions == ["post-accepted", "post-discarded", "post-held"]
        assert session.scalar(select(func.count()).select_from(OutboxJob)) >= 1


async def test_posters_own_reply_to_is_kept(service: Service) -> None:
    roster_of_three(service)
    msg = make_message(sender="Jane Doe <jane.doe@agency.gov>", Reply_To="desk@agency.gov")
    await post_and_settle(service, msg)
    [copy] = copies_of(service, msg["Message-ID"])[CAROL]
    assert str(copy["Reply-To"]) == "desk@agency.gov"
    assert copy["From"].addresses[0].display_name == "Jane Doe via SM-COP"


async def test_command_sent_to_list_and_request_address_is_answered_once(
    service: Service,
) -> None:
    roster_of_three(service)
    msg = make_message(sender=BOB, subject="unsubscribe", body="\n")
    await post_and_settle(service, msg, rcpt_to=[POSTING, "sm-cop-request@lists.example.gov"])
    [confirmation] = notices_to(service, BOB)
    assert "Confirm leaving" in confirmation["Subject"]
    assert post_for(service, msg["Message-ID"]).status == PostStatus.DISCARDED
