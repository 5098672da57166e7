# SPDX-License-Identifier: Apache-2.0
"""The site secret that signs confirmation tokens, and how it is kept out of logs.

`[site] secret` is either a long random value or "generate", which keeps one
under var/ with owner-only permissions. Example values are refused, so a copied
sample configuration cannot run with a secret anyone can read on the web.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from listserv.config.values import ConfigError

#: Secrets that mean "nobody set this": the service refuses to start with them.
EXAMPLE_SECRETS = frozenset({"", "change-me", "changeme", "example", "secret", "xxx"})


class Secret:
    """A string that does not print itself, so logs and tracebacks keep it."""

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def site_secret(text: str, var_dir: Path, *, create: bool) -> Secret:
    """`[site] secret` as configured ("generate" reads or makes the local one), checked."""
    if text == "generate":
        text = _generated_secret(var_dir, create=create)
    if text.lower() in EXAMPLE_SECRETS or len(text) < 16:
        raise ConfigError(
            "site.secret",
            'is empty, an example value or shorter than 16 characters; set a long random value or "generate"',
        )
    return Secret(text)


def _generated_secret(var_dir: Path, *, create: bool) -> str:
    """The local secret under var/, made on first run with owner-only permissions."""
    path = var_dir / "secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    if not create:
        return secrets.token_urlsafe(32)
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value
