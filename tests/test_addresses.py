# SPDX-License-Identifier: Apache-2.0
"""Which list and role an address names; VERP round trips."""

from __future__ import annotations

import doctest

import pytest

import listserv.addresses
from listserv.addresses import Destination, parse_recipient, verp_decode, verp_encode

DOMAINS = ("lists.example.gov", "vanity.example.gov")


def test_doctests() -> None:
    assert doctest.testmod(listserv.addresses).failed == 0


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("sm-cop@lists.example.gov", ("sm-cop", Destination.POST, "")),
        ("SM-COP@LISTS.EXAMPLE.GOV", ("sm-cop", Destination.POST, "")),
        ("sm-cop-request@lists.example.gov", ("sm-cop", Destination.REQUEST, "")),
        ("sm-cop-subscribe-request@lists.example.gov", ("sm-cop", Destination.JOIN, "")),
        ("sm-cop-join@lists.example.gov", ("sm-cop", Destination.JOIN, "")),
        ("sm-cop-unsubscribe-request@lists.example.gov", ("sm-cop", Destination.LEAVE, "")),
        ("sm-cop-signoff-request@lists.example.gov", ("sm-cop", Destination.LEAVE, "")),
        ("sm-cop-leave@lists.example.gov", ("sm-cop", Destination.LEAVE, "")),
        ("sm-cop-owner@vanity.example.gov", ("sm-cop", Destination.OWNER, "")),
        ("sm-cop-bounces@lists.example.gov", ("sm-cop", Destination.BOUNCES, "")),
        (
            "sm-cop-bounces+jane=agency.gov@lists.example.gov",
            ("sm-cop", Destination.BOUNCES, "jane=agency.gov"),
        ),
        ("sm-cop-confirm+abc123@lists.example.gov", ("sm-cop", Destination.CONFIRM, "abc123")),
        ("<listserv@lists.example.gov>", ("", Destination.SITE, "")),
        ("LISTSERV@lists.example.gov.", ("", Destination.SITE, "")),
    ],
)
def test_list_addresses(address: str, expected: tuple[str, Destination, str]) -> None:
    recipient = parse_recipient(address, DOMAINS, "listserv")
    assert recipient is not None
    assert (recipient.list_name, recipient.destination, recipient.extension) == expected


@pytest.mark.parametrize(
    "address",
    [
        "sm-cop@other.example.gov",
        "sm-cop-request+x@lists.example.gov",  # extensions only where they mean something
        "sm-cop-confirm@lists.example.gov",  # a confirm address needs its token
        "listserv+x@lists.example.gov",
        "-request@lists.example.gov",
        "sm cop@lists.example.gov",
        "sm-cop\r\n@lists.example.gov",
        "@lists.example.gov",
        "no-at-sign",
    ],
)
def test_not_our_addresses(address: str) -> None:
    assert parse_recipient(address, DOMAINS, "listserv") is None


def test_verp_round_trip() -> None:
    bounce = verp_encode("sm-cop", "Jane.Doe@Agency.GOV", "lists.example.gov")
    assert bounce == "sm-cop-bounces+Jane.Doe=agency.gov@lists.example.gov"
    recipient = parse_recipient(bounce, DOMAINS, "listserv")
    assert recipient is not None and recipient.destination == Destination.BOUNCES
    assert verp_decode(recipient.extension) == "Jane.Doe@agency.gov"


@pytest.mark.parametrize("extension", ["", "jane", "=agency.gov", "jane=", "jane=localhost"])
def test_verp_decode_refuses_junk(extension: str) -> None:
    assert verp_decode(extension) is None
