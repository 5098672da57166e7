# SPDX-License-Identifier: Apache-2.0
"""Delivery workers: lease outbox rows, hand copies to the relay, settle the results.

Input is due `outbox_recipients` and `outbox_batches` rows; output is their new
state and, for a list member the relay refused (or that could not be reached before
the job's deadline), a `bounce_events` row that the bounce stage scores.

The worker is a small pipeline, so the relay never waits for the database:

    claim (thread) → plan copies → senders (relay connections) → recorder (thread)

- claim: a few UPDATE … RETURNING statements lease up to `claim_size` recipients
  (10,000 in the service), read-ahead bounded so at most two claims' worth are held
  at once (the roster never sits in memory);
- plan: a personalized post is one copy per member, spliced from the shared decorated
  copy (`decorate.personalize`, microseconds); a bulk post is one copy per batch,
  sorted by domain; service mail goes as it is;
- senders: several at a time per relay connection, so a pipelining relay client
  always has the next transaction to send;
- recorder: group commit: the results of the last `commit_interval` (50 ms) are
  settled in one transaction, so a relay's 250 is durable within about 50 ms and a
  killed worker re-sends only what was in flight or in that window.

Leases are renewed while held, and released when the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listserv import outbox
from listserv.addresses import verp_encode
from listserv.models import BounceEvent, MailingList, OutboxJob, Post, utcnow
from listserv.relays import CanonicalBytes, Relay, RelayUnavailable, SendResult, canonical

if TYPE_CHECKING:
    from listserv.config import Settings
    from listserv.signing import Signer

log = logging.getLogger("listserv.delivery")


@dataclass(frozen=True)
class JobInfo:
    id: int
    kind: str
    list_id: int | None
    list_name: str
    domain: str
    mail_from: str
    raw: bytes
    personalized: bool
    verp: bool
    expires_at: datetime
    post_id: int | None = None


class Addressee(Protocol):
    """What a personalizer may know of a recipient (an outbox row or a lease of one)."""

    @property
    def address(self) -> str: ...

    @property
    def member_id(self) -> int | None: ...

    @property
    def unsubscribe_token(self) -> str: ...


#: Builds a recipient's own copy of a post from the shared bytes.
Personalizer = Callable[[JobInfo, Addressee], bytes]


def plain_copy(job: JobInfo, recipient: Addressee) -> bytes:
    return job.raw


def make_personalizer(settings: Settings) -> Personalizer:
    """Each member's copy of a personalized post: their own List-Unsubscribe headers.

    `List-Unsubscribe: <{base_url}/unsubscribe/{list}/{token}>, <mailto:{list}-leave@…>`
    and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), spliced into
    the shared decorated copy. Any other job (service mail, bulk posts) is sent as
    it is.
    """
    from listserv.decorate import personalize

    base = settings.web.base_url

    def personalized_copy(job: JobInfo, recipient: Addressee) -> bytes:
        if job.kind != "post" or not job.personalized or not recipient.unsubscribe_token:
            return job.raw
        copy = personalize(
            job.raw,
            f"{base}/unsubscribe/{job.list_name}/{recipient.unsubscribe_token}",
            leave_address=f"{job.list_name}-leave@{job.domain}",
        )
        # The splice keeps the shared copy's CRLF line ends (header values lose any
        # CR/LF), so a canonical shared copy gives canonical copies.
        return CanonicalBytes(copy) if type(job.raw) is CanonicalBytes else copy

    return personalized_copy


@dataclass(eq=False)
class Copy:
    """One SMTP transaction: an envelope, the bytes, and the leases it settles."""

    job: JobInfo
    sender: str
    recipients: tuple[str, ...]
    rows: Sequence[outbox.Leased] = ()  # per-recipient leases, in `recipients` order
    batch: outbox.LeasedBatch | None = None  # or a slice of a leased batch
    start: int = 0
    message: bytes | None = None  # None: personalize per recipient when sent


def plan_copies(jobs: dict[int, JobInfo], claim: outbox.Claim, batch_size: int) -> list[Copy]:
    """Group leased rows into transactions."""
    copies: list[Copy] = []
    by_job: dict[int, list[outbox.Leased]] = {}
    for row in claim.recipients:
        by_job.setdefault(row.job_id, []).append(row)
    for job_id, rows in by_job.items():
        job = jobs[job_id]
        if job.personalized or job.verp:
            for row in rows:
                sender = (
                    verp_encode(job.list_name, row.address, job.domain)
                    if job.verp and job.list_name
                    else job.mail_from
                )
                message = None if job.personalized else job.raw
                copies.append(Copy(job, sender, (row.address,), (row,), message=message))
            continue
        rows.sort(key=lambda r: (r.domain, r.address))
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            copies.append(
                Copy(job, job.mail_from, tuple(r.address for r in chunk), chunk, message=job.raw)
            )
    for batch in claim.batches:
        job = jobs[batch.job_id]
        for start in range(0, len(batch.recipients), batch_size):
            addresses = tuple(a for _, a in batch.recipients[start : start + batch_size])
            copies.append(
                Copy(job, job.mail_from, addresses, batch=batch, start=start, message=job.raw)
            )
    return copies


@dataclass
class _BatchAnswers:
    answers: list[tuple[int, str] | None]
    parts_left: int


@dataclass
class _Outcomes:
    attempts: list[outbox.Attempt] = field(default_factory=list)
    batches: list[outbox.BatchAttempt] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.attempts) + sum(len(b.batch.recipients) for b in self.batches)


FailureHandler = Callable[[Session, list[outbox.Failure]], None]


class DeliveryWorker:
    """Leases due recipients and sends them; one per process on SQLite, many on PostgreSQL."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        relay: Relay,
        *,
        personalize: Personalizer = plain_copy,
        signer: Signer | None = None,
        claim_size: int = 2000,
        batch_size: int = 500,
        concurrency: int = 4,
        depth: int = 8,
        lease: timedelta = timedelta(minutes=2),
        backoff_start: timedelta = outbox.BACKOFF_START,
        worker_id: str | None = None,
        on_failures: FailureHandler | None = None,
        commit_interval: float = 0.05,
        commit_batch: int = 2000,
    ) -> None:
        self.factory = factory
        self.relay = relay
        self.personalize = personalize
        self.signer = signer
        self.claim_size = claim_size
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.depth = depth
        self.lease = lease
        self.backoff_start = backoff_start
        self.worker_id = worker_id or outbox.worker_name()
        self.on_failures = on_failures or record_relay_bounces
        self.commit_interval = commit_interval
        self.commit_batch = commit_batch
        self._jobs: dict[int, JobInfo] = {}
        self._job_refs: dict[int, int] = {}
        self._batches: dict[int, _BatchAnswers] = {}
        self._done = _Outcomes()
        self._done_ready = asyncio.Event()
        self._in_flight = 0
        self._room = asyncio.Event()
        self._sqlite = factory.kw["bind"].dialect.name == "sqlite"
        # Claims and results are handled in threads: the job cache and the set of jobs
        # to look at for their end are shared between them.
        self._lock = threading.Lock()
        self._unchecked: set[int] = set()  # jobs settled since we last looked for the end
        self._checked_at = 0.0
        self._drained = False  # the last claim found less than it could take

    # ------------------------------------------------------------------ running

    async def run(self, stopping: asyncio.Event, wakeup: asyncio.Event) -> None:
        """Deliver until `stopping` is set (or the task is cancelled)."""
        if self._sqlite:
            released = await asyncio.to_thread(self._release_dead)
            if released:
                log.info("took back %d leases of a stopped worker", released)
        copies: asyncio.Queue[Copy] = asyncio.Queue()
        helpers = [
            asyncio.create_task(self._sender(copies), name=f"delivery-sender-{i}")
            for i in range(self.concurrency * self.depth)
        ]
        helpers.append(asyncio.create_task(self._recorder(), name="delivery-recorder"))
        helpers.append(asyncio.create_task(self._renewer(), name="delivery-leases"))
        try:
            while not stopping.is_set():
                if self._in_flight >= 2 * self.claim_size:
                    self._room.clear()
                    await _wait(self._room, 1.0)
                    continue
                try:
                    claim, jobs = await asyncio.to_thread(self._claim)
                except Exception:
                    log.exception("claiming outbox rows failed; retrying shortly")
                    await _wait(stopping, 2.0)
                    continue
                self._drained = len(claim) < self.claim_size
                if not len(claim):
                    if self._unchecked and not self._in_flight:
                        await asyncio.to_thread(self._finish)
                    await _wait(wakeup, await asyncio.to_thread(self._idle_seconds))
                    wakeup.clear()
                    continue
                self._in_flight += len(claim)
                for copy in plan_copies(jobs, claim, self.batch_size):
                    copies.put_nowait(copy)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.wait(helpers, timeout=10)
            await asyncio.shield(asyncio.to_thread(self._stop))

    async def run_once(self) -> int:
        """Claim one batch, deliver it and settle it; the number of recipients handled."""
        claim, jobs = await asyncio.to_thread(self._claim)
        if not len(claim):
            return 0
        semaphore = asyncio.Semaphore(self.concurrency * self.depth)

        async def deliver(copy: Copy) -> None:
            async with semaphore:
                await self._send(copy)

        await asyncio.gather(*(deliver(c) for c in plan_copies(jobs, claim, self.batch_size)))
        done, self._done = self._done, _Outcomes()
        await asyncio.to_thread(self._record, done)
        if self._unchecked:
            await asyncio.to_thread(self._finish)
        return len(claim)

    async def _sender(self, copies: asyncio.Queue[Copy]) -> None:
        while True:
            copy = await copies.get()
            await self._send(copy)

    async def _send(self, copy: Copy) -> None:
        try:
            message = copy.message
            if message is None:
                message = self.personalize(copy.job, copy.rows[0])
                if self.signer is not None:
                    message = await asyncio.to_thread(self.signer.sign, message, copy.job.domain)
            answers: SendResult = await self.relay.send(copy.sender, copy.recipients, message)
        except RelayUnavailable as exc:
            answers = {address: (0, str(exc)) for address in copy.recipients}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a broken relay must not lose the lease
            log.exception("relay failed")
            answers = {address: (0, f"relay error: {exc}") for address in copy.recipients}
        missing = (0, "no answer for recipient")
        if copy.batch is None:
            for row in copy.rows:
                code, text = answers.get(row.address, missing)
                self._done.attempts.append(outbox.Attempt(row, code, text))
        else:
            self._batch_answers(copy, [answers.get(a, missing) for a in copy.recipients])
        self._done_ready.set()

    def _batch_answers(self, copy: Copy, answers: list[tuple[int, str]]) -> None:
        batch = copy.batch
        assert batch is not None
        state = self._batches.get(batch.id)
        if state is None:
            parts = -(-len(batch.recipients) // self.batch_size)
            state = self._batches[batch.id] = _BatchAnswers([None] * len(batch.recipients), parts)
        state.answers[copy.start : copy.start + len(answers)] = answers
        state.parts_left -= 1
        if state.parts_left == 0:
            del self._batches[batch.id]
            complete = [a if a is not None else (0, "no answer") for a in state.answers]
            self._done.batches.append(outbox.BatchAttempt(batch, complete))

    async def _recorder(self) -> None:
        """Group commit: settle what finished in the last `commit_interval` in one commit.

        A relay's 250 is durable within that interval (plus the commit itself), so a
        killed worker re-sends at most that much besides the transactions in flight,
        and a busy worker commits a few dozen times a second instead of per message.
        """
        loop = asyncio.get_running_loop()
        while True:
            await self._done_ready.wait()
            self._done_ready.clear()
            if not len(self._done):
                continue
            deadline = loop.time() + self.commit_interval
            while len(self._done) < self.commit_batch and loop.time() < deadline:
                await _wait(self._done_ready, deadline - loop.time())
                self._done_ready.clear()
            done, self._done = self._done, _Outcomes()
            while True:
                try:
                    await asyncio.to_thread(self._record, done)
                    break
                except Exception:
                    log.exception("recording %d delivery results failed; retrying", len(done))
                    await asyncio.sleep(1.0)
            self._in_flight -= len(done)
            self._room.set()

    async def _renewer(self) -> None:
        every = max(self.lease.total_seconds() / 3, 0.5)
        while True:
            await asyncio.sleep(every)
            if self._in_flight:
                try:
                    await asyncio.to_thread(self._renew)
                except Exception:
                    log.exception("renewing delivery leases failed")

    # ------------------------------------------------------------ database side

    def _claim(self) -> tuple[outbox.Claim, dict[int, JobInfo]]:
        with self.factory() as session, session.begin():
            claim = outbox.claim(
                session,
                self.worker_id,
                limit=self.claim_size,
                lease=self.lease,
                now=utcnow(),
                batch_size=self.batch_size,
            )
            job_ids = {r.job_id for r in claim.recipients} | {b.job_id for b in claim.batches}
            with self._lock:
                missing = job_ids - self._jobs.keys()
                refs = self._job_refs
                for row in claim.recipients:
                    refs[row.job_id] = refs.get(row.job_id, 0) + 1
                for batch in claim.batches:
                    refs[batch.job_id] = refs.get(batch.job_id, 0) + 1
            if missing:
                loaded = self._load_jobs(session, missing)
                with self._lock:
                    self._jobs.update(loaded)
        with self._lock:
            return claim, {job_id: self._jobs[job_id] for job_id in job_ids}

    def _load_jobs(self, session: Session, ids: set[int]) -> dict[int, JobInfo]:
        loaded: dict[int, JobInfo] = {}
        query = (
            select(OutboxJob, MailingList.name, MailingList.domain)
            .outerjoin(MailingList, MailingList.id == OutboxJob.list_id)
            .where(OutboxJob.id.in_(ids))
        )
        for job, name, domain in session.execute(query):
            raw = job.raw
            if self.signer is not None:
                raw = self._prepare_signed(session, job, raw, domain or "")
            raw = CanonicalBytes(canonical(raw))
            loaded[job.id] = JobInfo(
                id=job.id,
                kind=job.kind,
                list_id=job.list_id,
                list_name=name or "",
                domain=domain or "",
                mail_from=job.mail_from,
                raw=raw,
                personalized=job.personalized,
                verp=job.verp,
                expires_at=job.expires_at,
                post_id=job.post_id,
            )
        return loaded

    def _prepare_signed(self, session: Session, job: OutboxJob, raw: bytes, domain: str) -> bytes:
        """ARC-seal a post's shared copy once; DKIM-sign copies that are the same for all."""
        assert self.signer is not None
        if job.kind == "post":
            original = session.scalar(select(Post.raw).where(Post.id == job.post_id))
            raw = self.signer.seal(raw, domain, original or raw)
        if not job.personalized:
            raw = self.signer.sign(raw, domain)
        return raw

    def _record(self, done: _Outcomes) -> None:
        now = utcnow()
        jobs = [a.item.job_id for a in done.attempts] + [b.batch.job_id for b in done.batches]
        with self._lock:
            expires = {job_id: self._jobs[job_id].expires_at for job_id in set(jobs)}
        with self.factory() as session, session.begin():
            settled = outbox.record(
                session,
                done.attempts,
                done.batches,
                expires,
                now,
                backoff_start=self.backoff_start,
            )
            if settled.failures:
                self.on_failures(session, settled.failures)
            with self._lock:
                self._unchecked |= settled.jobs
            # Looking for a job's end costs queries: do it once a second, or on every
            # commit once the outbox is nearly drained (the job's last rows are here).
            if self._drained or time.monotonic() - self._checked_at > 1.0:
                self._finish_in(session, now)
        for failure in settled.failures:
            log.warning(
                "job %d: %s failed: %s %s",
                failure.job_id,
                failure.address,
                failure.code,
                failure.reply,
            )
        with self._lock:
            for job_id in jobs:
                self._release_job(job_id)

    def _finish(self) -> None:
        with self.factory() as session, session.begin():
            self._finish_in(session, utcnow())

    def _finish_in(self, session: Session, now: datetime) -> None:
        with self._lock:
            checking, self._unchecked = self._unchecked, set()
        self._checked_at = time.monotonic()
        for job in outbox.finish_jobs(session, checking, now):
            self._report(session, job)

    def _report(self, session: Session, job: outbox.FinishedJob) -> None:
        """A finished job is logged; one with failures is also audited for the operator."""
        log.info(
            "job %d (%s) finished: %d recipient(s), %d failed",
            job.id,
            job.kind,
            job.recipients,
            job.failed,
        )
        if job.failed:
            from listserv import audit

            info = self._jobs.get(job.id)
            audit.record(
                session,
                "delivery-failed",
                channel="system",
                list_name=info.list_name if info else "",
                target=f"outbox job {job.id}",
                outcome="failed",
                detail={
                    "kind": job.kind,
                    "post_id": job.post_id,
                    "recipients": job.recipients,
                    "failed": job.failed,
                },
            )

    def _release_job(self, job_id: int) -> None:
        """One leased row or batch of `job_id` is settled (called under the lock)."""
        refs = self._job_refs.get(job_id, 0) - 1
        if refs > 0:
            self._job_refs[job_id] = refs
            return
        self._job_refs.pop(job_id, None)
        if len(self._jobs) > 8:  # keep a few jobs' bytes; a job in use is never dropped
            for stale in [j for j in self._jobs if j not in self._job_refs]:
                del self._jobs[stale]

    def _renew(self) -> None:
        with self.factory() as session, session.begin():
            outbox.renew(session, self.worker_id, utcnow() + self.lease)

    def _release_dead(self) -> int:
        with self.factory() as session, session.begin():
            return outbox.release_dead_leases(session, utcnow())

    def _idle_seconds(self) -> float:
        """How long to sleep when nothing is due: until the next deferral, at most 1 s."""
        with self.factory() as session:
            due = outbox.next_due(session)
        if due is None:
            return 1.0
        wait = (outbox.as_utc(due) - utcnow()).total_seconds()
        return min(max(wait, 0.01), 1.0)

    def _stop(self) -> None:
        """Settle what the relay already answered and hand back the rest of our leases."""
        if len(self._done):
            done, self._done = self._done, _Outcomes()
            try:
                self._record(done)
            except Exception:
                log.exception("could not record %d delivery results at stop", len(done))
        try:
            with self.factory() as session, session.begin():
                outbox.renew(session, self.worker_id, utcnow() - timedelta(seconds=1))
        except Exception:
            log.exception("could not release delivery leases at stop")


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Wait for `event` at most `timeout` seconds.

    asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
    that arrives as the event is set, and a stopping worker would then wait forever.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


def record_relay_bounces(session: Session, failures: Sequence[outbox.Failure]) -> None:
    """A member the relay refused (or we gave up on) becomes a bounce event, scored later."""
    from listserv.dsn import classify_smtp_reply
    from listserv.eligibility import InvalidAddress, normalise_address

    members = [f for f in failures if f.member_id is not None]
    if not members:
        return
    job_lists = dict(
        session.execute(
            select(OutboxJob.id, OutboxJob.list_id).where(
                OutboxJob.id.in_({f.job_id for f in members})
            )
        ).all()
    )
    for failure in members:
        kind = classify_smtp_reply(failure.code, failure.reply)
        if kind is None:
            continue
        try:
            key = normalise_address(failure.address)
        except InvalidAddress:
            key = failure.address.lower()
        session.add(
            BounceEvent(
                list_id=job_lists.get(failure.job_id),
                member_id=failure.member_id,
                address=failure.address,
                address_key=key,
                kind=str(kind),
                source="relay",
                status_code=str(failure.code),
                diagnostic=failure.reply[:2000],
            )
        )
