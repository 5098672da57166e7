# SPDX-License-Identifier: Apache-2.0
"""Joining and leaving by email, end to end over real SMTP into a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from listserv.app import Service
from listserv.models import AuditEvent, Member, PendingRequest, RequestStatus
from listserv.tokens import find_token
from tests.conftest import mail_to, make_message, read_maildir, send, settle

JANE = "jane.doe@agency.gov"


def members(service: Service) -> list[str]:
    with service.factory() as session:
        return sorted(
            session.scalars(select(Member.address_key).where(Member.role == "member")).all()
        )


def mail_count(service: Service) -> int:
    return len(read_maildir(service.settings.delivery.maildir))


async def request_join(service: Service, **kwargs: str) -> None:
    defaults = {
        "to": "sm-cop-request@lists.example.gov",
        "subject": "Join the Social Media Community",
        "body": "Jane Doe, Digital Media Specialist\n",
    }
    defaults.update(kwargs)
    assert await send(service, make_message(**defaults)) == {}


async def confirm_by_reply(service: Service, confirmation, sender: str = JANE) -> None:
    reply = make_message(
        sender=sender,
        to=confirmation["Reply-To"],
        subject="Re: " + confirmation["Subject"],
        body="Yes, please.\n",
    )
    await send(service, reply)


async def test_join_by_phrase_then_confirm_by_reply(service: Service) -> None:
    await request_join(service)
    [confirmation] = await mail_to(service, JANE)
    assert "confirm" in confirmation["Subject"].lower()
    reply_to = confirmation["Reply-To"]
    assert reply_to.startswith("sm-cop-confirm+")
    assert confirmation["Auto-Submitted"] == "auto-replied"
    assert members(service) == []

    await confirm_by_reply(service, confirmation)
    welcome = (await mail_to(service, JANE, count=2))[1]
    assert "Welcome" in welcome["Subject"]
    body = welcome.get_content()
    assert "sm-cop@lists.example.gov" in body and "Freedom of Information Act" in body
    await settle(service)
    assert members(service) == [JANE]
    with service.factory() as session:
        member = session.scalar(select(Member).where(Member.address_key == JANE))
        assert member is not None
        assert (member.display_name, member.job_title) == ("Jane Doe", "Digital Media Specialist")
        request = session.scalar(select(PendingRequest))
        assert request is not None and request.status == RequestStatus.DONE
        assert request.token_hash and find_token(reply_to) not in request.token_hash


@pytest.mark.parametrize(
    "subject",
    [
        "Join the Social Media Community",
        "JOIN #SOCIALGOV",
        "Re: Fwd: subscribe to #socialgov",
        "=?utf-8?q?Join_the_Social_Media_Community?=",
        "  join   the social   media community!  ",
    ],
)
async def test_each_join_phrase_starts_a_subscription(service: Service, subject: str) -> None:
    raw = (
        f"From: Jane Doe <{JANE}>\r\nTo: sm-cop-request@lists.example.gov\r\n"
        f"Subject: {subject}\r\nMessage-ID: <p1@agency.gov>\r\n\r\nJane Doe, Analyst\r\n"
    ).encode()
    await send(service, raw, mail_from=JANE, rcpt_to="sm-cop-request@lists.example.gov")
    [confirmation] = await mail_to(service, JANE)
    assert "Confirm joining SM-COP" in confirmation["Subject"]


@pytest.mark.parametrize(
    "address", ["sm-cop-subscribe-request@lists.example.gov", "SM-COP-JOIN@lists.example.gov"]
)
async def test_dedicated_join_addresses_ignore_the_subject(service: Service, address: str) -> None:
    await request_join(service, to=address, subject="whatever this says")
    [confirmation] = await mail_to(service, JANE)
    await confirm_by_reply(service, confirmation)
    await mail_to(service, JANE, count=2)
    await settle(service)
    assert members(service) == [JANE]


async def test_listserv_style_command_and_confirm_by_token_in_subject(service: Service) -> None:
    msg = make_message(
        to="listserv@lists.example.gov",
        subject="anything",
        body="SUBSCRIBE SM-COP Jane Doe, Web Manager\n\n-- \nJane\n",
    )
    await send(service, msg)
    mails = await mail_to(service, JANE, count=2)  # the confirmation and the results reply
    confirmation = next(m for m in mails if "Confirm joining" in m["Subject"])
    results = next(m for m in mails if m is not confirmation)
    assert "SUBSCRIBE SM-COP" in results.get_content()
    token = find_token(confirmation["Subject"])
    assert token
    # A reply to the -request address with the code in the Subject confirms too.
    await send(
        service,
        make_message(to="sm-cop-request@lists.example.gov", subject=f"Re: confirm {token}"),
    )
    await settle(service)
    assert members(service) == [JANE]
    with service.factory() as session:
        member = session.scalar(select(Member).where(Member.role == "member"))
        assert member is not None and member.job_title == "Web Manager"


async def test_reused_token_is_refused(service: Service) -> None:
    await request_join(service)
    [confirmation] = await mail_to(service, JANE)
    await confirm_by_reply(service, confirmation)
    await mail_to(service, JANE, count=2)
    token = find_token(confirmation["Subject"])
    await send(
        service,
        make_message(to="listserv@lists.example.gov", body=f"CONFIRM {token}\n"),
    )
    mails = await mail_to(service, JANE, count=3)
    assert "already been used" in mails[2].get_content()
    with service.factory() as session:
        assert (
            session.scalar(select(func.count()).select_from(Member).where(Member.role == "member"))
            == 1
        )


async def test_expired_token_is_refused(service: Service) -> None:
    await request_join(service)
    [confirmation] = await mail_to(service, JANE)
    with service.factory() as session, session.begin():
        request = session.scalar(select(PendingRequest))
        assert request is not None
        session.execute(
            update(PendingRequest).values(expires_at=request.created_at - timedelta(seconds=1))
        )
    await confirm_by_reply(service, confirmation)
    mails = await mail_to(service, JANE, count=2)
    assert "expired" in mails[1].get_content()
    await settle(service)
    assert members(service) == []


async def test_forged_from_subscribes_nobody(service: Service) -> None:
    """The confirmation goes to the address in From; the forger never sees it."""
    forged = make_message(
        sender=JANE,
        to="sm-cop-join@lists.example.gov",
        Reply_To="attacker@evil.example",
    )
    await send(service, forged, mail_from="attacker@evil.example")
    [confirmation] = await mail_to(service, JANE)
    assert confirmation["To"] == JANE
    assert all(
        m["Delivered-To"] == JANE for _, m in read_maildir(service.settings.delivery.maildir)
    )
    # Guessing at the confirm address with a made-up token does nothing.
    await send(
        service,
        make_message(
            sender="attacker@evil.example", to="sm-cop-confirm+" + "a" * 32 + "@lists.example.gov"
        ),
    )
    await settle(service)
    assert members(service) == []


@pytest.mark.parametrize(
    "sender",
    [
        "bob@gmail.com",
        "eve@agency.gov.evil.com",
        "user@evilgov.com",
        '"boss@agency.gov" <x@evil.com>',
        "mallory@xn--gency-3ve.gov",
    ],
)
async def test_ineligible_request_is_refused_politely(service: Service, sender: str) -> None:
    from email.utils import parseaddr

    address = parseaddr(sender)[1]
    await send(
        service,
        make_message(
            sender=sender,
            to="sm-cop-request@lists.example.gov",
            subject="Join the Social Media Community",
        ),
        mail_from=address,
    )
    [refusal] = await mail_to(service, address)
    text = refusal.get_content()
    assert ".gov or .mil" in text
    await settle(service)
    assert members(service) == []
    with service.factory() as session:
        assert session.scalar(select(func.count()).select_from(PendingRequest)) == 0
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "subscribe-refused")
        ).all()
        assert len(refused) == 1


async def test_two_from_addresses_are_refused(service: Service) -> None:
    raw = (
        b"From: jane.doe@agency.gov, bob@gmail.com\r\nTo: sm-cop-join@lists.example.gov\r\n"
        b"Subject: join\r\n\r\nhi\r\n"
    )
    await send(service, raw, mail_from="bob@gmail.com", rcpt_to="sm-cop-join@lists.example.gov")
    await settle(service)
    assert members(service) == []
    with service.factory() as session:
        assert session.scalar(select(func.count()).select_from(PendingRequest)) == 0


@pytest.mark.parametrize(
    ("headers", "mail_from"),
    [
        ({"Auto_Submitted": "auto-replied"}, JANE),
        ({"Precedence": "bulk"}, JANE),
        ({"Precedence": "junk"}, JANE),
        ({}, ""),
        ({}, "MAILER-DAEMON@agency.gov"),
    ],
)
async def test_auto_replies_are_never_answered(
    service: Service, headers: dict[str, str], mail_from: str
) -> None:
    msg = make_message(
        to="sm-cop-request@lists.example.gov", subject="Join the Social Media Community", **headers
    )
    await send(service, msg, mail_from=mail_from)
    await settle(service)
    assert mail_count(service) == 0
    with service.factory() as session:
        assert session.scalar(select(func.count()).select_from(PendingRequest)) == 0


async def test_leave_is_confirmed_and_ends_with_goodbye(service: Service) -> None:
    await request_join(service)
    [confirmation] = await mail_to(service, JANE)
    await confirm_by_reply(service, confirmation)
    await mail_to(service, JANE, count=2)
    await send(service, make_message(to="sm-cop-leave@lists.example.gov", subject="bye"))
    leave_confirmation = (await mail_to(service, JANE, count=3))[2]
    assert "Confirm leaving" in leave_confirmation["Subject"]
    assert members(service) == [JANE]
    await confirm_by_reply(service, leave_confirmation)
    goodbye = (await mail_to(service, JANE, count=4))[3]
    assert "left" in goodbye["Subject"]
    await settle(service)
    assert members(service) == []


async def test_leave_phrase_and_signoff_for_a_non_member_get_a_plain_reply(
    service: Service,
) -> None:
    await send(
        service,
        make_message(
            to="sm-cop-request@lists.example.gov", subject="Leave the Social Media Community"
        ),
    )
    [reply] = await mail_to(service, JANE)
    assert "not a member" in reply["Subject"]


async def test_already_member_gets_a_plain_reply(service: Service) -> None:
    await request_join(service)
    [confirmation] = await mail_to(service, JANE)
    await confirm_by_reply(service, confirmation)
    await mail_to(service, JANE, count=2)
    await request_join(service)
    third = (await mail_to(service, JANE, count=3))[2]
    assert "already a member" in third["Subject"]


async def test_confirmations_to_one_address_are_rate_limited(tmp_path, db_url) -> None:
    from listserv.app import build_service
    from tests.conftest import make_settings

    settings = make_settings(
        db_url,
        tmp_path / "var",
        limits={"confirmations_per_address_per_day": 2, "requests_per_sender_per_hour": 100},
    )
    service = build_service(settings)
    await service.start()
    try:
        for _ in range(4):
            await request_join(service)
        await settle(service)
        assert mail_count(service) == 2
        with service.factory() as session:
            limited = session.scalar(
                select(func.count()).where(AuditEvent.action == "subscribe-rate-limited")
            )
            assert limited == 2
    finally:
        await service.stop()


async def test_requests_per_sender_are_rate_limited(tmp_path, db_url) -> None:
    from listserv.app import build_service
    from tests.conftest import make_settings

    settings = make_settings(
        db_url,
        tmp_path / "var",
        limits={"confirmations_per_address_per_day": 50, "requests_per_sender_per_hour": 3},
    )
    service = build_service(settings)
    await service.start()
    try:
        for _ in range(5):
            await send(service, make_message(to="listserv@lists.example.gov", body="HELP\n"))
        await settle(service)
        assert mail_count(service) == 3
    finally:
        await service.stop()


async def test_ineligible_request_held_for_owner_approval(tmp_path, db_url) -> None:
    from listserv.app import build_service
    from tests.conftest import make_settings

    settings = make_settings(db_url, tmp_path / "var", list={"ineligible_policy": "hold"})
    service = build_service(settings)
    await service.start()
    try:
        await send(
            service,
            make_message(sender="Pat <pat@contractor.com>", to="sm-cop-join@lists.example.gov"),
        )
        [confirmation] = await mail_to(service, "pat@contractor.com")
        await confirm_by_reply(service, confirmation, sender="pat@contractor.com")
        await mail_to(service, "owner@digital.gov")
        await settle(service)
        assert members(service) == []
        with service.factory() as session:
            request = session.scalar(select(PendingRequest))
            assert request is not None and request.status == RequestStatus.AWAITING_APPROVAL
    finally:
        await service.stop()
