# SPDX-License-Identifier: Apache-2.0
"""Notices to owners about held posts, coalesced: a flood over real SMTP gives the owner
one notice at once and one summary of the rest after the window, not one mail per post."""

from __future__ import annotations

import re
from datetime import timedelta

import aiosmtplib
from sqlalchemy import select

from listserv import staff_notices
from listserv.app import Service
from listserv.context import Context
from listserv.models import PostStatus, RateEvent, utcnow
from tests.admin_mail import Mailbox, body_of
from tests.conftest import make_message, send, settle
from tests.posting_helpers import OWNER, all_posts

STRANGER = "stranger@agency.gov"
POST = "sm-cop@lists.example.gov"


def run_job(service: Service, minutes_later: float = 0) -> int:
    """The periodic job, `minutes_later` after the last notice (the notice is moved back)."""
    with service.factory() as session, session.begin():
        for event in session.scalars(
            select(RateEvent).where(RateEvent.key.startswith("staff-notice:"))
        ):
            event.at -= timedelta(minutes=minutes_later)
        session.flush()
        ctx = Context(
            session=session,
            settings=service.settings,
            templates=service.templates,
            now=utcnow(),
            source="test",
        )
        return staff_notices.send_due_notices(ctx)


async def test_a_flood_of_held_posts_gives_the_owner_one_notice_then_one_summary(
    service: Service,
) -> None:
    mail = Mailbox(service)
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=service.smtp_port, start_tls=False)
    async with client:
        for n in range(30):
            msg = make_message(sender=STRANGER, subject=f"Offer number {n}")
            await client.sendmail(STRANGER, [POST], msg.as_bytes())
    await settle(service)
    posts = all_posts(service)
    assert len(posts) == 30 and {p.status for p in posts} == {PostStatus.HELD}
    first = await mail.next(OWNER, "awaits approval")
    assert "Offer number 0" in body_of(first)
    await mail.nothing_more(OWNER)

    assert run_job(service, minutes_later=5) == 0, "the window has not passed yet"
    assert run_job(service, minutes_later=6) == 29
    await settle(service)
    summary = await mail.next(OWNER, "29 held posts await a decision")
    text = body_of(summary)
    for n in range(1, 30):
        assert f"Offer number {n}" in text
    await mail.nothing_more(OWNER)
    assert run_job(service, minutes_later=30) == 0, "each item is announced once"
    assert run_job(service) == 0

    # Each listed address decides its own post.
    listed = re.findall(r"Post (\d+) from .*?\n.*?reply to (\S+)", text, re.S)
    post_id, address = listed[3]
    reply = make_message(sender=OWNER, to=address, subject="Re: held", body="approve\n")
    await send(service, reply)
    await settle(service)
    decided = {p.id: p.status for p in all_posts(service)}
    assert decided[int(post_id)] == PostStatus.ACCEPTED
    assert sum(1 for s in decided.values() if s == PostStatus.HELD) == 29
