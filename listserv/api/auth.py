# SPDX-License-Identifier: Apache-2.0
"""Who is calling: the bearer token proves a named token row, and a bucket meters it.

A token proved by its keyed hash is remembered for `CACHE_SECONDS` (its row:
name, role, lists), but every request still reads whether it has been
revoked, deleted or has expired (one primary-key read), so a
revoked or expired token stops working at the next request, in every
process. The rate limit is a token bucket per API token, in memory:
`api_requests_per_second` sustained and `api_burst` at once, answered 429
with `Retry-After` when empty. Several processes each keep their own buckets.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from listserv.actors import Actor
from listserv.acts import tokens
from listserv.api.problems import Problem, unauthorized

#: `last_used_at` is written at most this often per token, so reading stays a read.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    token_id: int
    actor: Actor
    #: `last_used_at` is older than `TOUCH_EVERY`: the request should note this use.
    stale: bool = False


def bearer(header: str | None) -> str:
    """The token from `Authorization: Bearer <token>`, or 401."""
    if not header:
        raise unauthorized("This request needs an API token: Authorization: Bearer <token>.")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("Use Authorization: Bearer <token>.")
    return value.strip()


#: How long a proved token's row is remembered (its revocation is read every time).
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class _Proved:
    until: float
    token: tokens.Usable
    actor: Actor


class TokenCache:
    """Tokens proved in the last few seconds, by the presented token, and when each was noted.

    Keyed by the token itself (in memory only, like the request that carried
    it), so a hit skips the keyed hash and the row's read. `noted` is when
    this process last wrote a token's `last_used_at`, so the write stays once
    a minute although the remembered row does not see it.
    """

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self.proved: dict[str, _Proved] = {}
        self.noted: dict[int, datetime] = {}

    def get(self, presented: str, clock: float) -> _Proved | None:
        found = self.proved.get(presented)
        if found is None or found.until <= clock:
            return None
        return found

    def put(self, presented: str, token: tokens.Usable, clock: float) -> _Proved:
        if len(self.proved) > 10_000:  # many tokens at once: start over rather than grow
            self.proved.clear()
        found = _Proved(clock + self.seconds, token, tokens.actor_for(token))
        self.proved[presented] = found
        return found

    def forget(self, presented: str) -> None:
        self.proved.pop(presented, None)

    def stale(self, token: tokens.Usable, now: datetime) -> bool:
        """Whether this request should note the token's use, and if so it is noted as done."""
        last = self.noted.get(token.id, token.last_used_at)
        if last is not None and now - last < TOUCH_EVERY:
            return False
        self.noted[token.id] = now
        return True


def authenticate(
    session: Session,
    secret: str,
    header: str | None,
    now: datetime,
    cache: TokenCache | None = None,
) -> Caller:
    """The caller a request's token proves; 401 for none, unknown, expired or revoked.

    Reads only, so a GET can run in a reader session; the request notes the
    use (`tokens.touch`) when the caller is `stale`.
    """
    presented = bearer(header)
    cache = cache or TokenCache(0.0)
    clock = time.monotonic()
    proved = cache.get(presented, clock)
    if proved is not None and not tokens.still_usable(session, proved.token.id, now):
        cache.forget(presented)
        raise unauthorized("The API token is unknown, expired or revoked.")
    if proved is None:
        found = tokens.find_usable(session, secret, presented, now)
        if found is None:
            raise unauthorized("The API token is unknown, expired or revoked.")
        proved = cache.put(presented, found, clock)
    return Caller(proved.token.id, proved.actor, cache.stale(proved.token, now))


class RateLimiter:
    """Token buckets by API token id, shared by the worker threads that serve requests."""

    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = float(burst)
        self.buckets: dict[int, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def take(self, key: int, now: float | None = None) -> None:
        """Spend one request, or raise 429 saying when the next one is allowed."""
        with self.lock:
            self._take(key, time.monotonic() if now is None else now)

    def _take(self, key: int, now: float) -> None:
        level, at = self.buckets.get(key, (self.burst, now))
        level = min(self.burst, level + (now - at) * self.per_second)
        if level < 1.0:
            self.buckets[key] = (level, now)
            wait = max(1, math.ceil((1.0 - level) / self.per_second))
            raise Problem(
                429,
                f"This token is over its rate ({self.per_second:g} requests/s, "
                f"bursts of {self.burst:g}); retry in {wait} s.",
                headers={"retry-after": str(wait)},
            )
        self.buckets[key] = (level - 1.0, now)
