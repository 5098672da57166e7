# SPDX-License-Identifier: Apache-2.0
"""Joining and leaving by email, end to end over real SMTP into a real database."""

from __future__ import annotations

from sqlalchemy import select

from listserv.models import Member, PendingRequest, RequestStatus
from tests.conftest import mail_to, make_message, send, settle


def members(service) -> list[str]:
    with service.factory() as session:
        return sorted(
            session.scalars(select(Member.address_key).where(Member.role == "member")).all()
        )


async def test_join_by_phrase_then_confirm_by_reply(service) -> None:
    msg = make_message(
        to="sm-cop-request@lists.example.gov",
        subject="Join the Social Media Community",
        body="Jane Doe, Digital Media Specialist\n",
    )
    assert await send(service, msg) == {}
    [confirmation] = await mail_to(service, "jane.doe@agency.gov")
    assert "confirm" in confirmation["Subject"].lower()
    reply_to = confirmation["Reply-To"]
    assert reply_to.startswith("sm-cop-confirm+")
    assert members(service) == []

    reply = make_message(to=reply_to, subject="Re: " + confirmation["Subject"], body="yes\n")
    await send(service, reply)
    await mail_to(service, "jane.doe@agency.gov", count=2)
    await settle(service)
    assert members(service) == ["jane.doe@agency.gov"]
    with service.factory() as session:
        member = session.scalar(select(Member).where(Member.address_key == "jane.doe@agency.gov"))
        assert member is not None
        assert (member.display_name, member.job_title) == ("Jane Doe", "Digital Media Specialist")
        request = session.scalar(select(PendingRequest))
        assert request is not None and request.status == RequestStatus.DONE
