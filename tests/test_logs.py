# SPDX-License-Identifier: Apache-2.0
"""No secret in any log line: a whole join-and-confirm run of `listserv serve --verbose`,
and the start-up errors that name the listener and port."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from listserv.logs import redact
from tests.admin_helpers import write_config
from tests.conftest import make_message, read_maildir
from tests.web_helpers import confirm_url, free_port, parse_page

JANE = "jane.doe@agency.gov"
CODE = "abcdefghijklmnopqrstuvwxyz234567"


def test_redact_replaces_codes_and_tokens_wherever_they_appear() -> None:
    line = (
        f"RCPT TO:<sm-cop-confirm+{CODE}@lists.example.gov> subject 'confirm {CODE.upper()}' "
        "GET /unsubscribe/sm-cop/12.AbC-d_e9 GET /login/k3J9vQ2xYp8LmN4rT6wZ"
    )
    cleaned = redact(line)
    assert CODE not in cleaned.lower() and "12.AbC-d_e9" not in cleaned
    assert "k3J9vQ2xYp8LmN4rT6wZ" not in cleaned
    assert "sm-cop-confirm+[code]@lists.example.gov" in cleaned
    assert "/unsubscribe/sm-cop/[token]" in cleaned and "/login/[token]" in cleaned


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(log.read_text())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("service did not start: " + log.read_text())


def serve(config: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, LISTSERV_CONFIG=str(config))
    env.pop("LISTSERV_DATABASE_URL", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "listserv", "serve", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_mail(maildir: Path, count: int) -> list[object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [m for _, m in read_maildir(maildir) if m["Delivered-To"] == JANE]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} messages for {JANE}")


@pytest.mark.slow
def test_no_log_line_of_a_join_and_confirm_run_holds_the_code(tmp_path: Path, db_url: str) -> None:
    smtp_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    config = write_config(
        tmp_path / "listserv.toml",
        db_url,
        tmp_path / "var",
        smtp={"port": smtp_port},
        web={"port": web_port, "base_url": base},
    )
    log = tmp_path / "serve.log"
    proc = serve(config, log, "--verbose")
    try:
        wait_port(smtp_port, proc, log)
        wait_port(web_port, proc, log)
        join = make_message(to="sm-cop-join@lists.example.gov", subject="Join")
        with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
            smtp.sendmail(JANE, ["sm-cop-join@lists.example.gov"], join.as_bytes())
        [confirmation] = wait_mail(tmp_path / "var" / "mail", 1)
        url = confirm_url(confirmation)  # type: ignore[arg-type]
        code = url.rsplit("/", 1)[1]
        with httpx.Client() as client:
            page = client.get(url)
            [form] = parse_page(page.text).forms
            done = client.post(url, data=form["fields"], headers={"Origin": base})
        assert done.status_code == 200, done.text
        wait_mail(tmp_path / "var" / "mail", 2)  # the welcome
        # The mail path too: a reply to the confirmation address (already used: refused).
        reply = make_message(to=f"sm-cop-confirm+{code}@lists.example.gov", subject="Re: x")
        with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
            smtp.sendmail(JANE, [f"sm-cop-confirm+{code}@lists.example.gov"], reply.as_bytes())
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text()
    assert "confirm+[code]@" in text or "/confirm/[code]" in text, text  # it was logged
    assert code not in text.lower()


def test_serve_names_the_listener_and_port_it_cannot_bind(tmp_path: Path, db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path / "listserv.toml", db_url, tmp_path / "var", smtp={"port": port}
        )
        log = tmp_path / "serve.log"
        proc = serve(config, log, "--no-web")
        proc.wait(timeout=30)
    assert proc.returncode == 1
    assert f"cannot listen for SMTP on 127.0.0.1:{port}" in log.read_text()


def test_serve_refuses_the_web_port_equal_to_the_smtp_port(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    config = write_config(tmp_path / "listserv.toml", db_url, tmp_path / "var")
    log = tmp_path / "serve.log"
    proc = serve(config, log, "--port", str(port), "--web-port", str(port))
    proc.wait(timeout=30)
    assert proc.returncode == 1
    assert f"web.port: is smtp.port too ({port})" in log.read_text()
