# SPDX-License-Identifier: Apache-2.0
"""Behind the real Postfix, configured as the README says: mail to port 25's stand-in
reaches the service over LMTP, the confirmation leaves through Postfix, and an address
the service does not serve is refused at Postfix's own RCPT (no backscatter).

Runs a private Postfix instance (its own config and queue directories, its own ports)
from Debian's `postfix` package, which needs root; skipped with the reason elsewhere.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.admin_helpers import write_config
from tests.conftest import make_message
from tests.web_helpers import free_port

POSTFIX = Path("/usr/sbin/postfix")
MASTER_CF = Path("/usr/share/postfix/master.cf.dist")
JANE = "jane.doe@agency.gov"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not POSTFIX.exists(), reason="Debian's postfix package is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a private Postfix instance needs root"),
]


class Sink:
    """The Internet, as far as Postfix's relay is concerned: keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), content))
        return "250 OK"


def master_cf(smtp_port: int) -> str:
    """The stock master.cf, without chroot (the private queue has no chroot files), with
    smtpd on our port instead of 25."""
    lines = []
    for line in MASTER_CF.read_text().splitlines():
        fields = line.split()
        if line and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                fields[0] = f"127.0.0.1:{smtp_port}"
            fields[4] = "n"
            line = " ".join(fields)
        lines.append(line)
    return "\n".join(lines) + "\n"


def main_cf(base: Path, lmtp_port: int, sink_port: int) -> str:
    """The README's minimal main.cf, plus what a private instance needs."""
    return f"""
compatibility_level = 3.6
myhostname = mail.example.gov
mydestination = localhost
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
recipient_delimiter = +
relay_domains = lists.example.gov
relay_recipient_maps = texthash:{base}/listserv_recipients
transport_maps = texthash:{base}/listserv_transport
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = reject_unlisted_recipient
maillog_file = {base}/postfix.log
maillog_file_prefixes = {base}
queue_directory = {base}/queue
data_directory = {base}/data
relayhost = [127.0.0.1]:{sink_port}
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
""".lstrip()


def wait_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on {port}")


@pytest.fixture
def postfix(tmp_path: Path, db_url: str) -> Iterator[tuple[int, Sink, Path]]:
    # A short path: Postfix's sockets live under the queue directory, and a Unix socket's
    # path may not exceed 107 bytes (pytest's tmp_path is too deep for some of them).
    # Postfix's daemons run as the postfix user: the directory must be theirs to enter.
    base = Path(tempfile.mkdtemp(prefix="pf", dir="/tmp"))
    base.chmod(0o755)
    lmtp_port, smtp_port, sink_port = free_port(), free_port(), free_port()
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    controller.start()
    config = write_config(
        tmp_path / "listserv.toml",
        db_url,
        tmp_path / "var",
        smtp={"port": lmtp_port, "lmtp": True, "recipient_map": str(base / "listserv_recipients")},
        delivery={"transport": "smtp", "relay_host": "127.0.0.1", "relay_port": smtp_port},
    )
    env = dict(os.environ, LISTSERV_CONFIG=str(config))
    env.pop("LISTSERV_DATABASE_URL", None)
    maps = subprocess.run(
        [
            sys.executable,
            "-m",
            "listserv",
            "postfix-maps",
            "--out",
            str(base / "listserv_recipients"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert maps.returncode == 0, maps.stderr
    (base / "listserv_transport").write_text(f"lists.example.gov lmtp:inet:127.0.0.1:{lmtp_port}\n")
    (base / "main.cf").write_text(main_cf(base, lmtp_port, sink_port))
    (base / "master.cf").write_text(master_cf(smtp_port))
    (base / "queue").mkdir()
    (base / "data").mkdir()
    shutil.chown(base / "data", "postfix", "postfix")
    log = (tmp_path / "serve.log").open("wb")
    service = subprocess.Popen(
        [sys.executable, "-m", "listserv", "serve", "--lmtp", "--no-web"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    started = subprocess.run(
        [str(POSTFIX), "-c", str(base), "start"], capture_output=True, text=True, timeout=60
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        wait_port(smtp_port, "Postfix")
        wait_port(lmtp_port, "listserv")
        yield smtp_port, sink, base
    finally:
        subprocess.run([str(POSTFIX), "-c", str(base), "stop"], capture_output=True, timeout=60)
        service.terminate()
        service.wait(timeout=20)
        controller.stop()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def test_mail_reaches_the_service_over_lmtp_and_leaves_through_postfix(
    postfix: tuple[int, Sink, Path],
) -> None:
    port, sink, base = postfix
    join: EmailMessage = make_message(to="sm-cop-join@lists.example.gov", subject="Join")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        assert smtp.sendmail(JANE, ["sm-cop-join@lists.example.gov"], join.as_bytes()) == {}
        # An address the service does not serve: refused at Postfix's RCPT, nothing queued.
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(JANE, ["no-such-list@lists.example.gov"], join.as_bytes())
    [(code, text)] = refused.value.recipients.values()
    assert code == 550, text
    deadline = time.monotonic() + 60
    while not sink.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    log = (base / "postfix.log").read_text() if (base / "postfix.log").exists() else ""
    assert sink.messages, "no confirmation left through Postfix:\n" + log
    mail_from, rcpts, content = sink.messages[0]
    assert rcpts == [JANE] and mail_from.startswith("sm-cop-bounces")
    assert b"Confirm joining SM-COP" in content
    assert "status=sent (delivered via lmtp" in log or "relay=127.0.0.1" in log
