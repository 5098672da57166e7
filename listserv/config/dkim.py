# SPDX-License-Identifier: Apache-2.0
"""The [dkim] section: the key that signs and seals what the lists send.

The key is read and checked while the configuration loads, so a missing,
unreadable or unusable key stops `serve` with one line naming
`dkim.private_key_file` instead of failing on the first copy delivered.
Signing itself (listserv.signing) uses the same check on the key it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from listserv.config.settings import DKIMSettings
from listserv.config.values import ConfigError, check_unknown, get, resolve

_KEYS = {"selector", "private_key_file", "domain", "authserv_id", "arc"}


class SigningKeyError(Exception):
    """The configured private key cannot be used."""


def check_private_key(pem: bytes) -> None:
    """Raise `SigningKeyError` unless `pem` is an RSA private key of at least 1024 bits."""
    try:
        key = parse_pem_private_key(pem)
    except (UnparsableKeyError, ValueError, IndexError) as exc:
        raise SigningKeyError(f"not a PEM RSA private key ({exc})") from None
    if key["modulus"].bit_length() < 1024:
        raise SigningKeyError("the RSA key is shorter than 1024 bits; use 2048")


def dkim_settings(table: Mapping[str, Any], site_domain: str, base: Path) -> DKIMSettings | None:
    """The signing key, read and checked now so a bad key stops `serve` with one line."""
    if not table:
        return None
    check_unknown(table, _KEYS, "dkim.")
    selector = get(table, "selector", "dkim.", str, "").strip()
    if not selector or not all(c.isalnum() or c in "-._" for c in selector):
        raise ConfigError("dkim.selector", "must be a DNS label such as lists2025")
    key_text = get(table, "private_key_file", "dkim.", str, "").strip()
    if not key_text:
        raise ConfigError("dkim.private_key_file", "is required when [dkim] is set")
    key_file = resolve(key_text, base)
    try:
        key = key_file.read_bytes()
    except OSError as exc:
        raise ConfigError(
            "dkim.private_key_file", f"cannot read {key_file}: {exc.strerror}"
        ) from None
    try:
        check_private_key(key)
    except SigningKeyError as exc:
        raise ConfigError("dkim.private_key_file", f"{key_file}: {exc}") from None
    domain = get(table, "domain", "dkim.", str, site_domain).strip().lower().rstrip(".")
    if not domain or "." not in domain or any(c in domain for c in " @\r\n"):
        raise ConfigError("dkim.domain", "must be a domain name such as lists.example.gov")
    authserv_id = get(table, "authserv_id", "dkim.", str, site_domain).strip()
    if not authserv_id or any(c in authserv_id for c in " ;\r\n"):
        raise ConfigError("dkim.authserv_id", "must be the authserv-id your MTA stamps")
    return DKIMSettings(
        selector=selector,
        private_key=key,
        private_key_file=key_file,
        domain=domain,
        authserv_id=authserv_id,
        arc=get(table, "arc", "dkim.", bool, True),
    )
