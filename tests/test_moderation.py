# SPDX-License-Identifier: Apache-2.0
"""Held posts: hold notices, decisions and "first decision wins", on a real database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from sqlalchemy import func, select

from listserv import roster
from listserv.acts import held as held_acts
from listserv.acts.errors import ActError
from listserv.addresses import parse_recipient
from listserv.context import Context
from listserv.lists import get_list
from listserv.message import parse_message
from listserv.models import (
    AuditEvent,
    InboundMessage,
    MailingList,
    OutboxJob,
    OutboxRecipient,
    PendingRequest,
    Post,
    PostStatus,
    RequestKind,
    RequestStatus,
)
from listserv.outcomes import Outcome, Status
from listserv.posting.receive import receive_post
from listserv.routing.delivery import Delivery
from listserv.routing.router import route
from listserv.tokens import hash_token
from tests.actors import as_actor
from tests.conftest import make_message

MEMBERS = ["jane.doe@agency.gov", "bob.smith@agency.gov", "carol@army.mil"]
STRANGER = "stranger@agency.gov"
OWNER = "owner@digital.gov"


def _decide(
    act: Callable[..., held_acts.Decision],
    ctx: Context,
    post: Post,
    *,
    actor: str,
    auth: str,
    **kw: str,
) -> Outcome:
    """A moderator's decision through the acts, told as an email command would tell it."""
    mlist = ctx.session.get(MailingList, post.list_id)
    assert mlist is not None
    try:
        decision = act(ctx, as_actor(actor, "cli", auth), mlist, post.id, **kw)
    except ActError as exc:
        return Outcome.refused(exc.message)
    return Outcome.done(decision.text)


def deliver(ctx: Context, msg: EmailMessage, envelope_from: str = STRANGER) -> str:
    """The processing stage's call for one message to the posting address, no sockets."""
    raw = msg.as_bytes(policy=SMTP)
    inbound = InboundMessage(mail_from=envelope_from, rcpt_tos=[msg["To"]], raw=raw, size=len(raw))
    ctx.session.add(inbound)
    ctx.session.flush()
    recipient = parse_recipient(str(msg["To"]), ctx.settings.site.domains, "listserv")
    assert recipient is not None
    mlist = get_list(ctx.session, recipient.list_name)
    delivery = Delivery(inbound, parse_message(raw), recipient, mlist, envelope_from)
    return receive_post(ctx, delivery, forward=route)


@pytest.fixture
def held(ctx_factory: Callable[..., Context]) -> int:
    """A non-member's post, held; its id. Everything committed."""
    ctx = ctx_factory()
    with ctx.session.begin():
        mlist = get_list(ctx.session, "sm-cop")
        assert mlist is not None
        for address in MEMBERS:
            roster.add_member(ctx.session, mlist, address, actor=as_actor("test"))
        roster.add_member(
            ctx.session, mlist, "mod@agency.gov", role="moderator", actor=as_actor("test")
        )
        note = deliver(ctx, make_message(sender=f"Stan Ger <{STRANGER}>", subject="Outside"))
        assert note.startswith("post ") and " held: " in note
        post_id = ctx.session.scalar(select(func.max(Post.id)))
    ctx.session.close()
    assert post_id is not None
    return post_id


def service_mail_to(ctx: Context, address: str) -> list[EmailMessage]:
    jobs = ctx.session.scalars(
        select(OutboxJob)
        .join(OutboxRecipient, OutboxRecipient.job_id == OutboxJob.id)
        .where(OutboxJob.kind == "service", OutboxRecipient.address == address)
        .order_by(OutboxJob.id)
    ).all()
    return [parse_message(job.raw) for job in jobs]


def test_hold_notifies_every_owner_and_moderator_with_a_confirm_address(
    ctx_factory: Callable[..., Context], held: int
) -> None:
    ctx = ctx_factory()
    request = ctx.session.scalar(select(PendingRequest))
    assert request is not None and request.kind == RequestKind.MODERATE_POST
    for address in (OWNER, "mod@agency.gov"):
        [notice] = service_mail_to(ctx, address)
        reply_to = str(notice["Reply-To"])
        token = reply_to.split("+", 1)[1].split("@", 1)[0]
        assert reply_to == f"sm-cop-confirm+{token}@lists.example.gov"
        assert hash_token(token) == request.token_hash
        body = notice.get_content()
        assert f"listserv held approve sm-cop {held}" in body
        assert "reject <reason" in body and "discard" in body
        assert f"{STRANGER} is not a member of SM-COP" in body
        assert notice["Auto-Submitted"] == "auto-replied"
    [told] = service_mail_to(ctx, STRANGER)
    assert "awaits approval" in str(told["Subject"])
    for member in MEMBERS:
        assert service_mail_to(ctx, member) == []


def test_approve_continues_as_if_accepted(ctx_factory: Callable[..., Context], held: int) -> None:
    ctx = ctx_factory()
    with ctx.session.begin():
        post = ctx.session.get(Post, held)
        assert post is not None
        outcome = _decide(held_acts.approve_post, ctx, post, actor="alice@host", auth="host")
        assert outcome.status == Status.DONE, outcome.text
        assert "3 member(s)" in outcome.text
    post = ctx.session.get(Post, held)
    assert post is not None
    assert (post.status, post.decided_by, post.recipient_count) == ("accepted", "alice@host", 3)
    job = ctx.session.scalar(select(OutboxJob).where(OutboxJob.post_id == held))
    assert job is not None and job.kind == "post"
    recipients = ctx.session.scalars(
        select(OutboxRecipient.address).where(OutboxRecipient.job_id == job.id)
    ).all()
    assert sorted(recipients) == sorted(MEMBERS)
    assert b"Freedom of Information Act" in job.raw
    request = ctx.session.scalar(select(PendingRequest))
    assert request is not None
    assert (request.status, request.resolved_by) == (RequestStatus.DONE, "alice@host")
    event = ctx.session.scalar(select(AuditEvent).where(AuditEvent.action == "post-approved"))
    assert event is not None
    assert (event.actor, event.auth, event.channel) == ("alice@host", "host", "cli")


def test_first_decision_wins(ctx_factory: Callable[..., Context], held: int) -> None:
    first = ctx_factory()
    with first.session.begin():
        post = first.session.get(Post, held)
        assert post is not None
        assert _decide(
            held_acts.discard_post, first, post, actor="alice@host", auth="host"
        ).status == (Status.DONE)
    first.session.close()
    later = ctx_factory()
    with later.session.begin():
        post = later.session.get(Post, held)
        assert post is not None
        for decide in (
            lambda: _decide(held_acts.approve_post, later, post, actor="bob@host", auth="host"),
            lambda: _decide(held_acts.reject_post, later, post, actor="bob@host", auth="host"),
            lambda: _decide(held_acts.discard_post, later, post, actor="bob@host", auth="host"),
        ):
            outcome = decide()
            assert outcome.status == Status.REFUSED
            assert outcome.text == f"Post {held} was already handled by alice@host."
    assert (
        later.session.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "post")
        )
        == 0
    )


def test_stale_held_post_cannot_be_decided_twice(
    ctx_factory: Callable[..., Context], held: int
) -> None:
    """The status check is in the UPDATE, not in a copy of the row read earlier."""
    stale = ctx_factory()
    with stale.session.begin():
        stale_post = stale.session.get(Post, held)
        assert stale_post is not None and stale_post.status == PostStatus.HELD
        stale.session.expunge(stale_post)
    other = ctx_factory()
    with other.session.begin():
        post = other.session.get(Post, held)
        assert post is not None
        _decide(held_acts.approve_post, other, post, actor="alice@host", auth="host")
    other.session.close()
    with stale.session.begin():
        stale_post = stale.session.merge(stale_post, load=False)
        outcome = _decide(held_acts.approve_post, stale, stale_post, actor="bob@host", auth="host")
    assert outcome.status == Status.REFUSED and "alice@host" in outcome.text
    assert (
        stale.session.scalar(
            select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "post")
        )
        == 1
    )


def test_two_moderators_at_once_send_the_post_once(
    ctx_factory: Callable[..., Context], held: int
) -> None:
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def decide(actor: str) -> None:
        ctx = ctx_factory()
        try:
            with ctx.session.begin():
                post = ctx.session.get(Post, held)
                assert post is not None
                time.sleep(0.05)
                outcomes.append(
                    _decide(held_acts.approve_post, ctx, post, actor=actor, auth="host").status
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            ctx.session.close()

    threads = [threading.Thread(target=decide, args=(f"m{i}@host",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(outcomes) == [Status.DONE, Status.REFUSED]
    check = ctx_factory()
    jobs = check.session.scalar(
        select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "post")
    )
    assert jobs == 1


def test_reject_tells_the_poster_the_reason(ctx_factory: Callable[..., Context], held: int) -> None:
    ctx = ctx_factory()
    with ctx.session.begin():
        post = ctx.session.get(Post, held)
        assert post is not None
        outcome = _decide(
            held_acts.reject_post,
            ctx,
            post,
            actor="mod@agency.gov",
            auth="confirmed-reply",
            reason="Off topic",
        )
        assert outcome.status == Status.DONE and "was told" in outcome.text
    post = ctx.session.get(Post, held)
    assert post is not None and post.status == PostStatus.REJECTED
    assert "Rejected by a moderator: Off topic" in post.reason
    _held_notice, rejected = service_mail_to(ctx, STRANGER)
    assert "was not posted" in str(rejected["Subject"])
    text = rejected.get_content()
    assert "a moderator rejected it" in text and "Off topic" in text
    request = ctx.session.scalar(select(PendingRequest))
    assert request is not None and request.status == RequestStatus.DONE
    assert request.reason == "Off topic"


def test_discard_tells_nobody(ctx_factory: Callable[..., Context], held: int) -> None:
    ctx = ctx_factory()
    with ctx.session.begin():
        before = ctx.session.scalar(select(func.count()).select_from(OutboxJob))
        post = ctx.session.get(Post, held)
        assert post is not None
        _decide(held_acts.discard_post, ctx, post, actor="alice@host", auth="host")
        assert ctx.session.scalar(select(func.count()).select_from(OutboxJob)) == before
    post = ctx.session.get(Post, held)
    assert post is not None and post.status == PostStatus.DISCARDED and post.raw


def test_decided_by_rules_reads_well(ctx_factory: Callable[..., Context]) -> None:
    ctx = ctx_factory()
    with ctx.session.begin():
        mlist = get_list(ctx.session, "sm-cop")
        assert mlist is not None
        roster.add_member(ctx.session, mlist, MEMBERS[0], actor=as_actor("test"))
        deliver(ctx, make_message(sender=MEMBERS[0]), MEMBERS[0])
        post = ctx.session.scalar(select(Post))
        assert post is not None and post.status == PostStatus.ACCEPTED
        outcome = _decide(held_acts.approve_post, ctx, post, actor="alice@host", auth="host")
    assert outcome.text == f"Post {post.id} was already handled by the posting rules."


def test_list_without_moderators_sends_hold_notices_to_the_postmaster(
    ctx_factory: Callable[..., Context],
) -> None:
    ctx = ctx_factory()
    with ctx.session.begin():
        mlist = get_list(ctx.session, "sm-cop")
        assert mlist is not None
        owner = roster.find_member(ctx.session, mlist, OWNER, "owner")
        assert owner is not None
        roster.remove_member(ctx.session, mlist, owner, actor=as_actor("test"))
        deliver(ctx, make_message(sender=STRANGER))
        [notice] = service_mail_to(ctx, ctx.settings.site.postmaster)
        assert "awaits approval" in str(notice["Subject"])
