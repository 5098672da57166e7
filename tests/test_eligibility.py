# SPDX-License-Identifier: Apache-2.0
"""Eligibility: which addresses and From headers may join a .gov/.mil list."""

from __future__ import annotations

import pytest

from listserv.eligibility import (
    EligibilityRule,
    Eligible,
    Ineligible,
    InvalidAddress,
    check_address,
    check_from_header,
    describe_rule,
    normalise_address,
)

GOV_MIL = EligibilityRule(suffixes=("gov", "mil"))
WITH_EXTRAS = EligibilityRule(
    suffixes=("gov", "mil"),
    allowed_addresses=("Liaison@Partner.ORG",),
    allowed_domains=("Contractor.COM",),
)

CYRILLIC_O = "\u043e"  # looks like Latin "o"
CYRILLIC_A = "\u0430"  # looks like Latin "a"


@pytest.mark.parametrize(
    ("address", "rule", "expected"),
    [
        # accepted: (normalised address, ASCII domain)
        ("jane@agency.gov", GOV_MIL, ("jane@agency.gov", "agency.gov")),
        ("jane@cdc.hhs.gov", GOV_MIL, ("jane@cdc.hhs.gov", "cdc.hhs.gov")),
        ("x@army.mil", GOV_MIL, ("x@army.mil", "army.mil")),
        ("sgt.smith@mail.army.mil", GOV_MIL, ("sgt.smith@mail.army.mil", "mail.army.mil")),
        ("JANE@AGENCY.GOV", GOV_MIL, ("jane@agency.gov", "agency.gov")),
        ("clerk@cityofboston.gov", GOV_MIL, ("clerk@cityofboston.gov", "cityofboston.gov")),
        ("a@dot.ny.gov", GOV_MIL, ("a@dot.ny.gov", "dot.ny.gov")),
        ("jane@agency.gov.", GOV_MIL, ("jane@agency.gov", "agency.gov")),
        ("  jane@agency.gov  ", GOV_MIL, ("jane@agency.gov", "agency.gov")),
        # full-width letters are a Unicode spelling of plain ASCII, not a homoglyph
        (
            "jane@\uff21\uff27\uff25\uff2e\uff23\uff39.gov",
            GOV_MIL,
            ("jane@agency.gov", "agency.gov"),
        ),
        ("j\u00f6rg@agency.gov", GOV_MIL, ("j\u00f6rg@agency.gov", "agency.gov")),
        ("Liaison@partner.org", WITH_EXTRAS, ("liaison@partner.org", "partner.org")),
        ("pm@contractor.com", WITH_EXTRAS, ("pm@contractor.com", "contractor.com")),
        ("pm@east.contractor.com", WITH_EXTRAS, ("pm@east.contractor.com", "east.contractor.com")),
        ("x@agency.gov", WITH_EXTRAS, ("x@agency.gov", "agency.gov")),
        ("x@fs.fed.us", EligibilityRule(("fed.us",)), ("x@fs.fed.us", "fs.fed.us")),
        ("x@agency.gov", EligibilityRule((".GOV",)), ("x@agency.gov", "agency.gov")),
        # refused: code
        ("user@agency.gov.evil.com", GOV_MIL, "domain-not-eligible"),
        ("user@evilgov.com", GOV_MIL, "domain-not-eligible"),
        ("user@gov.com", GOV_MIL, "domain-not-eligible"),
        ("user@agencygov", GOV_MIL, "invalid-address"),
        ("bob@gmail.com", GOV_MIL, "domain-not-eligible"),
        ("other@partner.org", WITH_EXTRAS, "domain-not-eligible"),
        ("pm@evilcontractor.com", WITH_EXTRAS, "domain-not-eligible"),
        ("pm@contractor.com", GOV_MIL, "domain-not-eligible"),
        (f"jane@agency.g{CYRILLIC_O}v", GOV_MIL, "non-ascii-domain"),
        # IDNA of this one is xn--gency-3ve.gov, which does end in .gov
        (f"jane@{CYRILLIC_A}gency.gov", GOV_MIL, "non-ascii-domain"),
        ("jane@xn--gency-3ve.gov", GOV_MIL, "non-ascii-domain"),
        ("user@[192.0.2.1]", GOV_MIL, "ip-literal"),
        ("user@[IPv6:2001:db8::1]", GOV_MIL, "ip-literal"),
        ("user@192.0.2.1", GOV_MIL, "invalid-address"),
        ('"user@agency.gov"@evil.com', GOV_MIL, "quoted-local-part"),
        ('"jane"@agency.gov', GOV_MIL, "quoted-local-part"),
        ("jane@agency.gov\r\nBcc: x@evil.com", GOV_MIL, "control-character"),
        ("jane\n@agency.gov", GOV_MIL, "control-character"),
        ("jane@agency.gov\x00", GOV_MIL, "control-character"),
        ("", GOV_MIL, "empty-address"),
        ("   ", GOV_MIL, "empty-address"),
        ("a@agency.gov, b@army.mil", GOV_MIL, "multiple-addresses"),
        ("a@agency.gov; b@army.mil", GOV_MIL, "multiple-addresses"),
        ("jane", GOV_MIL, "invalid-address"),
        ("Jane <jane@agency.gov>", GOV_MIL, "invalid-address"),
        ("jane@agency.gov..", GOV_MIL, "invalid-address"),
        ("jane@@agency.gov", GOV_MIL, "invalid-address"),
        ("jane@-agency.gov", GOV_MIL, "invalid-address"),
    ],
)
def test_check_address(address: str, rule: EligibilityRule, expected: object) -> None:
    result = check_address(address, rule, "SM-COP")
    if isinstance(expected, tuple):
        assert result == Eligible(address=expected[0], domain=expected[1])
    else:
        assert isinstance(result, Ineligible), result
        assert result.code == expected
        assert result.reason.endswith(".")
        assert "\r" not in result.reason and "\n" not in result.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jane Doe <jane@agency.gov>", ("jane@agency.gov", "agency.gov")),
        ('"Doe, Jane" <Jane@Agency.Gov>', ("jane@agency.gov", "agency.gov")),
        ("Jane Q. Doe <jane@agency.gov>", ("jane@agency.gov", "agency.gov")),
        ("jane@agency.gov (Jane Doe)", ("jane@agency.gov", "agency.gov")),
        ("jane@agency.gov", ("jane@agency.gov", "agency.gov")),
        ("Jane Doe\r\n <jane@agency.gov>", ("jane@agency.gov", "agency.gov")),
        ("=?utf-8?q?J=C3=B6rg?= <jorg@army.mil>", ("jorg@army.mil", "army.mil")),
        ('"jane@agency.gov" <jane@agency.gov>', ("jane@agency.gov", "agency.gov")),
        ('"jane@AGENCY.gov." <jane@agency.gov>', ("jane@agency.gov", "agency.gov")),
        ('"Jane@DHS" <jane@dhs.gov>', ("jane@dhs.gov", "dhs.gov")),  # not address-like
        ('"Jane Doe @SocialGov" <jane@agency.gov>', ("jane@agency.gov", "agency.gov")),
        ("Jane@DHS <jane@dhs.gov>", "malformed-from"),  # unquoted @ in a phrase
        ('"boss@agency.gov" <x@evil.com>', "display-name-mismatch"),
        ('"boss@agency.gov" <x@other.gov>', "display-name-mismatch"),
        ('"Boss (boss@agency.gov)" <x@evil.com>', "display-name-mismatch"),
        ("=?utf-8?q?boss=40agency.gov?= <x@evil.com>", "display-name-mismatch"),
        ('"boss\uff20agency.gov" <x@evil.com>', "display-name-mismatch"),
        ("Jane <jane@agency.gov>, Bob <bob@army.mil>", "multiple-addresses"),
        ("jane@agency.gov, x@evil.com", "multiple-addresses"),
        ("x@evil.com <jane@agency.gov>", "malformed-from"),
        ("<jane@agency.gov> <x@evil.com>", "malformed-from"),
        ("alice@evil.com)<jane@agency.gov>", "malformed-from"),
        ("Jane <jane@agency.gov", "malformed-from"),
        (":.);a;>,== ", "malformed-from"),  # the stdlib parser raises on this one
        (',"', "malformed-from"),
        ("jane@agency.gov\r\nBcc: x@evil.com", "control-character"),
        ("undisclosed-recipients:;", "invalid-address"),
        ("", "empty-address"),
        ('"user@agency.gov"@evil.com', "quoted-local-part"),
        ("Jane <user@[192.0.2.1]>", "ip-literal"),
        ("Bob <bob@gmail.com>", "domain-not-eligible"),
        (f"Jane <jane@agency.g{CYRILLIC_O}v>", "non-ascii-domain"),
    ],
)
def test_check_from_header(value: str, expected: object) -> None:
    result = check_from_header(value, GOV_MIL, "SM-COP")
    if isinstance(expected, tuple):
        assert result == Eligible(address=expected[0], domain=expected[1])
    else:
        assert isinstance(result, Ineligible), result
        assert result.code == expected
        assert "\r" not in result.reason and "\n" not in result.reason


def test_refusal_reason_names_rule_list_and_address() -> None:
    result = check_address("bob@gmail.com", GOV_MIL, "SM-COP")
    assert result == Ineligible(
        code="domain-not-eligible",
        reason=(
            "Only addresses at .gov or .mil domains (including subdomains such as "
            "agency.gov) may join SM-COP; bob@gmail.com is not one."
        ),
    )


def test_default_list_label() -> None:
    result = check_address("bob@gmail.com", GOV_MIL)
    assert isinstance(result, Ineligible)
    assert "may join this list;" in result.reason


def test_non_ascii_domain_can_be_allowed_explicitly() -> None:
    rule = EligibilityRule(suffixes=("gov",), allowed_domains=("b\u00fccher.example",))
    assert check_address("x@B\u00fccher.example", rule) == Eligible(
        address="x@xn--bcher-kva.example", domain="xn--bcher-kva.example"
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (GOV_MIL, "addresses at .gov or .mil domains (including subdomains such as agency.gov)"),
        (
            EligibilityRule(("gov",)),
            "addresses at .gov domains (including subdomains such as agency.gov)",
        ),
        (
            EligibilityRule(("gov", "mil", "fed.us")),
            "addresses at .gov, .mil or .fed.us domains (including subdomains such as agency.gov)",
        ),
        (
            WITH_EXTRAS,
            "addresses at .gov or .mil domains (including subdomains such as agency.gov), "
            "addresses at contractor.com (or its subdomains) and the address liaison@partner.org",
        ),
        (
            EligibilityRule((), allowed_addresses=("a@x.org", "b@y.org")),
            "the addresses a@x.org and b@y.org",
        ),
        (
            EligibilityRule((), allowed_domains=("x.org", "y.org")),
            "addresses at x.org or y.org (or their subdomains)",
        ),
        (EligibilityRule(()), "no addresses (this list's eligibility rule names none)"),
    ],
)
def test_describe_rule(rule: EligibilityRule, expected: str) -> None:
    assert describe_rule(rule) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Jane.Doe@Agency.GOV", "jane.doe@agency.gov"),
        ("  jane@agency.gov. ", "jane@agency.gov"),
        ("jane@agency\u3002gov", "jane@agency.gov"),  # ideographic full stop
        ("J\u00d6RG@agency.gov", "j\u00f6rg@agency.gov"),
        ("jo\u0308rg@agency.gov", "j\u00f6rg@agency.gov"),  # NFC
        ("x@B\u00fccher.example", "x@xn--bcher-kva.example"),
        ("x@gmail.com", "x@gmail.com"),  # normalising is not judging eligibility
    ],
)
def test_normalise_address(address: str, expected: str) -> None:
    assert normalise_address(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "",
        "jane",
        "jane@agency",
        "jane@agency.gov\r\n",
        '"jane"@agency.gov',
        "jane@[192.0.2.1]",
        "Jane <jane@agency.gov>",
        "a@agency.gov, b@agency.gov",
        "jane@agency.gov..",
    ],
)
def test_normalise_address_refuses(address: str) -> None:
    with pytest.raises(InvalidAddress) as excinfo:
        normalise_address(address)
    assert str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_results_are_frozen() -> None:
    result = check_address("jane@agency.gov", GOV_MIL)
    with pytest.raises(AttributeError):
        result.address = "x@evil.com"  # type: ignore[misc,union-attr]
