# SPDX-License-Identifier: Apache-2.0
"""Reading untrusted messages: parsing never raises, subjects and bodies decode."""

from __future__ import annotations

import base64
from email import policy as stdlib_policy
from email.message import EmailMessage

import pytest

from listserv.mail_policy import POLICY
from listserv.message import (
    auto_reply_reason,
    from_addresses,
    header_text,
    message_id,
    normalise_phrase,
    normalised_subject,
    parse_message,
    sender_address,
    text_body_lines,
)

PHRASE = "join the social media community"


def msg(*headers: str, body: bytes = b"", raw_headers: bytes = b"") -> EmailMessage:
    head = "".join(f"{h}\r\n" for h in headers).encode("utf-8") + raw_headers
    return parse_message(head + b"\r\n" + body)


def everything(m: EmailMessage) -> None:
    """Call every accessor; used to prove none of them raises."""
    for name in ("Subject", "From", "To", "Message-ID", "Content-Type", "X-Missing"):
        assert isinstance(header_text(m, name), str)
    assert isinstance(normalised_subject(m), str)
    assert isinstance(from_addresses(m), list)
    sender_address(m, "x@agency.gov")
    assert isinstance(text_body_lines(m), list)
    auto_reply_reason(m, "x@agency.gov")
    message_id(m)


# --- parsing never raises --------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x00\x00\x00",
        b"\xff\xfe\x00garbage\x80\x81\r\n\r\n\x00",
        bytes(range(256)) * 4,
        b"no headers at all, just a line of text\r\nand another\r\n",
        b"Subject: x\x00y\r\nFrom: a\x00@b.gov\r\n\r\nbody\x00with NUL\r\n",
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nbroken",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary parameter\r\n",
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64***\r\n",
        b'From: "\r\nTo: :\r\nSubject: =?utf-8?B?broken***?=\r\nMessage-ID: <<<\r\n\r\n',
        b"From: \xe9\xff <\xff@\xfe.gov>\r\n\r\n",
        b'Content-Type: text/plain; charset="\r\n\r\nx',
        b"Content-Type: text/plain; charset=base64\r\n\r\nx",
    ],
)
def test_parse_message_never_raises(raw: bytes) -> None:
    m = parse_message(raw)
    assert isinstance(m, EmailMessage)
    everything(m)


def test_garbage_is_kept_as_body() -> None:
    m = parse_message(b"\x00\x01\x02garbage")
    assert text_body_lines(m) == ["\x01\x02garbage"]
    assert m.defects  # the missing header/body separator is recorded


def test_message_with_no_headers() -> None:
    m = parse_message(b"\r\njust a body\r\n")
    assert list(m.keys()) == []
    assert header_text(m, "Subject") == ""
    assert normalised_subject(m) == ""
    assert from_addresses(m) == []
    assert message_id(m) is None
    assert text_body_lines(m) == ["just a body"]


# --- headers -----------------------------------------------------------------------


def test_unknown_charset_in_encoded_word() -> None:
    m = msg("Subject: =?x-unknown?Q?abc?=")
    assert header_text(m, "Subject") == "abc"


def test_raw_8bit_header_bytes_become_valid_unicode() -> None:
    m = msg(raw_headers=b"Subject: caf\xc3\xa9 \xff\r\n")
    text = header_text(m, "Subject")
    assert text == "caf\u00e9 \ufffd"
    text.encode("utf-8")  # no lone surrogates left


# Values on which the stdlib's lazy header parser itself raises (IndexError,
# AttributeError in Python 3.11's _header_value_parser) when msg[name] is read.
STDLIB_CRASHERS = b'From: :.);a;>,== \r\nTo: =?utf-8?q?J=C3=B6rg?= ,"\r\nMessage-ID: <\t;=:@(\r\n'


def test_header_text_falls_back_when_the_stdlib_parser_raises() -> None:
    m = msg(raw_headers=STDLIB_CRASHERS + b'Cc: =?x-bogus?q?J=F6rg?= caf\xc3\xa9 ,"\r\n')
    assert header_text(m, "From") == ":.);a;>,== "
    assert header_text(m, "To") == 'J\u00f6rg ,"'  # RFC 2047 still decoded by hand
    # unknown charset -> utf-8 -> latin-1; raw 8-bit UTF-8 outside encoded words kept
    assert header_text(m, "Cc") == 'J\u00f6rg caf\u00e9 ,"'
    assert message_id(m) == "<;=:@("
    everything(m)


def test_from_addresses_reads_each_from_header_on_its_own() -> None:
    m = msg(raw_headers=STDLIB_CRASHERS + b"From: Jane <jane@agency.gov>\r\n")
    assert from_addresses(m) == [("Jane", "jane@agency.gov")]
    assert sender_address(m, "") == "jane@agency.gov"


def test_header_text_absent_is_empty() -> None:
    assert header_text(msg("Subject: hi"), "X-Nothing") == ""


@pytest.mark.parametrize(
    "subject",
    [
        "Join the Social Media Community",
        "JOIN THE SOCIAL MEDIA COMMUNITY",
        "  join   the\tsocial media community  ",
        "=?UTF-8?B?" + base64.b64encode(b"Join the Social Media Community").decode() + "?=",
        "=?utf-8?q?Join_the_Social_Media_Community?=",
        "=?ISO-8859-1?Q?Join_the_Social_Media_Community?=",
        "=?iso-8859-1?b?"
        + base64.b64encode(b"R\xe9f: Join the Social Media Community").decode()
        + "?=",
        "=?iso-8859-1?q?R=E9f=A0:_Join_the_Social_Media_Community?=",
        "=?utf-8?q?Join_the_Social?= =?utf-8?q?_Media_Community?=",
        "Re: Join the Social Media Community",
        "RE: Fwd: re: FW: Join the Social Media Community",
        "Re[2]: Join the Social Media Community",
        "Re(3): AW: WG: SV: Join the Social Media Community",
        "Fw: [SM-COP] Re: Join the Social Media Community",
        "[SM-COP] Join the Social Media Community",
        "Réf : Join the Social Media Community",
        "\uff32\uff45\uff1a Join the \uff33ocial Media Community",  # full-width "Re:" and S
        "Join the Social\u200b Media Community",
    ],
)
def test_subject_matches_join_phrase(subject: str) -> None:
    m = msg(f"Subject: {subject}")
    assert normalised_subject(m) == PHRASE
    assert normalised_subject(m) == normalise_phrase("Join the Social Media Community")


@pytest.mark.parametrize(
    "subject",
    [
        "Join the Social Media Committee",
        "Please join the social media community",
        "Ready: join the social media community",
        "",
    ],
)
def test_subject_does_not_match_other_text(subject: str) -> None:
    assert normalised_subject(msg(f"Subject: {subject}")) != PHRASE


def test_prefix_only_subject_is_empty() -> None:
    assert normalised_subject(msg("Subject: Re: Fwd: [SM-COP]")) == ""


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("Join #SocialGov", "join #socialgov"),
        ("  Subscribe   to #SocialGov ", "subscribe to #socialgov"),
        ("STRASSE", "strasse"),
        ("Stra\u00dfe", "strasse"),  # case folding, not just lower()
    ],
)
def test_normalise_phrase(phrase: str, expected: str) -> None:
    assert normalise_phrase(phrase) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["From: Jane Doe <jane@agency.gov>"], [("Jane Doe", "jane@agency.gov")]),
        (["From: jane@agency.gov"], [("", "jane@agency.gov")]),
        (
            ["From: =?utf-8?q?J=C3=B6rg?= <jorg@army.mil>, b@agency.gov"],
            [("J\u00f6rg", "jorg@army.mil"), ("", "b@agency.gov")],
        ),
        (
            ["From: a@agency.gov", "From: b@evil.com"],
            [("", "a@agency.gov"), ("", "b@evil.com")],
        ),
        (["To: a@agency.gov"], []),
        (["From: undisclosed-recipients:;"], []),
        (["From: <>"], []),
    ],
)
def test_from_addresses(headers: list[str], expected: list[tuple[str, str]]) -> None:
    assert from_addresses(msg(*headers)) == expected


@pytest.mark.parametrize(
    ("headers", "envelope", "expected"),
    [
        (["From: Jane <jane@agency.gov>"], "bounce@other.gov", "jane@agency.gov"),
        ([], "<env@agency.gov>", "env@agency.gov"),
        ([], "env@agency.gov", "env@agency.gov"),
        ([], "", None),
        ([], "<>", None),
    ],
)
def test_sender_address(headers: list[str], envelope: str, expected: str | None) -> None:
    assert sender_address(msg(*headers), envelope) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["Message-ID: <abc@agency.gov>"], "<abc@agency.gov>"),
        (["Message-ID:   <abc@agency.gov>  "], "<abc@agency.gov>"),
        (["Message-ID:\r\n <abc@agency.gov>"], "<abc@agency.gov>"),
        ([], None),
        (["Message-ID: "], None),
    ],
)
def test_message_id(headers: list[str], expected: str | None) -> None:
    assert message_id(msg(*headers)) == expected


# --- bodies ------------------------------------------------------------------------


def test_plain_body_lines_trailing_space_stripped_and_limited() -> None:
    body = b"subscribe sm-cop   \r\nJane Doe\t\r\n\r\n" + b"line\r\n" * 100
    m = msg("Content-Type: text/plain; charset=utf-8", body=body)
    lines = text_body_lines(m, limit=4)
    assert lines == ["subscribe sm-cop", "Jane Doe", "", "line"]
    assert len(text_body_lines(m)) == 50
    assert text_body_lines(m, limit=0) == []


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/plain; charset=bogus", b"Jane caf\xc3\xa9", "Jane caf\u00e9"),  # -> utf-8
        ("text/plain; charset=bogus", b"Jane caf\xe9", "Jane caf\u00e9"),  # -> latin-1
        ("text/plain; charset=us-ascii", b"Jane caf\xc3\xa9", "Jane caf\u00e9"),  # wrong
        ("text/plain; charset=iso-8859-1", b"Jane caf\xe9", "Jane caf\u00e9"),
        ("text/plain; charset=base64", b"Jane", "Jane"),  # a codec, not a text encoding
        ("text/plain", b"Jane caf\xc3\xa9", "Jane caf\u00e9"),
    ],
)
def test_body_charset_fallbacks(content_type: str, body: bytes, expected: str) -> None:
    m = msg(f"Content-Type: {content_type}", body=body)
    assert text_body_lines(m) == [expected]


def test_body_nul_bytes_removed() -> None:
    m = msg("Content-Type: text/plain", body=b"sub\x00scribe\r\n")
    assert text_body_lines(m) == ["subscribe"]


def test_base64_and_quoted_printable_bodies() -> None:
    b64 = msg(
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        body=base64.b64encode("join\r\nJ\u00f6rg\r\n".encode()),
    )
    assert text_body_lines(b64) == ["join", "J\u00f6rg"]
    qp = msg(
        "Content-Type: text/plain; charset=iso-8859-1",
        "Content-Transfer-Encoding: quoted-printable",
        body=b"R=E9sum=E9 =\r\nsoft break\r\n",
    )
    assert text_body_lines(qp) == ["R\u00e9sum\u00e9 soft break"]


MULTIPART = b"""MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary="outer"\r
\r
--outer\r
Content-Type: text/plain; name="notes.txt"\r
Content-Disposition: attachment; filename="notes.txt"\r
\r
attached text, not the body\r
--outer\r
Content-Type: multipart/alternative; boundary="inner"\r
\r
--inner\r
Content-Type: text/html; charset=utf-8\r
\r
<p>html version</p>\r
--inner\r
Content-Type: text/plain; charset=utf-8\r
\r
plain version\r
--inner--\r
--outer--\r
"""


def test_first_inline_plain_part_wins() -> None:
    assert text_body_lines(parse_message(MULTIPART)) == ["plain version"]


def test_html_only_body_is_stripped() -> None:
    html = (
        b"<html><head><title>t</title><style>p {color: red}</style></head><body>"
        b"<p>subscribe&nbsp;sm-cop</p><div>Jane &amp; Doe<br>Social Media Lead</div>"
        b"<script>alert(1)</script></body></html>"
    )
    m = msg("Content-Type: text/html; charset=utf-8", body=html)
    assert text_body_lines(m) == ["subscribe sm-cop", "", "Jane & Doe", "Social Media Lead"]


def test_no_text_part_gives_no_lines() -> None:
    m = msg("Content-Type: image/png", "Content-Transfer-Encoding: base64", body=b"iVBORw0KGgo=")
    assert text_body_lines(m) == []


# --- auto-replies (RFC 3834) -------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "envelope", "expected"),
    [
        ([], "", "null reverse path"),
        ([], "<>", "null reverse path"),
        ([], "  <>  ", "null reverse path"),
        ([], "MAILER-DAEMON@mx.agency.gov", "MAILER-DAEMON sender"),
        ([], "<postmaster@agency.gov>", "MAILER-DAEMON sender"),
        ([], "mailer-daemon", "MAILER-DAEMON sender"),
        (
            ["From: Mail Delivery System <MAILER-DAEMON@mx.gov>"],
            "x@agency.gov",
            "MAILER-DAEMON sender",
        ),
        (["Auto-Submitted: auto-replied"], "jane@agency.gov", "Auto-Submitted: auto-replied"),
        (["Auto-Submitted: auto-generated"], "jane@agency.gov", "Auto-Submitted: auto-generated"),
        (
            ["Auto-Submitted: Auto-Replied; owner-email=x@y.gov"],
            "jane@agency.gov",
            "Auto-Submitted: auto-replied",
        ),
        (["Auto-Submitted: "], "jane@agency.gov", "Auto-Submitted: (empty)"),
        (["Precedence: bulk"], "jane@agency.gov", "Precedence: bulk"),
        (["Precedence: JUNK"], "jane@agency.gov", "Precedence: junk"),
        (["Precedence: list"], "jane@agency.gov", "Precedence: list"),
        (["X-Autoreply: yes"], "jane@agency.gov", "X-Autoreply header"),
        (["X-Autorespond: vacation"], "jane@agency.gov", "X-Autorespond header"),
        # may be answered
        ([], "jane@agency.gov", None),
        (["Auto-Submitted: no"], "jane@agency.gov", None),
        (["Auto-Submitted: No"], "jane@agency.gov", None),
        (["Precedence: first-class"], "jane@agency.gov", None),
        (["List-Id: <other.lists.example.gov>"], "jane@agency.gov", None),
        (["From: Jane <jane@agency.gov>", "Subject: Out of office?"], "jane@agency.gov", None),
        (["From: postmaster@agency.gov"], "postmaster-team@agency.gov", None),
    ],
)
def test_auto_reply_reason(headers: list[str], envelope: str, expected: str | None) -> None:
    assert auto_reply_reason(msg(*headers), envelope) == expected


def test_a_header_read_again_after_it_changed_is_read_afresh() -> None:
    """Header text is remembered per message (every stage asks for the same few),
    but beside the raw value it came from: a changed header is parsed again."""
    m = parse_message(
        b"From: Jane <jane@agency.gov>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nx\r\n"
    )
    assert header_text(m, "Subject") == "café"
    assert header_text(m, "subject") == "café"
    del m["Subject"]
    assert header_text(m, "Subject") == ""
    m["Subject"] = "Records schedules"
    assert header_text(m, "Subject") == "Records schedules"
    m.replace_header("Subject", "Instagram archiving")
    assert header_text(m, "Subject") == "Instagram archiving"


def test_the_parse_policy_reuses_header_classes_and_parses_as_the_default() -> None:
    registry = POLICY.header_factory
    assert registry["From"] is registry["from"]
    value = '"Doe, Jane" <jane@agency.gov>, =?utf-8?q?R=C3=A9mi?= <remi@agency.gov>'
    ours = registry("From", value)
    theirs = stdlib_policy.default.header_factory("From", value)
    assert [(a.display_name, a.addr_spec) for a in ours.addresses] == [
        (a.display_name, a.addr_spec) for a in theirs.addresses
    ]
    assert str(ours) == str(theirs) and list(ours.defects) == list(theirs.defects)
