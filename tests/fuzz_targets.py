# SPDX-License-Identifier: Apache-2.0
"""Fuzz targets and their Hypothesis strategies, shared by the short runs in the test suite
(tests/test_fuzz.py) and the long run (benchmarks/fuzz.py).

Three parsers face mail from anyone: the MIME decoration pipeline (every
post), the command parser (every -request message) and the DSN parser (every
bounce). Each target feeds one input through and checks what must hold for
any input; an exception or a failed check is a crash.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from listserv.commands.parse import find_commands, parse_line
from listserv.commands.table import COMMANDS
from listserv.decorate import ListIdentity, decorate_post, personalize
from listserv.dsn import _parse_bounce, parse_bounce

LISTS = tuple(
    ListIdentity(
        name="sm-cop",
        display_name="SM-COP",
        domain="lists.example.gov",
        subject_prefix=prefix,
        dmarc_mitigation=mitigation,
        original_sender_header=sender_header,
        archive_url="https://lists.example.gov/lists/sm-cop",
    )
    for prefix, mitigation, sender_header in (
        ("[SM-COP]", "munge", "reply-to"),
        ("", "wrap", "reply-to"),
        ("[SM-COP]", "none", "cc"),
    )
)
FOOTER = "List communications are subject to release under FOIA.\n"
FOOTER_HTML = "<p>List communications are subject to release under FOIA.</p>"

# ---------------------------------------------------------------- strategies

_CHARSETS = st.sampled_from(["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "x-bogus", ""])
_CTES = st.sampled_from(["7bit", "8bit", "quoted-printable", "base64", "binary", "x-weird", ""])
_EOL = st.sampled_from([b"\r\n", b"\n"])
_HEADER_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "=?utf-8?q?Caf=C3=A9?=",
            "=?x-unknown?q?caf=E9?=",
            "=?utf-8?b?////?=",
            "=?iso-8859-1?q?=FF=FE?= tail",
            '"Jane\\" <ceo@agency.gov>, \\"x" <jane@agency.gov>',
            "a" * 1200,
        ]
    ),
)


@st.composite
def _leaf(draw: st.DrawFn) -> bytes:
    subtype = draw(st.sampled_from(["plain", "html", "calendar", "octet-stream"]))
    major = "application" if subtype == "octet-stream" else "text"
    charset = draw(_CHARSETS)
    cte = draw(_CTES)
    body = (
        draw(st.binary(max_size=300))
        if draw(st.booleans())
        else draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    )
    head = f"Content-Type: {major}/{subtype}" + (f'; charset="{charset}"' if charset else "")
    if cte:
        head += f"\nContent-Transfer-Encoding: {cte}"
    return head.encode() + b"\n\n" + body


@st.composite
def _entity(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        return draw(_leaf())
    subtype = draw(st.sampled_from(["mixed", "alternative", "signed", "related", "encrypted"]))
    boundary = draw(st.sampled_from(["b1", "==b==", "b1--", "", "x" * 80]))
    parts = draw(st.lists(_entity(depth + 1), max_size=4))
    extra = '; protocol="application/pgp-signature"' if subtype == "signed" else ""
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"{extra}\n\n'.encode()
    body = b"".join(b"--" + boundary.encode() + b"\n" + part + b"\n" for part in parts)
    if draw(st.booleans()):
        body += b"--" + boundary.encode() + b"--\n"
    return head + body


@st.composite
def posts(draw: st.DrawFn) -> bytes:
    """A message a member might send, well-formed or not, in either line ending."""
    headers = [
        b"From: " + draw(_HEADER_TEXT).encode("utf-8", "surrogatepass"),
        b"Subject: " + draw(_HEADER_TEXT).encode("utf-8", "surrogatepass"),
        b"Message-ID: <fuzz@agency.gov>",
    ]
    if draw(st.booleans()):
        headers.append(b"MIME-Version: 1.0")
    if draw(st.booleans()):
        headers.append(b"DKIM-Signature: v=1; d=agency.gov; h=from:subject:list-id; b=abc")
    entity = draw(_entity())
    raw = b"\n".join(headers) + b"\n" + entity
    if draw(st.booleans()):  # a few bytes changed anywhere
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=6)) + raw[at:]
    eol = draw(_EOL)
    return raw.replace(b"\n", eol) if eol != b"\n" else raw


_WORDS = st.sampled_from(
    [w for c in COMMANDS for w in c.words]
    + ["SM-COP", "sm-cop", "-", "--", "confirm", "Approved:", "OK", "\u00a0", "\t"]
)
command_lines = st.lists(
    st.one_of(
        st.text(max_size=80),
        st.lists(st.one_of(_WORDS, st.text(max_size=12)), max_size=8).map(" ".join),
    ),
    max_size=40,
)


@st.composite
def bounces(draw: st.DrawFn) -> bytes:
    """A delivery status notification, well-formed or not, or any bytes at all."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=2000))
    fields = []
    for _ in range(draw(st.integers(0, 4))):
        fields.append(
            "\n".join(
                [
                    f"Final-Recipient: {draw(st.sampled_from(['rfc822', 'x', '']))};"
                    f"{draw(st.text(max_size=40))}",
                    f"Action: {draw(st.sampled_from(['failed', 'delayed', 'relayed', '', 'x']))}",
                    f"Status: {draw(st.sampled_from(['5.1.1', '4.2.2', '5.7.1', '9.9', '']))}",
                    f"Diagnostic-Code: smtp; {draw(st.text(max_size=80))}",
                ]
            )
        )
    status = "\n\n".join(["Reporting-MTA: dns; mx.agency.gov", *fields])
    boundary = draw(st.sampled_from(["r", "", "r--"]))
    raw = (
        "From: MAILER-DAEMON@agency.gov\nTo: sm-cop-bounces@lists.example.gov\n"
        f"Subject: {draw(_HEADER_TEXT)}\nMIME-Version: 1.0\nContent-Type: multipart/report; "
        f'report-type=delivery-status; boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain\n\n{draw(st.text(max_size=200))}\n"
        f"--{boundary}\nContent-Type: message/delivery-status\n\n{status}\n"
        f"--{boundary}--\n"
    ).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    return raw


# ---------------------------------------------------------------- targets


def decorate_target(raw: bytes) -> None:
    for lst in LISTS:
        out = decorate_post(raw, lst, FOOTER, FOOTER_HTML)
        assert isinstance(out, bytes)
        assert b"List-Post: <mailto:sm-cop@lists.example.gov>" in out
        assert b"leave@" in personalize(out, "https://x/u")
        parsed = email.message_from_bytes(out, policy=email.policy.default)
        for part in parsed.walk():  # the copy is readable MIME, however odd the post
            part.get_content_type()


def command_target(lines: list[str]) -> None:
    for invocation in find_commands(COMMANDS, lines):
        assert invocation.command in COMMANDS
    for line in lines:
        found = parse_line(COMMANDS, line)
        assert found is None or found.command in COMMANDS


def dsn_target(raw: bytes) -> None:
    report = _parse_bounce(raw)  # raises on what parse_bounce would quietly give up on
    assert report == parse_bounce(raw)
    for recipient in report.recipients:
        assert "@" in recipient.address and "\n" not in recipient.address


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[object]
    run: Callable[[object], None]


TARGETS: tuple[Target, ...] = (
    Target("decoration", posts(), decorate_target),  # type: ignore[arg-type]
    Target("commands", command_lines, command_target),  # type: ignore[arg-type]
    Target("dsn", bounces(), dsn_target),  # type: ignore[arg-type]
)
