# SPDX-License-Identifier: Apache-2.0
"""DKIM keys the tests make (RSA-2048 and Ed25519) and a DNS stand-in that publishes them.

Registered as a plugin in conftest.py, so any test can ask for `key_pair` or
`ed25519_pair`; `dns_for` answers dkimpy's TXT lookups for our two selectors.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

SELECTOR = "lists2025"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh 2048-bit RSA key and its DNS TXT record (v=DKIM1; p=…)."""
    if shutil.which("openssl") is None:
        pytest.skip("making a test key needs the openssl command")
    key = tmp_path_factory.mktemp("dkim") / "private.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            str(key),
        ],
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture(scope="module")
def ed25519_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh Ed25519 key and its DNS TXT record (v=DKIM1; k=ed25519; p=…, RFC 8463)."""
    if shutil.which("openssl") is None:
        pytest.skip("making a test key needs the openssl command")
    key = tmp_path_factory.mktemp("dkim-ed25519") / "ed25519.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ED25519", "-out", str(key)],
        check=True,
        capture_output=True,
    )
    private = load_pem_private_key(key.read_bytes(), password=None)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[union-attr, call-arg, arg-type]
    return key, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)


def dns_for(record: bytes, ed25519_record: bytes = b"") -> Callable[..., bytes | None]:
    records = {
        f"{SELECTOR}._domainkey.lists.example.gov.".encode(): record,
        f"{SELECTOR}-ed25519._domainkey.lists.example.gov.".encode(): ed25519_record,
    }

    def lookup(name: bytes, *args: Any, **kwargs: Any) -> bytes | None:
        return records.get(name) or None

    return lookup
