# SPDX-License-Identifier: Apache-2.0
"""Addresses and headers over real SMTP: domains folded before anything is stored or
mailed, routed addresses ineligible, undecodable Subject words passed on as received,
and no address smuggled into a munged From through the display name."""

from __future__ import annotations

from sqlalchemy import select

from listserv.app import Service
from listserv.eligibility import EligibilityRule, check_address
from listserv.mailbox import canonical_address
from listserv.models import AuditEvent, PendingRequest
from tests.conftest import mail_to, read_maildir, send, settle
from tests.posting_helpers import JANE, add_member, copies_of, set_list

REQUEST = "sm-cop-request@lists.example.gov"
POST = "sm-cop@lists.example.gov"


def raw_mail(from_value: bytes, to: str, subject: bytes, message_id: str) -> bytes:
    return (
        b"From: " + from_value + b"\r\n"
        b"To: " + to.encode() + b"\r\n"
        b"Subject: " + subject + b"\r\n"
        b"Message-ID: " + message_id.encode() + b"\r\n"
        b"Date: Mon, 07 Dec 2026 01:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"Hello.\r\n"
    )


async def test_a_full_width_dot_is_folded_before_storing_and_mailing(service: Service) -> None:
    raw = raw_mail(
        "x6@agency．gov".encode(), REQUEST, b"Join the Social Media Community", "<fw@agency.gov>"
    )
    assert await send(service, raw, mail_from="x6@agency.gov", rcpt_to=[REQUEST]) == {}
    (confirmation,) = await mail_to(service, "x6@agency.gov")
    assert confirmation["To"] == "x6@agency.gov"
    with service.factory() as session:
        (request,) = session.scalars(select(PendingRequest)).all()
    assert (request.address, request.address_key) == ("x6@agency.gov", "x6@agency.gov")


async def test_a_second_join_in_another_unicode_form_is_the_same_person(
    service: Service,
) -> None:
    add_member(service, canonical_address("x6@agency．gov"))
    raw = raw_mail(
        "x6@AGENCY。gov".encode(), REQUEST, b"Join the Social Media Community", "<fw2@agency.gov>"
    )
    await send(service, raw, mail_from="x6@agency.gov", rcpt_to=[REQUEST])
    (reply,) = await mail_to(service, "x6@agency.gov")
    assert "already" in reply.get_body(("plain",)).get_content().lower()  # type: ignore[union-attr]


async def test_a_bang_path_is_not_eligible(service: Service) -> None:
    rule = EligibilityRule(("gov", "mil"))
    assert check_address("evil.com!x13@agency.gov", rule).code == "bang-path"  # type: ignore[union-attr]
    assert check_address("x12%agency.gov@evil.com", rule).code == "percent-routing"  # type: ignore[union-attr]
    raw = raw_mail(
        b"evil.com!x13@agency.gov", REQUEST, b"Join the Social Media Community", "<bang@x>"
    )
    await send(service, raw, mail_from="bulk@evil.com", rcpt_to=[REQUEST])
    await settle(service)
    with service.factory() as session:
        assert session.scalars(select(PendingRequest)).all() == []
        (refused,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "subscribe-refused")
        ).all()
    assert refused.detail["code"] == "bang-path"
    assert read_maildir(service.settings.delivery.maildir) == []


def raw_subject(copy_path_bytes: bytes) -> bytes:
    head = copy_path_bytes.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    for i, line in enumerate(lines):
        if line.lower().startswith(b"subject:"):
            value = [line]
            for more in lines[i + 1 :]:
                if more[:1] not in (b" ", b"\t"):
                    break
                value.append(more)
            return b"\n".join(value)
    raise AssertionError("no Subject")


async def test_undecodable_subject_words_reach_members_exactly_as_sent(
    service: Service,
) -> None:
    set_list(service, subject_prefix="[SM-COP]")
    add_member(service, JANE)
    add_member(service, "bob@agency.gov")
    subjects = {
        "<unknown-charset@agency.gov>": b"=?x-unknown-8?q?Caf=E9_menu?= for Friday",
        "<latin1@agency.gov>": "Café menu".encode("latin-1"),
    }
    for message_id, subject in subjects.items():
        raw = raw_mail(JANE.encode(), POST, subject, message_id)
        await send(service, raw, mail_from=JANE, rcpt_to=[POST])
    await settle(service)
    files = {p.read_bytes() for p, _ in read_maildir(service.settings.delivery.maildir)}
    for message_id, subject in subjects.items():
        copies = [f for f in files if message_id.encode() in f]
        assert len(copies) == 2, message_id
        for copy in copies:
            assert raw_subject(copy) == b"Subject: [SM-COP] " + subject
            assert "\ufffd".encode() not in copy


async def test_a_display_name_holding_an_address_does_not_reach_the_munged_from(
    service: Service,
) -> None:
    add_member(service, JANE)
    add_member(service, "bob@agency.gov")
    forged_name = b'"Jane\\" <ceo@agency.gov>, \\"x" <' + JANE.encode() + b">"
    raw = raw_mail(forged_name, POST, b"Budget", "<name@agency.gov>")
    await send(service, raw, mail_from=JANE, rcpt_to=[POST])
    await settle(service)
    copies = copies_of(service, "<name@agency.gov>")
    assert set(copies) == {JANE, "bob@agency.gov"}
    for (copy,) in copies.values():
        (author,) = copy["From"].addresses
        assert author.addr_spec == POST
        assert "@" not in author.display_name and "<" not in author.display_name
        assert author.display_name.startswith("Jane")
        assert "ceo@agency.gov" not in str(copy["From"])
