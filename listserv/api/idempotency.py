# SPDX-License-Identifier: Apache-2.0
"""`Idempotency-Key`: a POST retried with the same key is done once and answered alike.

The first successful answer is stored in the same transaction as the act it
reports, so either both are kept or neither: a client whose connection
dropped after the commit gets the stored answer on retry, and one whose
connection dropped before it simply does the act on retry. The key belongs
to the token; reusing it for another request (another path or body) is a
422 rather than a silent replay of the wrong answer. Failed requests are
not remembered: nothing was done, so a retry may well succeed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from listserv.api.problems import invalid
from listserv.api.spec import Reply
from listserv.context import Context
from listserv.models import IdempotentAnswer

HEADER = "idempotency-key"
MAX_KEY = 200
#: How long an answer is kept for a retry (Stripe keeps theirs 24 hours).
KEPT_FOR = timedelta(hours=24)


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


def check_key(key: str) -> str:
    clean = key.strip()
    if not clean or len(clean) > MAX_KEY or not clean.isprintable():
        raise invalid("Idempotency-Key", f"Idempotency-Key must be 1 to {MAX_KEY} characters")
    return clean


def replay(session: Session, token_id: int, key: str, digest: str) -> Reply | None:
    """The stored answer for this key, or None if the key is new; 422 if it was another request."""
    stored = session.scalar(
        select(IdempotentAnswer).where(
            IdempotentAnswer.token_id == token_id, IdempotentAnswer.key == key
        )
    )
    if stored is None:
        return None
    if stored.request_hash != digest:
        raise invalid(
            "Idempotency-Key", "This Idempotency-Key was used for another request body or path."
        )
    headers = {str(k): str(v) for k, v in (stored.headers or {}).items()}
    headers["idempotent-replayed"] = "true"
    return Reply(status=stored.status, raw=stored.body, headers=headers)


def remember(
    session: Session,
    token_id: int,
    key: str,
    digest: str,
    status: int,
    body: bytes,
    headers: dict[str, str],
    now: datetime,
) -> None:
    session.add(
        IdempotentAnswer(
            token_id=token_id,
            key=key,
            request_hash=digest,
            status=status,
            body=body,
            headers=headers,
            created_at=now,
        )
    )


def prune(ctx: Context) -> int:
    """Forget answers older than a day (a periodic job): a retry comes within minutes."""
    result = ctx.session.execute(
        delete(IdempotentAnswer).where(IdempotentAnswer.created_at < ctx.now - KEPT_FOR)
    )
    return int(getattr(result, "rowcount", 0) or 0)
