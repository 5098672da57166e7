# SPDX-License-Identifier: Apache-2.0
"""Who holds a lease, and what waits for one: shared by processing and delivery.

A worker's identity is its host name and its var dir, not its process id, so a
service restarted after a crash (kill -9, a power cut) knows the leases it held
and takes them back at once instead of waiting for them to run out. While it
runs it holds a lock on `<var_dir>/worker.lock`; a second service started on the
same var dir cannot have the lock, and takes an identity of its own for its run
(host, pid and a random part), so two live processes never share leases.

Leases held by others are short (15 s by default) and renewed by a heartbeat
while held. One that is no longer renewed belongs to a worker that stopped; the
work it holds waits until the lease runs out, and `LeaseLog` says so once, at
INFO, naming what waits, for whom and until when.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.orm import Session

log = logging.getLogger("listserv.leases")

#: How long a lease holds unless renewed; the heartbeat renews it every third of it.
LEASE = timedelta(seconds=15)


def worker_name(var_dir: Path, host: str | None = None) -> str:
    """`host:digest-of-var-dir`: the same after a restart, different for each var dir."""
    host = (host or socket.gethostname()).replace(":", "_")[:48]
    digest = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()[:12]
    return f"{host}:{digest}"


def one_off_name() -> str:
    """A name no restart will claim again: `host:pid:random` (CLI runs, tests, a second
    service on a var dir already in use)."""
    host = socket.gethostname().replace(":", "_")[:40]
    return f"{host}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass
class WorkerIdentity:
    """The lease owner name this process uses, and the lock that makes it its own."""

    name: str
    var_dir: Path
    _lock: IO[bytes] | None = field(default=None, repr=False)

    @property
    def durable(self) -> bool:
        """True when a restart on this host and var dir will take this name again."""
        return self._lock is not None

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the lock
            self._lock = None


def acquire_identity(var_dir: Path) -> WorkerIdentity:
    """This host's and var dir's worker name, if no other live process holds it."""
    var_dir.mkdir(parents=True, exist_ok=True)
    handle = open(var_dir / "worker.lock", "ab")  # noqa: SIM115 (held while the service runs)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        name = one_off_name()
        log.warning(
            "another listserv process works from %s; this one leases as %s, so a restart "
            "of it waits for its leases to run out",
            var_dir,
            name,
        )
        return WorkerIdentity(name, var_dir)
    return WorkerIdentity(worker_name(var_dir), var_dir, handle)


@dataclass(frozen=True)
class HeldLease:
    """Rows of one kind leased by another worker: how many and until when."""

    what: str
    owner: str
    count: int
    until: datetime


def leases_of_others(
    session: Session,
    table: Any,
    held: ColumnElement[bool],
    mine: str | tuple[str, ...],
    now: datetime,
    what: str,
) -> list[HeldLease]:
    """Live leases on `table` (rows matching `held`) that belong to someone else."""
    names = (mine,) if isinstance(mine, str) else mine
    query = (
        select(table.c.lease_owner, func.count(), func.max(table.c.lease_until))
        .where(held, table.c.lease_owner.not_in(names), table.c.lease_until >= now)
        .group_by(table.c.lease_owner)
    )
    return [
        HeldLease(what, owner, int(count), until)
        for owner, count, until in session.execute(query)
        if until is not None
    ]


class LeaseLog:
    """Says once per stalled lease what is waiting for it and until when.

    A live worker renews its leases every third of the lease, so a lease with less
    than half of it left has missed a heartbeat: its worker has stopped or hangs,
    and the rows come back when it runs out. At start every lease of another
    worker is reported, since that is when an operator wonders why nothing moves.
    """

    def __init__(self, lease: timedelta) -> None:
        self.lease = lease
        self._said: dict[tuple[str, str], datetime] = {}

    def report(self, leases: list[HeldLease], now: datetime, *, starting: bool = False) -> int:
        said = 0
        for held in leases:
            key = (held.what, held.owner)
            until = _aware(held.until, now)
            stalled = until - now < self.lease / 2
            if not (starting or stalled) or self._said.get(key) == until:
                continue
            self._said[key] = until
            said += 1
            log.info(
                "%d %s leased by %s wait until %s for its lease to run out%s",
                held.count,
                held.what,
                held.owner,
                until.isoformat(timespec="seconds"),
                "" if starting else " (it has stopped renewing it)",
            )
        return said


def _aware(when: datetime, like: datetime) -> datetime:
    if when.tzinfo is None and like.tzinfo is not None:
        return when.replace(tzinfo=like.tzinfo)
    return when


def hold_round(session: Session, job: str) -> bool:
    """Take a periodic job's round for this transaction; False if another host has it.

    On PostgreSQL each job's round holds a transaction-scoped advisory lock, so two
    hosts never run the same round at once (each would read the same state and, say,
    queue the same digest); the next round reads what the last one committed. On
    SQLite the writer lock (BEGIN IMMEDIATE) already runs rounds one at a time.
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = int.from_bytes(
        hashlib.sha256(f"listserv:{job}".encode()).digest()[:8], "big", signed=True
    )
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))
