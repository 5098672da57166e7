# SPDX-License-Identifier: Apache-2.0
"""Intake over real sockets: RCPT checks, size limits, LMTP, bad input, crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import subprocess
import sys
import textwrap
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import func, select

from listserv.app import Service, build_service
from listserv.models import InboundMessage, InboundStatus, Member, PendingRequest
from tests.conftest import (
    TEST_SECRET,
    mail_to,
    make_message,
    make_settings,
    read_maildir,
    send,
    settle,
    wait_for,
)

JANE = "jane.doe@agency.gov"


async def test_unknown_recipients_are_refused_at_rcpt(service: Service) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=service.smtp_port, start_tls=False)
    async with client:
        await client.ehlo()
        await client.mail(JANE)
        for address in (
            "nobody@lists.example.gov",
            "sm-cop@elsewhere.example",
            "no-such-list-request@lists.example.gov",
            "sm-cop-request+x@lists.example.gov",
            "sm-cop-confirm@lists.example.gov",
        ):
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await client.rcpt(address)
            assert refused.value.code == 550
            assert "5.1.1" in refused.value.message
        for address in (
            "SM-COP@LISTS.EXAMPLE.GOV",
            "sm-cop-owner@lists.example.gov",
            "LISTSERV@lists.example.gov",
        ):
            response = await client.rcpt(address)
            assert response.code == 250


async def test_size_is_advertised_and_enforced(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, tmp_path / "var", smtp={"max_message_size": 20_000})
    service = build_service(settings)
    await service.start()
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=service.smtp_port, start_tls=False)
        async with client:
            await client.ehlo()
            assert client.supports_extension("size")
            assert client.esmtp_extensions["size"] == "20000"
            assert client.supports_extension("smtputf8")
            assert client.supports_extension("8bitmime")
            big = make_message(
                to="sm-cop@lists.example.gov", body="x" * 60 + "\n" * 1 + (("y" * 70 + "\n") * 400)
            )
            with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
                await client.sendmail(JANE, ["sm-cop@lists.example.gov"], big.as_bytes())
            assert too_big.value.code == 552
        with service.factory() as session:
            assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0
    finally:
        await service.stop()


async def _lmtp_session(port: int, sender: str, rcpts: list[str], raw: bytes) -> list[str]:
    """A raw LMTP conversation; returns the RCPT replies then the DATA replies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> str:
        lines = []
        while True:
            line = (await reader.readline()).decode().rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines[-1]

    async def command(text: str) -> str:
        writer.write(text.encode() + b"\r\n")
        await writer.drain()
        return await reply()

    await reply()  # greeting
    assert (await command("LHLO test.example")).startswith("250")
    assert (await command(f"MAIL FROM:<{sender}>")).startswith("250")
    answers = [await command(f"RCPT TO:<{r}>") for r in rcpts]
    assert (await command("DATA")).startswith("354")
    body = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    writer.write(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    await writer.drain()
    accepted = sum(1 for a in answers if a.startswith("250"))
    for _ in range(accepted):
        answers.append(await reply())
    await command("QUIT")
    writer.close()
    return answers


async def test_lmtp_answers_once_per_recipient(lmtp_service: Service) -> None:
    msg = make_message(to="sm-cop-join@lists.example.gov", subject="join")
    answers = await _lmtp_session(
        lmtp_service.smtp_port,
        JANE,
        ["sm-cop-join@lists.example.gov", "nobody@lists.example.gov", "listserv@lists.example.gov"],
        msg.as_bytes(),
    )
    assert answers[0].startswith("250")
    assert answers[1].startswith("550 5.1.1")
    assert answers[2].startswith("250")
    # DATA: one reply per accepted recipient (RFC 2033), and no more.
    assert len(answers) == 5 and all(a.startswith("250 2.0.0") for a in answers[3:])
    mails = await mail_to(lmtp_service, JANE, count=2)
    assert any("Confirm joining" in m["Subject"] for m in mails)
    with lmtp_service.factory() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1


async def test_lmtp_join_and_confirm(lmtp_service: Service) -> None:
    port = lmtp_service.smtp_port
    msg = make_message(
        to="sm-cop-request@lists.example.gov", subject="Join the Social Media Community"
    )
    await _lmtp_session(port, JANE, ["sm-cop-request@lists.example.gov"], msg.as_bytes())
    [confirmation] = await mail_to(lmtp_service, JANE)
    reply = make_message(to=confirmation["Reply-To"], subject="Re: " + confirmation["Subject"])
    await _lmtp_session(port, JANE, [confirmation["Reply-To"]], reply.as_bytes())
    await settle(lmtp_service)
    with lmtp_service.factory() as session:
        assert session.scalar(select(func.count()).where(Member.role == "member")) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\xff\xfe garbage \x80\x81\r\n\r\n\x00",
        b"no headers at all, just a line\r\n",
        b"Subject: =?x-unknown?Q?Join_the_Social_Media_Community?=\r\n\r\nbody\r\n",
        (
            b"From: jane.doe@agency.gov\r\nSubject: join\r\nContent-Type: text/plain; "
            b"charset=bogus-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n"
        ),
        (
            b"From: jane.doe@agency.gov\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
            b'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
            b"\xc3\x28 broken utf-8, and the closing boundary never comes\r\n"
        ),
        b"From: \r\nFrom: a@b.c, , <>\r\nSubject: \xe9\xe8\r\n\r\n" + b"x" * 5000 + b"\r\n",
    ],
)
async def test_bad_input_is_kept_and_never_crashes(service: Service, raw: bytes) -> None:
    for rcpt in (
        "sm-cop-request@lists.example.gov",
        "sm-cop@lists.example.gov",
        "listserv@lists.example.gov",
    ):
        assert await send(service, raw, mail_from=JANE, rcpt_to=rcpt) == {}
    await settle(service)
    with service.factory() as session:
        rows = session.scalars(select(InboundMessage)).all()
        assert len(rows) == 3
        for row in rows:
            assert row.raw  # kept as received
            assert row.status in (InboundStatus.DONE, InboundStatus.IGNORED, InboundStatus.FAILED)
            assert row.reason  # every outcome says why
    # The service is still healthy afterwards.
    await send(service, make_message(to="sm-cop-join@lists.example.gov"))
    await mail_to(service, JANE)


async def test_smtputf8_sender_and_8bit_body(service: Service) -> None:
    raw = (
        "From: José Pérez <josé@agency.gov>\r\nTo: sm-cop-join@lists.example.gov\r\n"
        "Subject: Únete\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nJosé Pérez, Especialista\r\n"
    ).encode()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=service.smtp_port, start_tls=False)
    async with client:
        await client.sendmail(
            "josé@agency.gov",
            ["sm-cop-join@lists.example.gov"],
            raw,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )
    [confirmation] = await mail_to(service, "josé@agency.gov")
    assert "José Pérez" in confirmation.get_content()


def _write_config(tmp_path: Path, db_url: str, port: int) -> Path:
    var = tmp_path / "var"
    config = tmp_path / "listserv.toml"
    config.write_text(
        textwrap.dedent(f"""
        [site]
        domain = "lists.example.gov"
        secret = "{TEST_SECRET}"
        var_dir = "{var}"
        [smtp]
        host = "127.0.0.1"
        port = {port}
        [database]
        url = "{db_url}"
        [delivery]
        maildir = "{var / "mail"}"
        [[lists]]
        name = "sm-cop"
        display_name = "SM-COP"
        owners = ["owner@digital.gov"]
        join_phrases = ["Join the Social Media Community"]
        eligible_domains = ["gov", "mil"]
    """)
    )
    return config


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(config: Path, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, LISTSERV_CONFIG=str(config))
    return subprocess.Popen(
        [sys.executable, "-m", "listserv", "serve", "--no-web", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("service did not start")


@pytest.mark.slow
async def test_killed_after_250_then_restarted_processes_once(tmp_path: Path, db_url: str) -> None:
    """SIGKILL right after 250: the message was stored, and is processed once on restart."""
    port = _free_port()
    config = _write_config(tmp_path, db_url, port)
    # Intake only, so the kill certainly lands before processing.
    proc = _start(config, "--no-workers")
    try:
        _wait_port(port, proc)
        msg = make_message(to="sm-cop-join@lists.example.gov")
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            assert smtp.sendmail(JANE, ["sm-cop-join@lists.example.gov"], msg.as_bytes()) == {}
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # A full service started on the same database and Maildir picks it up.
    settings = make_settings(db_url, tmp_path / "var")
    service = build_service(settings)
    await service.start()
    try:
        await mail_to(service, JANE)
        await settle(service)
        with service.factory() as session:
            assert session.scalar(select(func.count()).select_from(PendingRequest)) == 1
            [row] = session.scalars(select(InboundMessage)).all()
            assert row.status == InboundStatus.DONE and row.attempts == 1
        assert len(read_maildir(settings.delivery.maildir)) == 1
    finally:
        await service.stop()


@pytest.mark.slow
async def test_full_service_killed_mid_stream_loses_nothing(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Kill -9 while messages arrive; after restart every accepted one is processed once."""
    port = _free_port()
    config = _write_config(tmp_path, sqlite_url, port)
    proc = _start(config)
    accepted = []
    try:
        _wait_port(port, proc)
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for i in range(20):
                sender = f"user{i}@agency.gov"
                msg = make_message(sender=sender, to="sm-cop-join@lists.example.gov")
                smtp.sendmail(sender, ["sm-cop-join@lists.example.gov"], msg.as_bytes())
                accepted.append(sender)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    settings = make_settings(sqlite_url, tmp_path / "var")
    service = build_service(settings)
    await service.start()
    try:
        await settle(service, timeout=30)

        def confirmations() -> dict[str, int]:
            counts: dict[str, int] = {}
            for _, m in read_maildir(settings.delivery.maildir):
                counts[str(m["Delivered-To"])] = counts.get(str(m["Delivered-To"]), 0) + 1
            return counts

        counts = await wait_for(lambda: (c := confirmations()) and len(c) == 20 and c)
        # Exactly one confirmation each; a delivery in flight at the kill may repeat once.
        assert set(counts) == set(accepted)
        assert all(n in (1, 2) for n in counts.values())
        with service.factory() as session:
            assert session.scalar(select(func.count()).select_from(PendingRequest)) == 20
    finally:
        await service.stop()
