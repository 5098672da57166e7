# SPDX-License-Identifier: Apache-2.0
"""Plain-text digests (RFC 1153) beside MIME ones, chosen per member by email
(`SET SM-COP DIGEST PLAIN`), and the digest schedule: daily or weekly at an hour,
early once the posts reach a size."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from listserv import roster
from listserv.app import Service
from listserv.context import Context
from listserv.digests import next_digest_at, send_digest, send_digests
from listserv.lists import get_list
from listserv.models import DeliveryMode, MailingList, Member, OutboxJob
from tests.actors import as_actor
from tests.archive_helpers import archive_raw, raw_post
from tests.conftest import mail_to, make_message, send, settle
from tests.posting_helpers import JANE, add_member

BOB = "bob.smith@agency.gov"
CAROL = "carol@army.mil"


async def _confirm_by_reply(service: Service, address: str, count: int) -> None:
    mails = await mail_to(service, address, count=count)
    [confirmation] = [m for m in mails if "-confirm+" in str(m["Reply-To"] or "")]
    reply = make_message(
        sender=address,
        to=confirmation["Reply-To"],
        subject="Re: " + confirmation["Subject"],
        body="Yes.\n",
    )
    assert await send(service, reply) == {}
    await settle(service)


async def test_plain_and_mime_digests_each_to_the_members_who_chose_them(
    service: Service,
) -> None:
    add_member(service, JANE, "Jane Doe")
    add_member(service, BOB, "Bob Smith")
    add_member(service, CAROL, "Carol", delivery_mode=DeliveryMode.DIGEST)
    command = make_message(
        sender=BOB, to="listserv@lists.example.gov", subject="", body="SET SM-COP DIGEST PLAIN\n"
    )
    assert await send(service, command) == {}
    await settle(service)
    await _confirm_by_reply(service, BOB, 1)
    with service.factory() as session:
        bob = session.scalars(select(Member).where(Member.address_key == BOB)).one()
        assert (bob.delivery_mode, bob.digest_format) == (DeliveryMode.DIGEST, "plain")

    separator_body = "Minutes below.\n" + "-" * 30 + "\nItem one.\n"
    for subject, body in (("Agenda", separator_body), ("Re: Agenda", "Thanks!\n")):
        await send(service, make_message(subject=subject, body=body))
    await settle(service)
    with service.factory() as session, session.begin():
        mlist = get_list(session, "sm-cop")
        assert mlist is not None
        mlist.last_digest_at = datetime.now(UTC) - timedelta(days=2)
    with service.factory() as session, session.begin():
        ctx = Context(session=session, settings=service.settings, templates=service.templates)
        assert send_digests(ctx) == 2
    service.outbox_ready.set()

    mails = await mail_to(service, BOB, count=4)  # confirmation, reply, result, digest
    [plain] = [m for m in mails if "Digest" in str(m["Subject"])]
    [mime] = await mail_to(service, CAROL)
    assert mime.get_content_type() == "multipart/mixed"
    assert plain.get_content_type() == "text/plain"
    assert plain["Subject"].startswith("SM-COP Digest, Vol ")
    assert plain["List-Id"]
    text = plain.get_content()
    assert "Today's Topics:" in text
    assert "    Agenda\n    Re: Agenda\n" in text
    assert text.count("Freedom of Information Act") == 1
    assert "\n" + "-" * 70 + "\n" in text
    assert "\nSubject: Agenda\n" in text and "\nSubject: Re: Agenda\n" in text
    assert "\n " + "-" * 30 + "\nItem one." in text  # the post's own line is not a separator
    assert text.count("\n" + "-" * 30 + "\n") == 2  # between the posts and at the end
    assert text.rstrip().endswith("End of SM-COP Digest\n" + "*" * 20)


def _list(ctx: Context) -> MailingList:
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    return mlist


def _digest_member(ctx: Context, mlist: MailingList) -> Member:
    member = roster.add_member(ctx.session, mlist, BOB, actor=as_actor())
    member.delivery_mode = DeliveryMode.DIGEST
    ctx.session.flush()
    return member


def _at(ctx: Context, when: datetime) -> Context:
    return Context(session=ctx.session, settings=ctx.settings, templates=ctx.templates, now=when)


def test_a_weekly_digest_waits_a_week_then_goes_at_its_hour(
    ctx_factory: Callable[..., Context],
) -> None:
    last = datetime(2026, 3, 2, 6, 5, tzinfo=UTC)
    ctx = ctx_factory(now=last)
    mlist = _list(ctx)
    mlist.digest_schedule, mlist.digest_hour, mlist.last_digest_at = "weekly", 6, last
    _digest_member(ctx, mlist)
    archive_raw(_at(ctx, last + timedelta(hours=1)), mlist, raw_post(1, "Hello", "hi"))
    assert next_digest_at(mlist) == datetime(2026, 3, 9, 6, 0, tzinfo=UTC)
    for when in (last + timedelta(days=3), datetime(2026, 3, 9, 5, 59, tzinfo=UTC)):
        assert not send_digest(_at(ctx, when), mlist).queued
        assert mlist.last_digest_at == last
    run = send_digest(_at(ctx, datetime(2026, 3, 9, 6, 0, tzinfo=UTC)), mlist)
    assert run.queued and run.posts == 1 and run.recipients == 1
    assert next_digest_at(mlist) == datetime(2026, 3, 16, 6, 0, tzinfo=UTC)


def test_a_digest_goes_early_once_its_posts_reach_the_size(
    ctx_factory: Callable[..., Context],
) -> None:
    last = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    ctx = ctx_factory(now=last)
    mlist = _list(ctx)
    mlist.last_digest_at, mlist.digest_size_kb = last, 2
    _digest_member(ctx, mlist)
    archive_raw(_at(ctx, last + timedelta(hours=1)), mlist, raw_post(1, "Small", "short"))
    assert not send_digest(_at(ctx, last + timedelta(hours=1)), mlist).queued
    archive_raw(_at(ctx, last + timedelta(hours=2)), mlist, raw_post(2, "Big", "x" * 3000))
    run = send_digest(_at(ctx, last + timedelta(hours=2)), mlist)
    assert run.queued and run.posts == 2 and run.recipients == 1
    assert mlist.last_digest_at == last + timedelta(hours=2)
    jobs = ctx.session.scalars(select(OutboxJob).where(OutboxJob.kind == "digest")).all()
    assert len(jobs) == 1
