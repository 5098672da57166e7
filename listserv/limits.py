# SPDX-License-Identifier: Apache-2.0
"""Limits at the doors: how often one client may knock, counted in memory.

The SMTP port (connections and messages per client address) and the token
pages of the web (confirm, one-click; later sign-in) share these. A refusal
is always temporary (421/451 at SMTP, 429 with Retry-After on the web), so
a legitimate sender that was caught in a flood simply retries. Counting in
memory costs nothing per request and writes nothing under a flood; each host
counts its own clients. The database limits that must hold across hosts
(confirmations to one address, requests from one sender) are `ratelimit`'s.

A limit *trips* the first time a client is refused in a window: that, not
every refusal, is logged as a WARNING and audited (`limit-tripped`, the
limit's name as the outcome), so a flood cannot turn into a flood of writes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from listserv import audit, db
from listserv.models import Channel, utcnow

log = logging.getLogger("listserv.limits")


def client_key(host: str | None) -> str:
    """The rate-limit key for a client address: IPv4 as is, IPv6 by its /64.

    One IPv6 host usually holds a whole /64, so limiting single addresses
    would limit nothing.
    """
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def per_process(total: int, processes: int) -> int:
    """A limit kept in memory, shared out over the processes serving one port.

    The kernel spreads connections over `[web] processes` processes and each
    counts in its own memory, so each allows its share: together never more
    than `total`, though one keep-alive client (which stays in one process)
    may be refused below it. 0 (off) stays off; a share is at least 1.
    """
    if total <= 0 or processes <= 1:
        return total
    return max(1, -(-total // processes))


@dataclass
class Window:
    """At most `count` events per `seconds` for each key (a sliding window)."""

    count: int
    seconds: float
    clock: Callable[[], float] = time.monotonic
    _events: dict[str, deque[float]] = field(default_factory=dict)
    _tripped: dict[str, float] = field(default_factory=dict)

    def hit(self, key: str) -> float:
        """Count one event for `key`: 0 when allowed, else the seconds until it would be."""
        if self.count <= 0:
            return 0.0
        now = self.clock()
        events = self._events.get(key)
        if events is None:
            if len(self._events) > 100_000:  # a scan of made-up keys: forget the quiet ones
                self._forget(now)
            events = self._events[key] = deque()
        while events and events[0] <= now - self.seconds:
            events.popleft()
        if len(events) >= self.count:
            return max(events[0] + self.seconds - now, 0.001)
        events.append(now)
        return 0.0

    def first_refusal(self, key: str) -> bool:
        """Whether this refusal starts a new trip for `key` (one per window)."""
        now = self.clock()
        if now - self._tripped.get(key, -1e18) < self.seconds:
            return False
        self._tripped[key] = now
        return True

    def _forget(self, now: float) -> None:
        for key in [k for k, e in self._events.items() if not e or e[-1] <= now - self.seconds]:
            del self._events[key]
        for key in [k for k, at in self._tripped.items() if at <= now - self.seconds]:
            del self._tripped[key]


@dataclass
class Gauge:
    """How many things one key holds open now (SMTP connections per client)."""

    limit: int
    _open: dict[str, int] = field(default_factory=dict)
    _tripped: set[str] = field(default_factory=set)

    def enter(self, key: str) -> bool:
        """Take one; False (and nothing taken) at the limit."""
        held = self._open.get(key, 0)
        if self.limit > 0 and held >= self.limit:
            return False
        self._open[key] = held + 1
        self._tripped.discard(key)
        return True

    def leave(self, key: str) -> None:
        held = self._open.get(key, 0) - 1
        if held > 0:
            self._open[key] = held
        else:
            self._open.pop(key, None)

    def first_refusal(self, key: str) -> bool:
        """Whether this refusal starts a trip (cleared when a connection is next let in)."""
        if key in self._tripped:
            return False
        self._tripped.add(key)
        return True

    def held(self, key: str) -> int:
        return self._open.get(key, 0)


class Trips:
    """Where a tripped limit is reported: a WARNING, and an audit row written in a thread.

    `factory` may be None (a web app under test without a database writer);
    then only the log line is written.
    """

    def __init__(self, factory: sessionmaker[Session] | None) -> None:
        self._factory = factory
        self._writes: set[asyncio.Task[None]] = set()

    def trip(self, limit: str, client: str, channel: Channel, detail: str) -> None:
        """Report one trip; called on the event loop, returns at once."""
        log.warning("limit %s tripped by %s: %s", limit, client, detail)
        if self._factory is None:
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._write, limit, client, channel, detail)
        )
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _write(self, limit: str, client: str, channel: Channel, detail: str) -> None:
        assert self._factory is not None
        try:
            with db.session_scope(self._factory) as session:
                audit.record(
                    session,
                    "limit-tripped",
                    channel=channel,
                    actor=f"[{client}]",
                    source=f"{channel}:{client}",
                    outcome=limit,
                    detail={"limit": limit, "client": client, "detail": detail},
                    at=utcnow(),
                )
        except Exception:  # the database is down: the WARNING above still says it
            log.exception("could not audit the %s trip by %s", limit, client)

    async def drain(self) -> None:
        """Wait for the audit rows being written (at stop, and in tests)."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)
