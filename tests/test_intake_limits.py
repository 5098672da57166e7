# SPDX-License-Identifier: Apache-2.0
"""The SMTP port's own limits over real sockets: connections, messages, recipients, size."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import func, select

from listserv.app import Service, build_service
from listserv.models import AuditEvent, InboundMessage
from tests.conftest import make_message, make_settings

JANE = "jane.doe@agency.gov"
POST = "sm-cop@lists.example.gov"


@asynccontextmanager
async def running(tmp_path: Path, sqlite_url: str, **overrides: Any) -> AsyncIterator[Service]:
    service = build_service(make_settings(sqlite_url, tmp_path / "var", **overrides))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def trips(service: Service, limit: str) -> Callable[[], list[AuditEvent]]:
    def found() -> list[AuditEvent]:
        with service.factory() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(
                        AuditEvent.action == "limit-tripped", AuditEvent.outcome == limit
                    )
                )
            )

    return found


async def greeting(port: int) -> tuple[bytes, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    line = await asyncio.wait_for(reader.readline(), 5)
    return line, writer


async def test_connections_past_the_limit_get_421_and_the_trip_is_audited_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, limits={"smtp_connections_per_client": 3}) as svc:
        held = []
        for _ in range(3):
            line, writer = await greeting(svc.smtp_port)
            assert line.startswith(b"220 ")
            held.append(writer)
        for _ in range(2):
            line, writer = await greeting(svc.smtp_port)
            assert line.startswith(b"421 4.7.0"), line
            writer.close()
        await svc.trips.drain()
        (event,) = trips(svc, "smtp-connections")()
        assert event.actor == "[127.0.0.1]"
        assert event.channel == "email"
        held.pop().close()
        await asyncio.sleep(0.1)
        line, writer = await greeting(svc.smtp_port)
        assert line.startswith(b"220 "), "a freed connection slot is usable again"
        writer.close()
        for writer in held:
            writer.close()


async def test_messages_past_the_rate_get_451_at_mail(tmp_path: Path, sqlite_url: str) -> None:
    limits = {"smtp_messages_per_client_per_minute": 4}
    async with running(tmp_path, sqlite_url, limits=limits) as svc:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=svc.smtp_port, start_tls=False)
        raw = make_message(subject="One of many").as_bytes()
        async with client:
            for _ in range(4):
                await client.sendmail(JANE, [POST], raw)
            for _ in range(2):
                with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
                    await client.sendmail(JANE, [POST], raw)
                assert refused.value.code == 451
                assert "4.7.1" in refused.value.message
        await svc.trips.drain()
        (event,) = trips(svc, "smtp-messages")()
        assert "4 messages a minute" in event.detail["detail"]
        with svc.factory() as session:
            assert session.scalar(select(func.count()).select_from(InboundMessage)) == 4


async def test_recipients_past_the_limit_get_452(tmp_path: Path, sqlite_url: str) -> None:
    async with running(tmp_path, sqlite_url, limits={"smtp_recipients_per_message": 2}) as svc:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=svc.smtp_port, start_tls=False)
        async with client:
            await client.ehlo()
            await client.mail(JANE)
            assert (await client.rcpt(POST)).code == 250
            assert (await client.rcpt("sm-cop-request@lists.example.gov")).code == 250
            for _ in range(3):
                with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                    await client.rcpt("sm-cop-owner@lists.example.gov")
                assert refused.value.code == 452
        await svc.trips.drain()
        (event,) = trips(svc, "smtp-recipients")()
        assert "more than 2 recipients" in event.detail["detail"]


async def test_the_552_for_an_oversized_message_names_the_limit(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(tmp_path, sqlite_url, smtp={"max_message_size": 2_097_152}) as svc:
        big = make_message(body=("y" * 70 + "\n") * 40_000).as_bytes()
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=svc.smtp_port, start_tls=False)
        async with client:
            with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
                await client.sendmail(JANE, [POST], big)
            assert too_big.value.code == 552
            assert "at most 2097152 bytes (2.0 MB)" in too_big.value.message
            await client.ehlo()
            with pytest.raises(aiosmtplib.SMTPSenderRefused) as declared:
                await client.mail(JANE, options=["SIZE=30000000"])
            assert declared.value.code == 552
            assert "2097152 bytes" in declared.value.message
