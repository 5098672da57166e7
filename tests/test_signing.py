# SPDX-License-Identifier: Apache-2.0
"""DKIM signatures and ARC seals, verified with dkimpy against a key the test makes."""

from __future__ import annotations

import email.policy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dkim
import pytest

from listserv.app import Service, build_service
from listserv.config import ConfigError, Settings
from listserv.decorate import ListIdentity, decorate_post, personalize
from listserv.signing import Signer
from tests.conftest import make_message, make_settings, shipped_config, wait_for
from tests.dkim_keys import SELECTOR, dns_for
from tests.relay_helpers import (
    DOMAIN,
    LIST,
    ScriptedRelay,
    add_members,
    enqueue_post,
    shared_copy,
    smtp_delivery,
    toml_text,
)

AUTH_RESULTS = (
    "lists.example.gov; spf=pass smtp.mailfrom=agency.gov;"
    " dkim=pass header.d=agency.gov; dmarc=pass header.from=agency.gov"
)


def signer_for(key: Path) -> Signer:
    return Signer(SELECTOR, key.read_bytes(), "lists.example.gov", "lists.example.gov")


def post_with_auth_results() -> bytes:
    message = make_message(subject="Signed post")
    message["Authentication-Results"] = AUTH_RESULTS
    return message.as_bytes(policy=email.policy.SMTP)


def signed_tag(message: bytes, header: bytes, tag: str) -> str:
    block = message.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    line = next(x for x in block.split(b"\r\n") if x.lower().startswith(header.lower() + b":"))
    found = re.search(rf"\b{tag}=([^;]*)", line.decode())
    assert found is not None
    return re.sub(r"\s+", "", found.group(1))


def test_dkim_signature_covers_the_members_unsubscribe_headers(
    key_pair: tuple[Path, bytes],
) -> None:
    key, record = key_pair
    copy = personalize(shared_copy(), "https://lists.example.gov/unsubscribe/sm-cop/1.abc")
    signed = signer_for(key).sign(copy, "lists.example.gov")
    assert dkim.verify(signed, dnsfunc=dns_for(record))
    covered = signed_tag(signed, b"DKIM-Signature", "h").lower().split(":")
    for name in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ):
        assert name in covered
    assert signed_tag(signed, b"DKIM-Signature", "d") == "lists.example.gov"
    # Someone else's unsubscribe link does not verify.
    forged = signed.replace(b"/sm-cop/1.abc", b"/sm-cop/2.xyz")
    assert not dkim.verify(forged, dnsfunc=dns_for(record))


def decorated_post() -> bytes:
    """A post as our MTA hands it over (with its Authentication-Results), decorated."""
    identity = ListIdentity(
        LIST,
        "SM-COP",
        DOMAIN,
        "[SM-COP]",
        "munge",
        "reply-to",
        "https://lists.example.gov/lists/sm-cop",
    )
    return decorate_post(post_with_auth_results(), identity, "FOIA", "<p>FOIA</p>")


def test_one_arc_seal_serves_every_members_copy(key_pair: tuple[Path, bytes]) -> None:
    key, record = key_pair
    signer = signer_for(key)
    sealed = signer.seal(decorated_post(), DOMAIN)
    assert sealed.startswith(b"ARC-Seal:")
    aar = signed_tag(sealed, b"ARC-Authentication-Results", "i")
    assert aar == "1"
    recorded = sealed.split(b"ARC-Authentication-Results:", 1)[1].split(b"\r\nARC", 1)[0]
    assert b"spf=pass" in recorded and b"dmarc=pass" in recorded
    for token in ("1.aaa", "2.bbb"):
        copy = signer.sign(personalize(sealed, f"https://x.gov/unsubscribe/sm-cop/{token}"), DOMAIN)
        assert dkim.verify(copy, dnsfunc=dns_for(record))
        cv, _, reason = dkim.arc_verify(copy, dnsfunc=dns_for(record))
        assert cv == dkim.CV_Pass, reason


def test_wrapped_post_is_sealed_with_the_original_results(key_pair: tuple[Path, bytes]) -> None:
    key, record = key_pair
    shared = shared_copy()  # no Authentication-Results of its own
    sealed = signer_for(key).seal(shared, "lists.example.gov", post_with_auth_results())
    assert b"ARC-Authentication-Results: i=1; lists.example.gov" in sealed
    assert b"\r\nAuthentication-Results:" not in sealed
    cv, _, reason = dkim.arc_verify(sealed, dnsfunc=dns_for(record))
    assert cv == dkim.CV_Pass, reason


def test_no_results_from_our_mta_means_no_seal(key_pair: tuple[Path, bytes]) -> None:
    key, _ = key_pair
    shared = shared_copy()
    assert signer_for(key).seal(shared, "lists.example.gov", shared) == shared


async def test_delivered_copies_are_signed_and_sealed(
    key_pair: tuple[Path, bytes], sqlite_url: str, tmp_path: Path
) -> None:
    key, record = key_pair
    relay = ScriptedRelay()
    await relay.start()
    settings = make_settings(
        sqlite_url,
        tmp_path / "var",
        delivery=smtp_delivery(relay),
        dkim={"selector": SELECTOR, "private_key_file": str(key)},
    )
    service: Service = build_service(settings)
    await service.start()
    try:
        add_members(service.factory, ["jane@agency.gov", "bob@army.mil"])
        enqueue_post(service.factory, settings, raw=decorated_post())
        service.outbox_ready.set()
        await wait_for(lambda: len(relay.transactions) == 2, timeout=20)
    finally:
        await service.stop()
        await relay.stop()
    for transaction in relay.transactions:
        data = transaction.data
        assert dkim.verify(data, dnsfunc=dns_for(record)), transaction.rcpt_tos
        cv, _, reason = dkim.arc_verify(data, dnsfunc=dns_for(record))
        assert cv == dkim.CV_Pass, reason
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in data


def make_keys(var: Path, rsa: Path) -> None:
    """Keys that must be refused, beside a good RSA and Ed25519 key."""
    var.mkdir(exist_ok=True)
    shutil.copy(rsa, var / "k.pem")
    (var / "garbage.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    (var / "a-directory.pem").mkdir()  # exists, cannot be read as a file
    for name, args in {
        "short.pem": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:768"],
        "ed.pem": ["-algorithm", "ED25519"],
        "ec.pem": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    }.items():
        subprocess.run(
            ["openssl", "genpkey", *args, "-out", str(var / name)], check=True, capture_output=True
        )


BAD_KEYS = [
    ({"selector": "bad selector", "private_key_file": "k.pem"}, "dkim.selector", "DNS label"),
    ({"selector": "s1"}, "dkim.private_key_file", "required"),
    ({"selector": "s1", "private_key_file": "missing.pem"}, "dkim.private_key_file", "cannot read"),
    (
        {"selector": "s1", "private_key_file": "a-directory.pem"},
        "dkim.private_key_file",
        "cannot read",
    ),
    ({"selector": "s1", "private_key_file": "garbage.pem"}, "dkim.private_key_file", "not a PEM"),
    ({"selector": "s1", "private_key_file": "short.pem"}, "dkim.private_key_file", "768 bits"),
    ({"selector": "s1", "private_key_file": "ed.pem"}, "dkim.private_key_file", "not an RSA key"),
    ({"selector": "s1", "private_key_file": "ec.pem"}, "dkim.private_key_file", "EC key"),
    (
        {"selector": "s1", "private_key_file": "k.pem", "ed25519_key_file": "k.pem"},
        "dkim.ed25519_key_file",
        "not an Ed25519 key",
    ),
    (
        {"selector": "s1", "private_key_file": "k.pem", "ed25519_key_file": "none.pem"},
        "dkim.ed25519_key_file",
        "cannot read",
    ),
    (
        {
            "selector": "s1",
            "private_key_file": "k.pem",
            "ed25519_key_file": "ed.pem",
            "ed25519_selector": "s1",
        },
        "dkim.ed25519_selector",
        "other than",
    ),
    ({"selector": "s1", "private_key_file": "k.pem", "colour": 1}, "dkim.colour", ""),
]


@pytest.mark.parametrize(("table", "key", "words"), BAD_KEYS)
def test_bad_signing_configuration_names_the_key(
    table: dict[str, Any],
    key: str,
    words: str,
    sqlite_url: str,
    tmp_path: Path,
    key_pair: tuple[Path, bytes],
) -> None:
    var = tmp_path / "var"
    make_keys(var, key_pair[0])
    with pytest.raises(ConfigError) as caught:
        make_settings(sqlite_url, var, dkim=table)
    assert caught.value.key == key
    assert words in str(caught.value)


@pytest.mark.parametrize("name", ["short.pem", "ed.pem", "a-directory.pem"])
def test_check_config_and_serve_refuse_a_bad_key_in_one_line(
    name: str, tmp_path: Path, key_pair: tuple[Path, bytes]
) -> None:
    var = tmp_path / "var"
    make_keys(var, key_pair[0])
    data = shipped_config()
    data["site"]["var_dir"] = str(var)
    data["smtp"]["port"] = 0
    data["dkim"] = {"selector": SELECTOR, "private_key_file": str(var / name)}
    config = tmp_path / "listserv.toml"
    config.write_text(toml_text(data))
    for command in (["check-config"], ["serve", "--no-web"]):
        result = subprocess.run(
            [sys.executable, "-m", "listserv", *command],
            env={"LISTSERV_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "dkim.private_key_file" in lines[0] and name in lines[0]


def test_signing_is_off_unless_configured(sqlite_settings: Settings) -> None:
    from listserv.signing import make_signer

    assert sqlite_settings.dkim is None and make_signer(sqlite_settings) is None
