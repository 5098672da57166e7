# SPDX-License-Identifier: Apache-2.0
"""The [dkim] section: the keys that sign and seal what the lists send.

The keys are read and checked while the configuration loads, so a missing,
unreadable or unusable key stops `check-config` and `serve` with one line naming
`dkim.private_key_file` (or `dkim.ed25519_key_file`) instead of failing on the
first copy delivered. Signing itself (listserv.signing) loads keys through the
same functions, so what passed here is what signs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from listserv.config.settings import DKIMSettings
from listserv.config.values import ConfigError, check_unknown, get, resolve

_KEYS = {
    "selector",
    "private_key_file",
    "ed25519_key_file",
    "ed25519_selector",
    "domain",
    "authserv_id",
    "arc",
}

#: Receivers ignore RSA keys shorter than this (RFC 8301); 2048 is what to use.
MIN_RSA_BITS = 1024


class SigningKeyError(Exception):
    """The configured private key cannot be used."""


def _load(pem: bytes, wanted: str) -> object:
    try:
        return load_pem_private_key(pem, password=None)
    except TypeError:
        raise SigningKeyError(f"the {wanted} key is encrypted; give an unencrypted PEM") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"not a PEM {wanted} private key ({exc})") from None


def load_rsa_key(pem: bytes) -> RSAPrivateKey:
    """The RSA private key in `pem`, or `SigningKeyError` (wrong type, under 1024 bits)."""
    key = _load(pem, "RSA")
    if not isinstance(key, RSAPrivateKey):
        raise SigningKeyError(f"is {_kind(key)} key, not an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise SigningKeyError(
            f"the RSA key has {key.key_size} bits, under {MIN_RSA_BITS}; use 2048"
        )
    return key


def load_ed25519_key(pem: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key in `pem` (RFC 8463), or `SigningKeyError`."""
    key = _load(pem, "Ed25519")
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"is {_kind(key)} key, not an Ed25519 key")
    return key


def check_private_key(pem: bytes) -> None:
    """Raise `SigningKeyError` unless `pem` is an RSA private key of at least 1024 bits."""
    load_rsa_key(pem)


def _kind(key: object) -> str:
    kinds = {
        RSAPrivateKey: "an RSA",
        Ed25519PrivateKey: "an Ed25519",
        EllipticCurvePrivateKey: "an EC",
        Ed448PrivateKey: "an Ed448",
    }
    return next((name for cls, name in kinds.items() if isinstance(key, cls)), "another kind of")


def _read_key(table: Mapping[str, Any], name: str, base: Path) -> tuple[bytes, Path]:
    key_file = resolve(get(table, name, "dkim.", str, "").strip(), base)
    try:
        return key_file.read_bytes(), key_file
    except OSError as exc:
        raise ConfigError(f"dkim.{name}", f"cannot read {key_file}: {exc.strerror}") from None


def dkim_settings(table: Mapping[str, Any], site_domain: str, base: Path) -> DKIMSettings | None:
    """The signing keys, read and checked now so a bad key stops `serve` with one line."""
    if not table:
        return None
    check_unknown(table, _KEYS, "dkim.")
    selector = get(table, "selector", "dkim.", str, "").strip()
    if not _is_label(selector):
        raise ConfigError("dkim.selector", "must be a DNS label such as lists2025")
    if not get(table, "private_key_file", "dkim.", str, "").strip():
        raise ConfigError("dkim.private_key_file", "is required when [dkim] is set")
    key, key_file = _read_key(table, "private_key_file", base)
    try:
        load_rsa_key(key)
    except SigningKeyError as exc:
        raise ConfigError("dkim.private_key_file", f"{key_file}: {exc}") from None
    ed_key: bytes | None = None
    ed_file: Path | None = None
    ed_selector = get(table, "ed25519_selector", "dkim.", str, f"{selector}-ed25519").strip()
    if get(table, "ed25519_key_file", "dkim.", str, "").strip():
        ed_key, ed_file = _read_key(table, "ed25519_key_file", base)
        try:
            load_ed25519_key(ed_key)
        except SigningKeyError as exc:
            raise ConfigError("dkim.ed25519_key_file", f"{ed_file}: {exc}") from None
        if not _is_label(ed_selector) or ed_selector == selector:
            raise ConfigError(
                "dkim.ed25519_selector", "must be a DNS label other than dkim.selector"
            )
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
        ed25519_key=ed_key,
        ed25519_key_file=ed_file,
        ed25519_selector=ed_selector,
    )


def _is_label(selector: str) -> bool:
    return bool(selector) and all(c.isalnum() or c in "-._" for c in selector)
