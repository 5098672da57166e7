# SPDX-License-Identifier: Apache-2.0
"""No backscatter, over real SMTP: service mail only to real recipients, and, when the
MTA's Authentication-Results are trusted, to unknown senders only when their domain passed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from listserv.app import Service, build_service
from listserv.models import AuditEvent, OutboxRecipient, PendingRequest
from tests.conftest import make_settings, read_maildir, send, settle

JOIN = "sm-cop-request@lists.example.gov"
AUTHSERV = "mx.lists.example.gov"


def raw_join(from_value: str, *, results: str = "") -> bytes:
    head = [
        *([f"Authentication-Results: {results}"] if results else []),
        f"From: {from_value}",
        f"To: {JOIN}",
        "Subject: Join the Social Media Community",
        "Message-ID: <join-1@example.net>",
        "Date: Mon, 07 Dec 2026 01:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return ("\r\n".join(head) + "\r\n\r\nJane Doe, Analyst\r\n").encode("utf-8")


def outbox_addresses(service: Service) -> list[str]:
    with service.factory() as session:
        return list(session.scalars(select(OutboxRecipient.address)))


def withheld(service: Service) -> list[AuditEvent]:
    with service.factory() as session:
        return list(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "notice-withheld"))
        )


@pytest.mark.parametrize(
    ("sender", "code"),
    [
        ('"x1@agency.gov"@evil.com', "quoted"),
        ("x12%agency.gov@evil.com", "percent-routing"),
        ("x14@[127.0.0.1]", "ip-literal"),
        ("evil.com!x13@agency.gov", "bang-path"),
        ("x" * 300 + "@agency.gov", "invalid-address"),
    ],
)
async def test_no_mail_goes_to_addresses_that_cannot_be_recipients(
    service: Service, sender: str, code: str
) -> None:
    assert await send(service, raw_join(sender), mail_from="bulk@evil.com", rcpt_to=[JOIN]) == {}
    await settle(service)
    assert outbox_addresses(service) == [], "nothing may be mailed to a routed or fake address"
    assert read_maildir(service.settings.delivery.maildir) == []
    with service.factory() as session:
        assert session.scalars(select(PendingRequest)).all() == []
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "subscribe-refused")
        ).all()
    assert [e.detail["code"] for e in refused] and code in refused[0].detail["code"]


@pytest.fixture
async def trusting(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Service]:
    settings = make_settings(sqlite_url, tmp_path / "var", site={"authserv_id": AUTHSERV})
    service = build_service(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def test_an_unauthenticated_stranger_gets_no_refusal_when_results_are_trusted(
    trusting: Service,
) -> None:
    results = f"{AUTHSERV}; spf=fail smtp.mailfrom=x3@evil.com; dkim=none"
    raw = raw_join("x3@evil.com", results=results)
    await send(trusting, raw, mail_from="x3@evil.com", rcpt_to=[JOIN])
    await settle(trusting)
    assert outbox_addresses(trusting) == []
    (event,) = withheld(trusting)
    assert (event.target, event.outcome) == ("x3@evil.com", "sender-not-authenticated")


async def test_results_from_another_authserv_id_prove_nothing(trusting: Service) -> None:
    forged = "mx.evil.com; spf=pass smtp.mailfrom=x3@evil.com; dkim=pass header.d=evil.com"
    raw = raw_join("x3@evil.com", results=forged)
    await send(trusting, raw, mail_from="x3@evil.com", rcpt_to=[JOIN])
    await settle(trusting)
    assert outbox_addresses(trusting) == []


@pytest.mark.parametrize(
    "results",
    [
        f"{AUTHSERV}; spf=pass smtp.mailfrom=bounce@evil.com",
        f"{AUTHSERV}; spf=fail smtp.mailfrom=x@evil.com; dkim=pass header.d=evil.com",
    ],
)
async def test_a_stranger_whose_domain_passed_is_told_why_not(
    trusting: Service, results: str
) -> None:
    raw = raw_join("x3@evil.com", results=results)
    await send(trusting, raw, mail_from="bounce@evil.com", rcpt_to=[JOIN])
    await settle(trusting)
    assert outbox_addresses(trusting) == ["x3@evil.com"]
    assert withheld(trusting) == []


async def test_without_a_trusted_authserv_id_refusals_go_out_as_before(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = make_settings(sqlite_url, tmp_path / "var")
    assert settings.site.authserv_id == ""
    service = build_service(replace(settings))
    await service.start()
    try:
        await send(service, raw_join("x3@evil.com"), mail_from="x3@evil.com", rcpt_to=[JOIN])
        await settle(service)
        assert outbox_addresses(service) == ["x3@evil.com"]
    finally:
        await service.stop()


async def test_a_forged_eligible_sender_in_another_unicode_form_gets_no_confirmation(
    trusting: Service,
) -> None:
    results = f"{AUTHSERV}; spf=fail smtp.mailfrom=bulk@evil.com; dkim=fail header.d=agency.gov"
    raw = raw_join("x6@agency．gov", results=results)
    await send(trusting, raw, mail_from="bulk@evil.com", rcpt_to=[JOIN])
    await settle(trusting)
    assert outbox_addresses(trusting) == []
    (event,) = withheld(trusting)
    assert (event.target, event.outcome) == ("x6@agency.gov", "sender-not-authenticated")
