# SPDX-License-Identifier: Apache-2.0
"""Delivered copies of every post shape carry RSA and Ed25519 signatures that verify.

Each shape the footer tests decorate is posted, decorated as fan-out decorates it,
delivered by the running service to an SMTP relay on loopback, and each copy the
relay received is verified with dkimpy against keys this test made. The per-post
shortcut (`PostSignatures`) and the whole-message path must agree with dkimpy too.
"""

from __future__ import annotations

import re
from pathlib import Path

import dkim
import pytest

from listserv.app import Service, build_service
from listserv.decorate import ListIdentity, decorate_post, personalize
from listserv.delivery.wire import canonical
from listserv.signing import Signer
from tests.conftest import make_settings, wait_for
from tests.dkim_keys import SELECTOR, dns_for
from tests.mime_shapes import shapes
from tests.relay_helpers import (
    DOMAIN,
    LIST,
    ScriptedRelay,
    add_members,
    enqueue_post,
    shared_copy,
    smtp_delivery,
)

FOOTER = "List communications are subject to release under FOIA."
FOOTER_HTML = "<p>List communications are subject to release under FOIA.</p>"
COVERED = ("from", "list-id", "list-unsubscribe", "list-unsubscribe-post")


def identity(mitigation: str) -> ListIdentity:
    return ListIdentity(
        LIST,
        "SM-COP",
        DOMAIN,
        "[SM-COP]",
        mitigation,
        "reply-to",
        "https://lists.example.gov/lists/sm-cop",
    )


def signature_tags(message: bytes) -> list[dict[str, str]]:
    """The tags of each DKIM-Signature, in order, whitespace removed."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields = re.findall(r"^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head, re.M | re.I)
    found = []
    for value in fields:
        flat = re.sub(r"\s+", "", value)
        found.append(dict(tag.split("=", 1) for tag in flat.split(";") if "=" in tag))
    return found


def verify_both(message: bytes, records: tuple[bytes, bytes], what: str) -> None:
    tags = signature_tags(message)
    assert [t["a"] for t in tags] == ["rsa-sha256", "ed25519-sha256"], what
    dns = dns_for(*records)
    for index, tag in enumerate(tags):
        assert dkim.DKIM(message).verify(idx=index, dnsfunc=dns), (what, tag["a"])
        covered = tag["h"].lower().split(":")
        assert all(name in covered for name in COVERED), (what, covered)
        assert tag["d"] == DOMAIN


@pytest.mark.parametrize("mitigation", ["munge", "wrap"])
async def test_every_shape_arrives_with_signatures_that_verify(
    mitigation: str,
    key_pair: tuple[Path, bytes],
    ed25519_pair: tuple[Path, bytes],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    relay = ScriptedRelay()
    await relay.start()
    settings = make_settings(
        sqlite_url,
        tmp_path / "var",
        delivery=smtp_delivery(relay),
        dkim={
            "selector": SELECTOR,
            "private_key_file": str(key_pair[0]),
            "ed25519_key_file": str(ed25519_pair[0]),
        },
    )
    posts = shapes()
    service: Service = build_service(settings)
    await service.start()
    try:
        add_members(service.factory, ["jane@agency.gov", "bob@army.mil"])
        for raw in posts.values():
            decorated = decorate_post(raw, identity(mitigation), FOOTER, FOOTER_HTML)
            enqueue_post(service.factory, settings, raw=decorated)
        # One bulk job too: a copy signed once for all its recipients.
        enqueue_post(service.factory, settings, raw=decorated, personalized=False)
        service.outbox_ready.set()
        expected = 2 * len(posts) + 1
        await wait_for(lambda: len(relay.transactions) >= expected, timeout=60)
    finally:
        await service.stop()
        await relay.stop()
    assert len(relay.transactions) == expected
    records = (key_pair[1], ed25519_pair[1])
    personal = 0
    for transaction in relay.transactions:
        subject = re.search(rb"^Subject:[^\r\n]*", transaction.data, re.M | re.I)
        what = f"{mitigation} {subject.group(0) if subject else b''!r} {transaction.rcpt_tos}"
        verify_both(transaction.data, records, what)
        personal += b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in transaction.data
    assert personal == 2 * len(posts)


def test_the_per_post_shortcut_and_the_whole_message_both_verify(
    key_pair: tuple[Path, bytes], ed25519_pair: tuple[Path, bytes]
) -> None:
    signer = Signer(
        SELECTOR,
        key_pair[0].read_bytes(),
        DOMAIN,
        DOMAIN,
        ed25519_key=ed25519_pair[0].read_bytes(),
    )
    records = (key_pair[1], ed25519_pair[1])
    shared = canonical(shared_copy())
    prepared = signer.prepare(shared, DOMAIN)
    copies = [personalize(shared, f"https://x.gov/unsubscribe/sm-cop/{i}.tok") for i in range(3)]
    signed = [prepared.sign(copy) for copy in copies]
    for copy, message in zip(copies, signed, strict=True):
        assert message.endswith(copy)
        verify_both(message, records, "prepared")
    # Each signature is the member's own: another member's headers do not verify.
    swapped = signed[0].replace(b"/sm-cop/0.tok", b"/sm-cop/1.tok")
    assert not dkim.DKIM(swapped).verify(idx=0, dnsfunc=dns_for(*records))
    assert not dkim.DKIM(swapped).verify(idx=1, dnsfunc=dns_for(*records))
    # A second From or List-Unsubscribe added on the way breaks both signatures.
    top = signed[0].index(b"\r\nFrom:") + 2
    for added in (
        b"From: Someone Else <ceo@agency.gov>\r\n",
        b"List-Unsubscribe: <https://evil.example/>\r\n",
    ):
        tampered = signed[0][:top] + added + signed[0][top:]
        assert not dkim.DKIM(tampered).verify(idx=0, dnsfunc=dns_for(*records))
        assert not dkim.DKIM(tampered).verify(idx=1, dnsfunc=dns_for(*records))
    # A copy that is not the shared one plus headers (here: another body) is signed whole.
    other = copies[0].replace(b"See you on Thursday.", b"See you on Friday.")
    verify_both(prepared.sign(other), records, "fallback")
    # A message with LF line ends is signed whole, its signature headers with LF too.
    lf = copies[1].replace(b"\r\n", b"\n")
    signed_lf = signer.sign(lf, DOMAIN)
    assert b"\r\n" not in signed_lf
    verify_both(canonical(signed_lf), records, "lf")
    # Every line of the signature headers fits in 78 columns.
    head = signed[2][: len(signed[2]) - len(copies[2])]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
