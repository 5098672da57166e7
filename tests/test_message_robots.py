# SPDX-License-Identifier: Apache-2.0
"""The one list of the mail system's own senders, shared by bounces and auto-replies."""

from __future__ import annotations

import pytest

from listserv.dsn import parse_bounce
from listserv.message import ROBOT_LOCAL_PARTS, is_robot_address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("MAILER-DAEMON@mx.agency.gov", True),
        ("postmaster@agency.gov", True),
        ("Mail-Daemon@mx.gov", True),
        ("mailerdaemon", True),
        ("postmaster-team@agency.gov", False),
        ("jane@agency.gov", False),
        ("", False),
    ],
)
def test_is_robot_address(address: str, expected: bool) -> None:
    assert is_robot_address(address) is expected


@pytest.mark.parametrize("local_part", sorted(ROBOT_LOCAL_PARTS))
def test_a_robot_from_is_a_bounce_not_an_out_of_office(local_part: str) -> None:
    raw = (
        f"From: {local_part}@mx.agency.gov\r\nSubject: Out of office\r\n"
        "Auto-Submitted: auto-replied\r\n\r\nI am away.\r\n"
    ).encode()
    assert not parse_bounce(raw).is_auto_reply
