# SPDX-License-Identifier: Apache-2.0
"""Confirmation tokens and signed one-click unsubscribe tokens.

Confirmation tokens are 160 random bits in lower-case base32, so an MTA that
folds the case of `sm-cop-confirm+TOKEN@` cannot break them; only their
SHA-256 is stored, so a database dump confirms nothing. Unsubscribe tokens
are HMACs over the member and a per-member nonce: no table lookup per copy,
and rotating the nonce revokes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

TOKEN_RE = re.compile(r"\b([a-z2-7]{32})\b")


def new_token() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").lower()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.strip().lower().encode("ascii", "replace")).hexdigest()


def find_token(text: str) -> str | None:
    """The first confirmation token in a subject or line, if any."""
    match = TOKEN_RE.search(text.lower())
    return match.group(1) if match else None


def new_nonce() -> str:
    return secrets.token_hex(8)


def unsubscribe_token(secret: str, member_id: int, list_name: str, nonce: str) -> str:
    """`<member id>.<mac>`: bound to one member of one list, revoked by a new nonce."""
    message = f"unsubscribe:{member_id}:{list_name}:{nonce}".encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:16]
    return f"{member_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def one_click_url(base_url: str, list_name: str, token: str) -> str:
    """The member's one-click page (GET shows a button; POST is RFC 8058's one click)."""
    return f"{base_url}/unsubscribe/{list_name}/{token}"


def check_unsubscribe_token(
    secret: str, token: str, list_name: str, nonce_for: dict[int, str] | None = None
) -> int | None:
    """The member id a token names, if its MAC is right for the given nonce map."""
    member_text, dot, _ = token.partition(".")
    if not dot or not member_text.isdigit():
        return None
    member_id = int(member_text)
    if nonce_for is None or member_id not in nonce_for:
        return None
    expected = unsubscribe_token(secret, member_id, list_name, nonce_for[member_id])
    return member_id if hmac.compare_digest(expected, token) else None
