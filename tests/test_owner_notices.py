# SPDX-License-Identifier: Apache-2.0
"""Owners hear of joins and leaves: one mail each, a daily summary, or none (`notify_owners`)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import select

from listserv import owner_notices, roster
from listserv.app import Service
from listserv.config import Settings
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import NotifyOwners, OutboxJob, OutboxRecipient
from tests.actors import as_actor
from tests.conftest import mail_to, make_message, read_maildir, send, settle
from tests.posting_helpers import OWNER, set_list
from tests.web_helpers import confirm_url, parse_page, start_web_service

PAT = "pat.lee@agency.gov"


@pytest.fixture
async def web_service(settings: Settings) -> AsyncIterator[Service]:
    async with start_web_service(settings) as service:
        yield service


def to_owner(service: Service) -> list[str]:
    maildir = service.settings.delivery.maildir
    return [str(m["Subject"]) for _, m in read_maildir(maildir) if m["Delivered-To"] == OWNER]


def origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


async def join(service: Service, address: str) -> None:
    body = "Pat Lee\nRecords Officer\n"
    await send(
        service,
        make_message(sender=address, to="sm-cop-join@lists.example.gov", subject="Join", body=body),
    )
    [confirmation] = await mail_to(service, address)
    url = confirm_url(confirmation)
    async with httpx.AsyncClient() as client:
        [form] = parse_page((await client.get(url)).text).forms
        done = await client.post(url, data=form["fields"], headers={"Origin": origin(url)})
    assert done.status_code == 200


async def test_an_owner_receives_a_notice_of_each_join_and_leave(web_service: Service) -> None:
    await join(web_service, PAT)
    await settle(web_service)
    [notice] = await mail_to(web_service, OWNER)
    assert notice["Subject"] == f"SM-COP: {PAT} joined"
    body = notice.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())
    assert "confirmed by web" in text and "notify_owners=daily" in text
    welcome = next(m for _, m in read_maildir(web_service.settings.delivery.maildir)
                   if m["Delivered-To"] == PAT and "Welcome" in str(m["Subject"]))  # fmt: skip
    link = str(welcome["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
    async with httpx.AsyncClient() as client:
        assert (await client.post(link, data={"List-Unsubscribe": "One-Click"})).status_code == 200
    await settle(web_service)
    assert f"SM-COP: {PAT} left" in (await mail_to(web_service, OWNER, count=2))[1]["Subject"]
    assert to_owner(web_service) == [f"SM-COP: {PAT} joined", f"SM-COP: {PAT} left"]


async def test_none_sends_nothing(web_service: Service) -> None:
    set_list(web_service, notify_owners=NotifyOwners.NONE)
    await join(web_service, PAT)
    await settle(web_service)
    assert to_owner(web_service) == []


def test_daily_sends_one_summary_of_the_days_changes(settings: Settings, ctx_factory) -> None:
    ctx: Context = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    mlist.notify_owners = NotifyOwners.DAILY
    assert owner_notices.send_summary(ctx, mlist) == 0  # the first run only sets the mark
    for address in ("a@agency.gov", "b@agency.gov"):
        roster.add_member(
            ctx.session, mlist, address, actor=as_actor(address, "email"), now=ctx.now
        )
    gone = roster.find_member(ctx.session, mlist, "a@agency.gov")
    assert gone is not None
    roster.remove_member(
        ctx.session, mlist, gone, actor=as_actor("a@agency.gov", "web"), now=ctx.now
    )
    assert owner_notices.roster_changed(ctx, mlist, "b@agency.gov", "joined") == 0
    assert owner_notices.send_summary(ctx, mlist) == 0  # not a day yet
    assert mlist.owners_notified_at is not None
    mlist.owners_notified_at -= timedelta(days=1, minutes=1)
    assert owner_notices.send_summary(ctx, mlist) == 1  # one owner, one mail
    ctx.session.flush()
    raws = ctx.session.scalars(
        select(OutboxJob.raw)
        .join(OutboxRecipient, OutboxRecipient.job_id == OutboxJob.id)
        .where(OutboxRecipient.address == OWNER)
    ).all()
    mails = [email.message_from_bytes(raw, policy=email.policy.default) for raw in raws]
    [summary] = [m for m in mails if "since" in str(m["Subject"])]
    assert isinstance(summary, EmailMessage)
    assert str(summary["Subject"]).startswith("SM-COP: 2 joined, 1 left since ")
    body = summary.get_body(("plain",))
    assert body is not None and "a@agency.gov left (web)" in str(body.get_content())


def test_auto_is_each_for_small_lists_and_daily_from_5000(ctx_factory) -> None:
    ctx: Context = ctx_factory()
    mlist = get_list(ctx.session, "sm-cop")
    assert mlist is not None
    assert owner_notices.mode(ctx, mlist) is NotifyOwners.EACH
    people = (
        roster.NewMember(f"p{i}@agency.gov", f"p{i}@agency.gov")
        for i in range(owner_notices.DAILY_FROM)
    )
    roster.add_members_bulk(ctx.session, mlist, people, audit_each=False, actor=as_actor("t"))
    assert owner_notices.mode(ctx, mlist) is NotifyOwners.DAILY
