# SPDX-License-Identifier: Apache-2.0
"""Addresses as stored and mailed, what trusted Authentication-Results prove, and their settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from listserv.config import ConfigError
from listserv.mailbox import canonical_address, canonical_domain, undeliverable
from listserv.sender_auth import passed_domains
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("address", "stored"),
    [
        ("x6@agency．gov", "x6@agency.gov"),  # full-width full stop
        ("x@AGENCY。gov", "x@agency.gov"),  # ideographic full stop
        ("Jane@ａｇｅｎｃｙ.gov", "Jane@agency.gov"),  # full-width letters; local part kept
        ("jane@bücher.de", "jane@xn--bcher-kva.de"),
        ("jane@agency.gov.", "jane@agency.gov"),
        ("<jane@agency.gov>", "jane@agency.gov"),
    ],
)
def test_domains_are_folded_nfkc_then_idna_2008(address: str, stored: str) -> None:
    assert canonical_address(address) == stored


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("x14@[127.0.0.1]", "ip-literal"),
        ("x@127.0.0.1", "ip-literal"),
        ("evil.com!x13@agency.gov", "bang-path"),
        ("x12%agency.gov@evil.com", "percent-routing"),
        ('"x1@agency.gov"@evil.com', "quoted-at-sign"),
        ("x" * 65 + "@agency.gov", "local-part-too-long"),
        ("é" * 33 + "@agency.gov", "local-part-too-long"),  # 66 octets in UTF-8
        ("jane@localhost", "bad-domain"),
        ("jane@-bad-.gov", "bad-domain"),
        ("jane", "no-domain"),
        ("ja ne@agency.gov", "control-character"),
    ],
)
def test_addresses_that_cannot_be_real_recipients(address: str, why: str) -> None:
    assert undeliverable(address) == why


@pytest.mark.parametrize(
    "address", ["jane@agency.gov", "x" * 64 + "@agency.gov", "jürgen@agency.gov", '"j d"@a.gov']
)
def test_real_recipients_pass(address: str) -> None:
    assert undeliverable(address) is None


def test_canonical_domain_refuses_what_idna_refuses() -> None:
    with pytest.raises(ValueError):
        canonical_domain("xn--zz.gov\u200d")


def test_only_results_from_our_authserv_id_count() -> None:
    values = [
        "mx.lists.example.gov; spf=pass smtp.mailfrom=b@Evil.COM; dkim=fail header.d=x.gov",
        "mx.evil.com; dkim=pass header.d=agency.gov",
        "mx.lists.example.gov; dmarc=pass header.from=Agency.gov",
        "not a header at all ;;; ===",
    ]
    assert passed_domains(values, "MX.lists.example.gov") == {"evil.com", "agency.gov"}


def test_a_bad_metrics_network_is_a_config_error(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_settings(sqlite_url, tmp_path / "var", web={"metrics_from": ["not a net"]})
    assert "web.metrics_from" in str(error.value)
    settings = make_settings(sqlite_url, tmp_path / "var", web={"metrics_from": ["10.0.0.0/8"]})
    assert settings.web.metrics_from == ("10.0.0.0/8",)


def test_limits_may_be_turned_off_but_not_made_negative(tmp_path: Path, sqlite_url: str) -> None:
    off = make_settings(sqlite_url, tmp_path / "var", limits={"smtp_connections_per_client": 0})
    assert off.limits.smtp_connections_per_client == 0
    with pytest.raises(ConfigError) as error:
        make_settings(sqlite_url, tmp_path / "var", limits={"smtp_recipients_per_message": 0})
    assert "limits.smtp_recipients_per_message" in str(error.value)
