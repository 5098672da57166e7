# SPDX-License-Identifier: Apache-2.0
"""Bounce recognition against realistic bounces from the MTAs list mail meets."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import listserv.dsn
import listserv.dsn.heuristics
from listserv.dsn import (
    BouncedRecipient,
    BounceKind,
    BounceReport,
    classify_smtp_reply,
    parse_bounce,
)

BOUNCES = Path(__file__).parent / "data" / "bounces"


def load(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


def only(report: BounceReport) -> BouncedRecipient:
    assert report.recognised
    assert not report.is_auto_reply
    assert len(report.recipients) == 1, report.recipients
    return report.recipients[0]


# --- RFC 3464 delivery-status reports -----------------------------------------------------------


def test_postfix_user_unknown() -> None:
    recipient = only(parse_bounce(load("postfix_user_unknown.eml")))
    assert recipient.address == "jdoe@agency.gov"
    assert recipient.kind is BounceKind.PERMANENT
    assert recipient.status == "5.1.1"
    # The "smtp;" type is dropped and the folded header is unfolded.
    assert recipient.diagnostic == (
        "550 5.1.1 <jdoe@agency.gov>: Recipient address rejected: "
        "User unknown in local recipient table"
    )


def test_postfix_user_unknown_counts_as_permanent() -> None:
    report = parse_bounce(load("postfix_user_unknown.eml"))
    assert [r.address for r in report.permanent()] == ["jdoe@agency.gov"]


def test_postfix_delay_notice_is_delayed_not_a_failure() -> None:
    report = parse_bounce(load("postfix_delayed.eml"))
    recipient = only(report)
    assert recipient.address == "mlopez@agency.gov"
    assert recipient.kind is BounceKind.DELAYED
    assert recipient.status == "4.4.1"
    assert recipient.diagnostic.startswith("connect to mx.agency.gov[192.0.2.30]:25")
    assert report.permanent() == ()


def test_sendmail_user_unknown_lowercases_only_the_domain() -> None:
    recipient = only(parse_bounce(load("sendmail_user_unknown.eml")))
    # Not X-Actual-Recipient (jsmith@mailhost.agency.gov): that is the alias target.
    assert recipient.address == "J.Smith@agency.gov"
    assert recipient.kind is BounceKind.PERMANENT
    assert recipient.status == "5.1.1"
    assert "User unknown" in recipient.diagnostic


def test_original_recipient_wins_over_alias_expanded_final_recipient() -> None:
    raw = load("postfix_user_unknown.eml").replace(
        b"Final-Recipient: rfc822; jdoe@agency.gov",
        b"Final-Recipient: rfc822; john.doe@MAIL.agency.gov",
    )
    recipient = only(parse_bounce(raw))
    assert (recipient.address, recipient.kind, recipient.status) == (
        "jdoe@agency.gov",
        BounceKind.PERMANENT,
        "5.1.1",
    )
    no_original = raw.replace(b"Original-Recipient: rfc822;jdoe@agency.gov\n", b"")
    assert only(parse_bounce(no_original)).address == "john.doe@mail.agency.gov"


def test_office365_ndr_with_html_part() -> None:
    recipient = only(parse_bounce(load("office365_ndr.eml")))
    assert recipient.address == "former.employee@agency.gov"
    assert recipient.kind is BounceKind.PERMANENT
    assert recipient.status == "5.1.10"
    assert recipient.diagnostic.startswith("550 5.1.10 RESOLVER.ADR.RecipientNotFound")


def test_office365_ndr_quoted_dmarc_header_does_not_make_it_policy() -> None:
    # The notice quotes "dmarc=pass" from the original's headers; only the diagnostic counts.
    report = parse_bounce(load("office365_ndr.eml"))
    assert [r.kind for r in report.recipients] == [BounceKind.PERMANENT]


def test_gmail_user_unknown_despite_auto_submitted_auto_replied() -> None:
    report = parse_bounce(load("gmail_user_unknown.eml"))
    recipient = only(report)
    assert recipient.address == "j.rivera@agency.gov"
    assert recipient.kind is BounceKind.PERMANENT
    assert recipient.status == "5.1.1"
    # The multi-line reply is joined without its repeated "550-5.1.1" prefixes.
    assert recipient.diagnostic.startswith(
        "550 5.1.1 The email account that you tried to reach does not exist. Please try "
        "double-checking the recipient's email address"
    )
    assert "550-5.1.1" not in recipient.diagnostic


def test_gmail_dmarc_rejection_is_policy() -> None:
    report = parse_bounce(load("gmail_dmarc_5726.eml"))
    recipient = only(report)
    assert recipient.address == "alex.kim@agency.gov"
    assert recipient.kind is BounceKind.POLICY
    assert recipient.status == "5.7.26"
    assert "DMARC policy" in recipient.diagnostic
    assert report.permanent() == ()


def test_yahoo_policy_rejection_is_policy() -> None:
    recipient = only(parse_bounce(load("yahoo_dmarc_policy.eml")))
    assert recipient.address == "Pat.Doe@yahoo.com"
    assert recipient.kind is BounceKind.POLICY
    assert recipient.status == "5.7.9"


def test_mailbox_full_reported_failed_is_temporary() -> None:
    report = parse_bounce(load("mailbox_full_422.eml"))
    recipient = only(report)
    assert recipient.address == "tbrown@agency.gov"
    assert recipient.kind is BounceKind.TEMPORARY
    assert recipient.status == "4.2.2"
    assert report.permanent() == ()


def test_multi_recipient_dsn() -> None:
    report = parse_bounce(load("multi_recipient.eml"))
    assert report.recognised and not report.is_auto_reply
    got = [(r.address, r.kind, r.status) for r in report.recipients]
    assert got == [
        ("bwhite@agency.gov", BounceKind.PERMANENT, "5.1.1"),
        # 5.7.x with no telling words: the status alone makes it policy.
        ("cjones@army.mil", BounceKind.POLICY, "5.7.1"),
        # No enhanced code from the remote, so Postfix says 5.0.0: the words decide.
        ("dlee@state.example.gov", BounceKind.POLICY, "5.0.0"),
        ("ewilson@county.example.gov", BounceKind.POLICY, "5.7.509"),
    ]
    assert [r.address for r in report.permanent()] == ["bwhite@agency.gov"]


def test_success_only_dsn_is_recognised_with_no_recipients() -> None:
    raw = load("postfix_user_unknown.eml").replace(b"Action: failed", b"Action: relayed")
    report = parse_bounce(raw)
    assert report.recognised
    assert report.recipients == ()


def test_delivery_status_block_without_action_falls_back_on_status_class() -> None:
    raw = load("mailbox_full_422.eml").replace(b"Action: failed\n", b"")
    recipient = only(parse_bounce(raw))
    assert (recipient.address, recipient.kind, recipient.status) == (
        "tbrown@agency.gov",
        BounceKind.TEMPORARY,
        "4.2.2",
    )


def test_opensmtpd_action_error_counts_as_failed() -> None:
    raw = load("postfix_user_unknown.eml").replace(b"Action: failed", b"Action: error")
    recipient = only(parse_bounce(raw))
    assert (recipient.kind, recipient.status) == (BounceKind.PERMANENT, "5.1.1")


def test_delivery_status_without_diagnostic_takes_the_notice_line() -> None:
    raw = load("postfix_user_unknown.eml")
    start = raw.index(b"Diagnostic-Code:")
    end = raw.index(b"\n\n", start)
    recipient = only(parse_bounce(raw[:start] + raw[end + 1 :]))
    assert recipient.status == "5.1.1"
    assert recipient.diagnostic.startswith("<jdoe@agency.gov>: host mx1.agency.gov[192.0.2.25]")
    assert "User unknown in local recipient table" in recipient.diagnostic


# --- non-DSN formats, through flufl.bounce ------------------------------------------------------


def test_exim_plain_text_bounce() -> None:
    report = parse_bounce(load("exim_failed.eml"))
    recipient = only(report)
    assert recipient.address == "rgreen@example.gov"
    assert recipient.kind is BounceKind.PERMANENT
    assert recipient.status == "5.1.1"
    assert recipient.diagnostic == (
        "550 5.1.1 <rgreen@example.gov>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )


def test_exim_bounce_with_4xx_final_failure_is_temporary() -> None:
    raw = load("exim_failed.eml").replace(
        b"550 5.1.1 <rgreen@example.gov>: Recipient address rejected: "
        b"User unknown in virtual mailbox table",
        b"452 4.2.2 <rgreen@example.gov>: Mailbox full",
    )
    recipient = only(parse_bounce(raw))
    assert (recipient.address, recipient.kind, recipient.status) == (
        "rgreen@example.gov",
        BounceKind.TEMPORARY,
        "4.2.2",
    )


def test_exim_bounce_with_policy_rejection_is_policy() -> None:
    raw = load("exim_failed.eml").replace(
        b"550 5.1.1 <rgreen@example.gov>: Recipient address rejected: "
        b"User unknown in virtual mailbox table",
        b"550 Message rejected as spam by Content Filtering",
    )
    recipient = only(parse_bounce(raw))
    assert (recipient.address, recipient.kind, recipient.status) == (
        "rgreen@example.gov",
        BounceKind.POLICY,
        None,
    )


def test_qmail_bounce() -> None:
    recipient = only(parse_bounce(load("qmail_failure.eml")))
    assert recipient.address == "kpatel@example.gov"
    assert recipient.kind is BounceKind.PERMANENT
    assert recipient.status == "5.1.1"
    assert "550 5.1.1" in recipient.diagnostic


def test_bounce_quoted_inside_returned_message_is_not_read() -> None:
    # A list post that quotes a bounce, returned by a server whose notice flufl cannot read:
    # only the returned original (message/rfc822) mentions a failed address.
    quoted = load("qmail_failure.eml").split(b"\n\n", 1)[1]
    raw = (
        b"From: Mail Delivery System <postmaster@odd.example.gov>\n"
        b"To: sm-cop-bounces@lists.example.gov\n"
        b"Subject: Your message\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nSomething went wrong.\n"
        b"--b\nContent-Type: message/rfc822\n\n"
        b"From: someone@agency.gov\nSubject: why did I get this?\n\n" + quoted + b"\n--b--\n"
    )
    report = parse_bounce(raw)
    assert not report.recognised
    assert report.recipients == ()


def test_non_dsn_delay_warning_is_delayed() -> None:
    # flufl reports warnings as "temporary"; they are delay notices, not failures.
    raw = (
        b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\n"
        b"To: sm-cop-bounces+jdoe=agency.gov@lists.example.gov\n"
        b"Subject: Delivery Status Notification (Delay)\n\n"
        b"This is an automatically generated Delivery Status Notification\n\n"
        b"THIS IS A WARNING MESSAGE ONLY.\n\nYOU DO NOT NEED TO RESEND YOUR MESSAGE.\n\n"
        b"Delivery to the following recipient has been delayed:\n\n"
        b"     jdoe@agency.gov\n\n"
        b"Message will be retried for 2 more day(s)\n\n"
        b"Technical details of temporary failure:\n"
        b"The recipient server did not accept our requests to connect.\n"
    )
    report = parse_bounce(raw)
    recipient = only(report)
    assert (recipient.address, recipient.kind, recipient.status) == (
        "jdoe@agency.gov",
        BounceKind.DELAYED,
        None,
    )
    assert report.permanent() == ()


def test_flufl_failure_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(msg: object) -> object:
        raise IndexError("detector bug")

    monkeypatch.setattr(listserv.dsn.heuristics, "all_failures", explode)
    report = parse_bounce(load("exim_failed.eml"))
    assert report == BounceReport(recipients=(), is_auto_reply=False, recognised=False)


def test_message_without_from_still_reaches_later_flufl_detectors() -> None:
    # flufl's Yale detector raises IndexError on a From-less single-part message, which would
    # stop the qmail detector after it from ever running.
    raw = load("qmail_failure.eml").replace(b"From: MAILER-DAEMON@mx.example.gov\n", b"", 1)
    recipient = only(parse_bounce(raw))
    assert (recipient.address, recipient.kind, recipient.status) == (
        "kpatel@example.gov",
        BounceKind.PERMANENT,
        "5.1.1",
    )


# --- auto-replies -------------------------------------------------------------------------------


def test_vacation_auto_reply() -> None:
    report = parse_bounce(load("vacation_autoreply.eml"))
    assert report.is_auto_reply
    assert report.recognised
    assert report.recipients == ()


def test_exchange_automatic_reply_by_subject() -> None:
    # Exchange marks its out-of-office replies only auto-generated, like a DSN; the subject tells.
    report = parse_bounce(load("exchange_automatic_reply.eml"))
    assert report.is_auto_reply
    assert report.recipients == ()


@pytest.mark.parametrize(
    "headers",
    [
        b"Auto-Submitted: auto-replied\n",
        b"X-Autoreply: yes\n",
        b"Precedence: auto_reply\n",
        b"Subject: Out of Office: [SM-COP] agenda\n",
        b"Subject: =?utf-8?q?R=C3=A9ponse_automatique=C2=A0=3A_=5BSM-COP=5D?=\n",
    ],
)
def test_auto_reply_signals(headers: bytes) -> None:
    raw = b"From: Kim Lee <kim.lee@agency.gov>\nTo: sm-cop-bounces@lists.example.gov\n"
    raw += headers + b"\nI am away until Monday.\n"
    assert parse_bounce(raw).is_auto_reply


def test_auto_generated_alone_is_not_an_auto_reply() -> None:
    raw = (
        b"From: Notifications <noreply@agency.gov>\nTo: sm-cop-bounces@lists.example.gov\n"
        b"Auto-Submitted: auto-generated\nSubject: Your password expires soon\n\nReset it.\n"
    )
    report = parse_bounce(raw)
    assert not report.is_auto_reply
    assert not report.recognised


def test_undeliverable_subject_mentioning_out_of_office_is_not_an_auto_reply() -> None:
    raw = load("exim_failed.eml").replace(
        b"Subject: Mail delivery failed: returning message to sender",
        b"Subject: Undeliverable: Out of Office etiquette",
    )
    report = parse_bounce(raw)
    assert not report.is_auto_reply
    assert [r.address for r in report.permanent()] == ["rgreen@example.gov"]


def test_read_receipt_is_discarded_as_auto_reply() -> None:
    raw = (
        b"From: Kim Lee <kim.lee@agency.gov>\nTo: sm-cop-bounces@lists.example.gov\n"
        b"Subject: Read: [SM-COP] agenda\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="r"\n\n'
        b"--r\nContent-Type: text/plain\n\nYour message was read.\n"
        b"--r\nContent-Type: message/disposition-notification\n\n"
        b"Final-Recipient: rfc822; kim.lee@agency.gov\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\n--r--\n"
    )
    assert parse_bounce(raw).is_auto_reply


# --- rubbish in, no exception out ---------------------------------------------------------------


def test_garbage_bytes() -> None:
    report = parse_bounce(load("garbage.bin"))
    assert report == BounceReport(recipients=(), is_auto_reply=False, recognised=False)


def test_truncated_multipart_report() -> None:
    report = parse_bounce(load("truncated_report.eml"))
    assert report == BounceReport(recipients=(), is_auto_reply=False, recognised=False)


def truncated_in_delivery_status(raw: bytes) -> bytes:
    return raw[: raw.index(b"Final-Recipient:") + len(b"Final-Recipient: rfc8")]


def test_report_truncated_inside_delivery_status_is_kept_for_the_owner() -> None:
    # The notice arrived whole, but flufl's Postfix detector only knows the pre-2.3 wording
    # ("The Postfix program"), not today's "The mail system": nothing can be trusted here.
    report = parse_bounce(truncated_in_delivery_status(load("postfix_user_unknown.eml")))
    assert report == BounceReport(recipients=(), is_auto_reply=False, recognised=False)


def test_report_truncated_inside_delivery_status_read_from_classic_notice() -> None:
    raw = load("postfix_user_unknown.eml").replace(
        b"                   The mail system", b"                   The Postfix program"
    )
    recipient = only(parse_bounce(truncated_in_delivery_status(raw)))
    assert (recipient.address, recipient.kind, recipient.status) == (
        "jdoe@agency.gov",
        BounceKind.PERMANENT,
        "5.1.1",
    )
    assert "User unknown in local recipient table" in recipient.diagnostic


@pytest.mark.parametrize("raw", [b"", b"\n", b"\r\n\r\n", b"From:\n\n", b"\xff" * 64])
def test_degenerate_input(raw: bytes) -> None:
    assert not parse_bounce(raw).recognised


def test_non_bytes_input_does_not_raise() -> None:
    assert not parse_bounce("not bytes").recognised  # type: ignore[arg-type]


def test_every_truncation_and_corruption_of_every_sample_parses() -> None:
    rng = random.Random(3464)
    for path in sorted(BOUNCES.iterdir()):
        raw = path.read_bytes()
        variants = [raw[:cut] for cut in range(0, len(raw), 53)]
        variants += [raw[cut:] for cut in range(0, len(raw), 97)]
        for _ in range(40):
            damaged = bytearray(raw)
            for _ in range(rng.randint(1, 25)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            variants.append(bytes(damaged))
        for variant in variants:
            # The internal function, so an exception fails the test instead of being swallowed.
            report = listserv.dsn._parse_bounce(variant)
            assert isinstance(report, BounceReport), path.name


# --- SMTP replies during our own delivery -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (250, "2.1.5 Ok", None),
        (251, "User not local; will forward", None),
        (550, "5.1.1 <jdoe@agency.gov>: Recipient address rejected: User unknown", "permanent"),
        (552, "5.2.2 Mailbox full", "permanent"),
        (550, "5.1.1 <jdoe@agency.gov> User unknown (spamgw.agency.gov)", "permanent"),
        (550, "5.7.1 Relaying denied", "policy"),
        (550, "5.7.26 Unauthenticated email from lists.example.gov is not accepted", "policy"),
        (550, "550 5.7.509 Access denied, sending domain does not pass DMARC", "policy"),
        (554, "Service unavailable; Client host [192.0.2.11] blocked using Spamhaus", "policy"),
        (554, "Message rejected due to content restrictions: message content rejected", "policy"),
        (550, "Your IP has a poor reputation", "policy"),
        (550, "DKIM signature invalid", "policy"),
        (421, "4.7.0 Try again later, closing connection", "temporary"),
        (450, "4.2.0 Mailbox busy", "temporary"),
        (452, "4.2.2 The email account that you tried to reach is over quota", "temporary"),
        (354, "Start mail input", "temporary"),
    ],
)
def test_classify_smtp_reply(code: int, message: str, expected: str | None) -> None:
    kind = classify_smtp_reply(code, message)
    assert (kind.value if kind else None) == expected
