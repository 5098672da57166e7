# SPDX-License-Identifier: Apache-2.0
"""`Listserv-Signature: t=<unix time>,v1=<hex HMAC-SHA256>` over `"<t>." + body`.

As Stripe and GitHub sign theirs: the timestamp inside the MAC lets a
receiver refuse a replayed delivery older than a few minutes, and the body
is signed as sent, byte for byte, so the receiver checks before parsing.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Listserv-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: the MAC matches and the timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
