# SPDX-License-Identifier: Apache-2.0
"""Moderating by reply, end to end: a post from a non-member is held, the
moderators' notice is answered with approve / reject / discard, and the
first answer wins; the same for subscription requests awaiting approval."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from listserv.models import PendingRequest, Post, PostStatus, RequestKind, RequestStatus
from tests.admin_mail import (
    MODERATOR,
    OWNER,
    REQUEST,
    SECOND_MODERATOR,
    Mailbox,
    add_members,
    audit_rows,
    body_of,
    member,
    reply,
    running,
)
from tests.conftest import make_message, send, settle

pytestmark = pytest.mark.slow

POSTER = "visitor@agency.gov"
READER = "reader@agency.gov"
PAT = "pat@contractor.com"


async def held_post(service, mail: Mailbox) -> tuple[int, EmailMessage]:  # type: ignore[no-untyped-def]
    """A non-member posts; returns the post id and the first moderator's notice."""
    await send(
        service,
        make_message(sender=f"Visitor <{POSTER}>", subject="Our new toolkit", body="See it.\n"),
    )
    notice = await mail.next(MODERATOR, "awaits approval")
    await mail.next(SECOND_MODERATOR, "awaits approval")
    await mail.next(OWNER, "awaits approval")
    await mail.next(POSTER)  # told the post is held
    with service.factory() as session:
        [post] = session.scalars(select(Post)).all()
        assert post.status == PostStatus.HELD
        return post.id, notice


def post_status(service, post_id: int) -> str:  # type: ignore[no-untyped-def]
    with service.factory() as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post.status


async def test_approve_by_reply_sends_the_post_to_the_members(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, READER)
        mail = Mailbox(service)
        post_id, notice = await held_post(service, mail)
        assert str(notice["Reply-To"]).startswith("sm-cop-confirm+")
        await reply(service, notice, "Approve", sender=MODERATOR)
        copy = await mail.next(READER, "Our new toolkit")
        assert "via SM-COP" in str(copy["From"])
        answer = body_of(await mail.next(MODERATOR, "the result of your reply"))
        assert f"Post {post_id} approved" in answer
        assert post_status(service, post_id) == PostStatus.ACCEPTED
        [entry] = audit_rows(service, "post-approved")
        assert (entry.actor, entry.channel, entry.auth) == (MODERATOR, "email", "confirmed-reply")


async def test_reject_by_reply_tells_the_poster_the_reason(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, READER)
        mail = Mailbox(service)
        post_id, notice = await held_post(service, mail)
        await reply(service, notice, "reject: Please keep to social media practice.", sender=OWNER)
        told = body_of(await mail.next(POSTER, "was not posted"))
        assert "Please keep to social media practice." in told
        assert post_status(service, post_id) == PostStatus.REJECTED
        [entry] = audit_rows(service, "post-rejected")
        assert (entry.actor, entry.auth) == (OWNER, "confirmed-reply")
        assert entry.detail["reason"] == "Please keep to social media practice."
        await mail.nothing_more(READER)


async def test_discard_by_reply_tells_nobody(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, READER)
        mail = Mailbox(service)
        post_id, notice = await held_post(service, mail)
        await reply(service, notice, "discard", sender=MODERATOR)
        await mail.next(MODERATOR, "the result of your reply")
        assert post_status(service, post_id) == PostStatus.DISCARDED
        await mail.nothing_more(POSTER)
        await mail.nothing_more(READER)
        [entry] = audit_rows(service, "post-discarded")
        assert (entry.actor, entry.auth) == (MODERATOR, "confirmed-reply")


async def test_a_reply_without_a_decision_changes_nothing_and_keeps_the_address_working(
    db_url, tmp_path
) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, READER)
        mail = Mailbox(service)
        post_id, notice = await held_post(service, mail)
        await reply(service, notice, "Thanks, looking at it now.", sender=MODERATOR)
        answer = body_of(await mail.next(MODERATOR, "the result of your reply"))
        assert "did not say what to do" in answer and "APPROVE" in answer
        assert post_status(service, post_id) == PostStatus.HELD
        # An autoresponder answering the notice is never taken for a decision either.
        vacation = make_message(
            sender=MODERATOR,
            to=str(notice["Reply-To"]),
            subject="Out of office: approve later",
            body="approve\n",
            Auto_Submitted="auto-replied",
        )
        await send(service, vacation)
        await settle(service)
        assert post_status(service, post_id) == PostStatus.HELD
        with service.factory() as session:
            [token] = session.scalars(
                select(PendingRequest).where(PendingRequest.kind == RequestKind.MODERATE_POST)
            ).all()
            assert token.status == RequestStatus.PENDING
        await reply(service, notice, "approve", sender=MODERATOR)
        await mail.next(READER, "Our new toolkit")
        assert post_status(service, post_id) == PostStatus.ACCEPTED


async def test_the_first_decision_wins_and_a_late_moderator_is_told_who(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        add_members(service, READER)
        mail = Mailbox(service)
        post_id, notice = await held_post(service, mail)
        late_notice = notice  # both moderators got the same token
        await reply(service, notice, "approve", sender=MODERATOR)
        await mail.next(READER, "Our new toolkit")
        await reply(service, late_notice, "reject spam", sender=SECOND_MODERATOR)
        late = body_of(await mail.next(SECOND_MODERATOR, "the result of your reply"))
        assert f"Post {post_id} was already handled by {MODERATOR}." in late
        assert post_status(service, post_id) == PostStatus.ACCEPTED
        assert audit_rows(service, "post-rejected") == []
        await mail.nothing_more(READER)  # sent once
        await mail.nothing_more(POSTER)  # not told of a rejection that did not happen


async def test_decision_sent_to_the_request_address_with_the_code_in_the_subject(
    db_url, tmp_path
) -> None:
    async with running(db_url, tmp_path) as service:
        mail = Mailbox(service)
        post_id, notice = await held_post(service, mail)
        await reply(service, notice, "discard", sender=SECOND_MODERATOR, to=REQUEST)
        await mail.next(SECOND_MODERATOR, "the result of your reply")
        assert post_status(service, post_id) == PostStatus.DISCARDED
        [entry] = audit_rows(service, "post-discarded")
        assert entry.actor == SECOND_MODERATOR


async def test_decision_in_the_subject_when_the_body_has_none(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path) as service:
        mail = Mailbox(service)
        post_id, notice = await held_post(service, mail)
        await reply(service, notice, "", sender=MODERATOR, subject="Reject off-topic advert")
        told = body_of(await mail.next(POSTER, "was not posted"))
        assert "off-topic advert" in told
        assert post_status(service, post_id) == PostStatus.REJECTED


# --------------------------------------------------------------------------- subscriptions


async def awaiting_approval(service, mail: Mailbox) -> EmailMessage:  # type: ignore[no-untyped-def]
    """An ineligible address confirms its request; returns the owners' notice."""
    await send(service, make_message(sender=f"Pat <{PAT}>", to="sm-cop-join@lists.example.gov"))
    confirmation = await mail.next(PAT, "confirm")
    await reply(service, confirmation, "yes", sender=PAT)
    notice = await mail.next(OWNER, "needs approval")
    await mail.next(PAT)  # "an owner will review it"
    return notice


async def test_owner_approves_a_subscription_by_reply(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path, ineligible_policy="hold") as service:
        mail = Mailbox(service)
        notice = await awaiting_approval(service, mail)
        assert str(notice["Reply-To"]).startswith("sm-cop-confirm+")
        assert "APPROVE SM-COP R" in body_of(notice)
        await reply(service, notice, "approve", sender=OWNER)
        await mail.next(PAT, "Welcome")
        assert member(service, PAT) is not None
        add = [a for a in audit_rows(service, "member-add") if a.target == PAT]
        assert [(a.actor, a.channel, a.auth) for a in add] == [(OWNER, "email", "confirmed-reply")]
        answer = body_of(await mail.next(OWNER, "the result of your reply"))
        assert f"{PAT} joined SM-COP" in answer
        # A second answer, after the first: told who handled it, nothing changes.
        await reply(service, notice, "reject", sender=OWNER)
        late = body_of(await mail.next(OWNER, "the result of your reply"))
        assert f"was already handled by {OWNER}" in late
        assert member(service, PAT) is not None


async def test_owner_rejects_a_subscription_by_reply_and_the_requester_is_told(
    db_url, tmp_path
) -> None:
    async with running(db_url, tmp_path, ineligible_policy="hold") as service:
        mail = Mailbox(service)
        notice = await awaiting_approval(service, mail)
        await reply(service, notice, "Reject This list is for government staff.", sender=OWNER)
        told = body_of(await mail.next(PAT))
        assert "This list is for government staff." in told
        assert member(service, PAT) is None
        [entry] = audit_rows(service, "subscribe-rejected")
        assert (entry.actor, entry.auth) == (OWNER, "confirmed-reply")


async def test_owner_discards_a_subscription_by_reply_silently(db_url, tmp_path) -> None:
    async with running(db_url, tmp_path, ineligible_policy="hold") as service:
        mail = Mailbox(service)
        notice = await awaiting_approval(service, mail)
        await reply(service, notice, "discard", sender=OWNER)
        await mail.next(OWNER, "the result of your reply")
        await mail.nothing_more(PAT)
        with service.factory() as session:
            subscribe = session.scalar(
                select(PendingRequest).where(PendingRequest.kind == RequestKind.SUBSCRIBE)
            )
            assert subscribe is not None and subscribe.status == RequestStatus.REJECTED
        [entry] = audit_rows(service, "subscribe-discarded")
        assert (entry.actor, entry.auth) == (OWNER, "confirmed-reply")
