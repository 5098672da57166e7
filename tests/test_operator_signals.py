# SPDX-License-Identifier: Apache-2.0
"""What operators see, over real sockets: relay trouble logged once and its recovery,
`/metrics` in the Prometheus text format (the same from two hosts), JSON logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from listserv.app import Service, build_service
from listserv.models import OutboxRecipient
from tests.conftest import TEST_SECRET, make_message, make_settings, send, settle, wait_for
from tests.posting_helpers import add_member
from tests.relay_helpers import ScriptedRelay, smtp_delivery
from tests.web_helpers import free_port, with_public_port

JANE = "jane.doe@agency.gov"
POST = "sm-cop@lists.example.gov"


def relay_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "listserv.delivery" and "relay" in r.message]


async def test_a_refusing_relay_is_one_warning_and_its_recovery_one_info(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    relay = ScriptedRelay()  # not started: connections are refused
    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    service = build_service(settings)
    caplog.set_level(logging.INFO, logger="listserv")
    await service.start()
    try:
        for n in range(6):
            add_member(service, f"member{n}@agency.gov")
        for n in range(5):
            await send(service, make_message(sender="member0@agency.gov", subject=f"Post {n}"))

        def warned() -> list[logging.LogRecord]:
            return [r for r in relay_lines(caplog) if r.levelno == logging.WARNING]

        (warning,) = await wait_for(warned)
        assert f"relay 127.0.0.1:{relay.port} is refusing connections" in warning.message
        assert "next retry in 1 s" in warning.message
        await relay_retries_at_least(service, 2)
        assert len(warned()) == 1, "one line for the trouble, not one per message"

        await relay.start()

        def recovered() -> list[logging.LogRecord]:
            return [r for r in relay_lines(caplog) if "recovered" in r.message]

        (info,) = await wait_for(recovered, timeout=30)
        assert info.levelno == logging.INFO
        assert "delivering again" in info.message
        await wait_for(lambda: sum(relay.copies().values()) >= 30, timeout=30)
    finally:
        await service.stop()
        await relay.stop()


async def relay_retries_at_least(service: Service, attempts: int) -> None:
    def retried() -> bool:
        with service.factory() as session:
            top = session.scalar(select(func.max(OutboxRecipient.attempts)))
            return bool(top is not None and top >= attempts)

    await wait_for(retried, timeout=20)


async def test_a_deferring_relay_is_named_with_its_reply(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    relay = ScriptedRelay(rcpt_answer=lambda address: "451 4.3.0 queue full, come back later")
    await relay.start()
    settings = make_settings(sqlite_url, tmp_path / "var", delivery=smtp_delivery(relay))
    service = build_service(settings)
    caplog.set_level(logging.INFO, logger="listserv")
    await service.start()
    try:
        add_member(service, JANE)
        await send(service, make_message(subject="Deferred"))
        (warning,) = await wait_for(
            lambda: [r for r in relay_lines(caplog) if r.levelno == logging.WARNING]
        )
        assert "is deferring mail: 451 4.3.0 queue full" in warning.message
    finally:
        await service.stop()
        await relay.stop()


async def scrape(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{service.web_port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_metrics_are_read_from_the_database_so_two_hosts_agree(
    tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(
        db_url, tmp_path / "var", limits={"smtp_messages_per_client_per_minute": 3}
    )
    first = build_service(with_public_port(settings), web=True)
    await first.start()
    second_settings = with_public_port(replace(settings, smtp=replace(settings.smtp, port=0)))
    second = build_service(second_settings, web=True, workers=False)
    await second.start()
    try:
        add_member(first, JANE)
        add_member(first, "bob@agency.gov")
        for n in range(3):
            await send(first, make_message(subject=f"Post {n}"))
        with pytest.raises(aiosmtplib.SMTPSenderRefused):  # the fourth a minute: 451
            await send(first, make_message(subject="One too many"))
        await settle(first)
        await first.trips.drain()
        one, two = await scrape(first), await scrape(second)
        assert one == two
        assert one[("listserv_messages_accepted_total", ())] == 3
        assert one[("listserv_messages_processed_total", ())] == 3
        assert one[("listserv_messages_failed_total", ())] == 0
        assert one[("listserv_outbox_recipients", (("state", "sent"),))] == 6
        assert one[("listserv_outbox_recipients", (("state", "deferred"),))] == 0
        assert one[("listserv_outbox_oldest_deferred_age_seconds", ())] == 0
        assert one[("listserv_limit_trips_total", (("limit", "smtp-messages"),))] == 1
        assert ("listserv_inbound_messages", (("status", "received"),)) in one
    finally:
        await second.stop()
        await first.stop()


async def test_metrics_are_not_served_to_other_hosts(tmp_path: Path, sqlite_url: str) -> None:
    settings = with_public_port(make_settings(sqlite_url, tmp_path / "var"))
    service = build_service(replace(settings, web=replace(settings.web, host="0.0.0.0")), web=True)
    await service.start()
    try:
        outside = _outside_address()
        if outside is None:
            pytest.skip("this host has no non-loopback address to connect from")
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"http://{outside}:{service.web_port}/metrics")
        assert response.status_code == 404
    finally:
        await service.stop()


def _outside_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))
            address = str(sock.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_serve_log_format_json_writes_one_object_a_line(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    config = tmp_path / "listserv.toml"
    config.write_text(
        textwrap.dedent(f"""
        [site]
        domain = "lists.example.gov"
        secret = "{TEST_SECRET}"
        var_dir = "{tmp_path / "var"}"
        [smtp]
        port = {port}
        [database]
        url = "{sqlite_url}"
        [delivery]
        maildir = "{tmp_path / "var" / "mail"}"
        [[lists]]
        name = "sm-cop"
        display_name = "SM-COP"
        owners = ["owner@digital.gov"]
    """)
    )
    env = dict(os.environ, LISTSERV_CONFIG=str(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "listserv", "serve", "--no-web", "--log-format", "json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # A loaded machine (the whole suite, two cores) may take a while to start.
        deadline = time.monotonic() + 60
        listening = False
        while not listening and time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                listening = True
            except OSError:
                time.sleep(0.1)
        assert listening, "serve did not start listening within 60 s"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in err.decode().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert entries, "serve logged nothing"
    listening = next(e for e in entries if "listening for SMTP" in e["message"])
    assert listening["level"] == "INFO" and listening["logger"] == "listserv"
    assert listening["time"].endswith("+00:00")
    assert any(e["message"] == "stopping" for e in entries)
