# SPDX-License-Identifier: Apache-2.0
"""The web pages over real sockets: inside the running service, and alone (`listserv web`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from listserv.app import CannotListen, build_service
from listserv.config import Settings
from listserv.models import Member
from listserv.tokens import unsubscribe_token
from tests.conftest import mail_to, settle
from tests.web_helpers import (
    ONE_CLICK,
    confirm_url,
    free_port,
    parse_page,
    start_web_service,
)

JANE = "jane.doe@agency.gov"


async def test_the_service_serves_join_confirm_and_one_click_on_a_real_socket(
    settings: Settings, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_web_service(settings) as service:
        assert service.web_port == service.settings.web.port
        base = service.settings.web.base_url
        async with httpx.AsyncClient(base_url=base) as client:
            page = await client.get("/lists/sm-cop")
            assert page.status_code == 200 and "Be the first community member" in page.text
            joined = await client.post(
                "/lists/sm-cop/join",
                data={"name": "Jane Doe", "title": "Analyst", "address": JANE},
            )
            assert "Check your mail" in joined.text
            [confirmation] = await mail_to(service, JANE)
            link = confirm_url(confirmation)
            assert link.startswith(base + "/confirm/")
            shown = await client.get(link)
            assert "Join SM-COP" in shown.text
            fields = parse_page(shown.text).forms[0]["fields"]
            confirmed = await client.post(link, data=fields)
            assert "Welcome to SM-COP" in confirmed.text
            await mail_to(service, JANE, count=2)
            with service.factory() as session:
                member = session.scalars(select(Member).where(Member.address_key == JANE)).one()
                token = unsubscribe_token(
                    service.settings.site.secret.get(),
                    member.id,
                    "sm-cop",
                    member.unsubscribe_nonce,
                )
            left = await client.post(f"/unsubscribe/sm-cop/{token}", data=ONE_CLICK)
            assert left.status_code == 200 and "You have left SM-COP" in left.text
            [*_, goodbye] = await mail_to(service, JANE, count=3)
            assert goodbye["Subject"] == "You have left SM-COP"
            await settle(service)
        port = service.web_port
    secrets = (link.rsplit("/", 1)[1], token, fields["form_key"])
    for record in caplog.records:
        if not record.name.startswith(("httpx", "httpcore")):
            assert not any(s in record.getMessage() for s in secrets), record.getMessage()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # stopped with the service


async def test_port_zero_serves_on_a_free_port_and_reports_it(settings: Settings) -> None:
    service = build_service(settings, web=True)  # settings.web.port is 0
    await service.start()
    try:
        assert service.web_port > 0
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{service.web_port}/lists")
        assert response.status_code == 200
    finally:
        await service.stop()


async def test_a_web_port_in_use_fails_the_start_naming_the_port(
    sqlite_settings: Settings,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        web = replace(sqlite_settings.web, port=port)
        service = build_service(replace(sqlite_settings, web=web), web=True)
        with pytest.raises(CannotListen, match=f"the web pages on 127.0.0.1:{port}"):
            await service.start()
        await service.stop()


@pytest.mark.slow
async def test_listserv_web_serves_the_pages_alone_and_stops_on_sigterm(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    var = sqlite_settings.site.var_dir
    config = tmp_path / "listserv.toml"
    root = Path(__file__).resolve().parent.parent
    shipped = (root / "config" / "listserv.toml").read_text()
    config.write_text(
        shipped.replace('var_dir = "var"', f'var_dir = "{var}"')
        .replace('secret = "generate"', 'secret = "test-secret-0123456789abcdef"')
        .replace('maildir = "var/mail"', f'maildir = "{var}/mail"')
        .replace("port = 8080", f"port = {port}")
    )
    env = dict(os.environ, LISTSERV_CONFIG=str(config), LISTSERV_DATABASE_URL="")
    proc = subprocess.Popen(
        [sys.executable, "-m", "listserv", "web", "-v"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/lists/sm-cop")
                    break
                except httpx.ConnectError:
                    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                    assert time.monotonic() < deadline, "listserv web did not start"
                    await asyncio.sleep(0.1)
            await client.get(f"http://127.0.0.1:{port}/confirm/{'c' * 32}")
        assert response.status_code == 200 and "SM-COP" in response.text
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    text = output.decode()
    assert proc.returncode == 0, text
    assert f"web pages on 127.0.0.1:{port}" in text
    assert "GET /confirm/[token] 404" in text  # -v logs requests, tokens redacted
    assert "c" * 32 not in text
