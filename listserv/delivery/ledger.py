# SPDX-License-Identifier: Apache-2.0
"""A delivery worker's side of the outbox: the leases it claims, the jobs they belong
to, and the relay's answers it settles.

Claims and results are handled in threads (the worker's event loop never waits for
the database), so the cache of jobs in use and the set of jobs to look at for their
end are shared between them under a lock. A finished job is logged; one with
failures is also audited for the operator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listserv import audit, outbox
from listserv.db import reader_of
from listserv.delivery.copies import CopySigner, JobInfo, Signer
from listserv.delivery.wire import CanonicalBytes, canonical
from listserv.leasing import LeaseLog
from listserv.models import MailingList, OutboxJob, Post, utcnow

log = logging.getLogger("listserv.delivery")

#: What to do with recipients that will not be tried again (in the settling transaction).
FailureHandler = Callable[[Session, list[outbox.Failure]], object]


@dataclass
class Outcomes:
    """The relay's answers not yet settled: per recipient row, and per whole batch."""

    attempts: list[outbox.Attempt] = field(default_factory=list)
    batches: list[outbox.BatchAttempt] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.attempts) + sum(len(b.batch.recipients) for b in self.batches)


class Ledger:
    """One worker's leases and the jobs they belong to; every method runs in a thread."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        worker_id: str,
        on_failures: FailureHandler,
        *,
        signer: Signer | None,
        claim_size: int,
        batch_size: int,
        lease: timedelta,
        backoff_start: timedelta,
    ) -> None:
        self.factory = factory
        self.reader = reader_of(factory)
        self.worker_id = worker_id
        self.on_failures = on_failures
        self.signer = signer
        self.claim_size = claim_size
        self.batch_size = batch_size
        self.lease = lease
        self.backoff_start = backoff_start
        self.drained = False  # the last claim found less than it could take
        self._returning = False  # take_back found rows of ours: claims take them first
        self._jobs: dict[int, JobInfo] = {}
        self._job_refs: dict[int, int] = {}
        self._lock = threading.Lock()
        self._unchecked: set[int] = set()  # jobs settled since we last looked for the end
        self._checked_at = 0.0
        self.lease_log = LeaseLog(lease)
        self._watched_at = 0.0

    @property
    def unchecked(self) -> bool:
        """Some job was settled since the last look for finished jobs."""
        return bool(self._unchecked)

    def claim(self) -> tuple[outbox.Claim, dict[int, JobInfo]]:
        with self.factory() as session, session.begin():
            claim = outbox.claim(
                session,
                self.worker_id,
                limit=self.claim_size,
                lease=self.lease,
                now=utcnow(),
                batch_size=self.batch_size,
                returned=self._returning,
            )
            if self._returning and not claim.returned:
                self._returning = False  # every row taken back at start is sent again
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
            raw, signatures = self._prepare(session, job, domain or "")
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
                created_at=job.created_at,
                signatures=signatures,
            )
        return loaded

    def _prepare(
        self, session: Session, job: OutboxJob, domain: str
    ) -> tuple[CanonicalBytes, CopySigner | None]:
        """The job's shared copy in SMTP form, and the signer of its personalized copies.

        A post's shared copy is ARC-sealed once; a copy that is the same for every
        recipient is DKIM-signed once; a personalized job gets a `CopySigner` that
        already holds what its copies share (body hash, canonical headers).
        """
        raw = job.raw
        if self.signer is None:
            return CanonicalBytes(canonical(raw)), None
        if job.kind == "post":
            original = session.scalar(select(Post.raw).where(Post.id == job.post_id))
            raw = self.signer.seal(raw, domain, original or raw)
        if not job.personalized:
            return CanonicalBytes(canonical(self.signer.sign(raw, domain))), None
        shared = CanonicalBytes(canonical(raw))
        return shared, self.signer.prepare(shared, domain)

    def record(self, done: Outcomes) -> None:
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
            if self.drained or time.monotonic() - self._checked_at > 1.0:
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

    def finish(self) -> None:
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

    def renew(self) -> None:
        with self.factory() as session, session.begin():
            outbox.renew(session, self.worker_id, utcnow() + self.lease)

    def take_back(self) -> int:
        """At start: our own leases (from before a crash) are due again at once, and
        others' leases are reported, since they hold their rows until they run out."""
        now = utcnow()
        with self.factory() as session, session.begin():
            taken = outbox.take_back(session, self.worker_id, now, self.lease)
            self._returning = taken > 0
            self.lease_log.report(
                outbox.held_by_others(session, self.worker_id, now), now, starting=True
            )
        self._watched_at = time.monotonic()
        return taken

    def watch_others(self) -> None:
        """While idle, say once when another worker's lease has stopped being renewed."""
        if time.monotonic() - self._watched_at < self.lease.total_seconds() / 3:
            return
        self._watched_at = time.monotonic()
        now = utcnow()
        with self.reader() as session:
            self.lease_log.report(outbox.held_by_others(session, self.worker_id, now), now)

    def release_leases(self) -> None:
        """Hand back every lease this worker holds: they are due to others at once."""
        with self.factory() as session, session.begin():
            outbox.renew(
                session, self.worker_id, utcnow() - timedelta(seconds=1), with_returned=False
            )

    def idle_seconds(self) -> float:
        """How long to sleep when nothing is due: until the next deferral, at most 1 s."""
        self.watch_others()
        with self.reader() as session:
            due = outbox.next_due(session)
        if due is None:
            return 1.0
        wait = (outbox.as_utc(due) - utcnow()).total_seconds()
        return min(max(wait, 0.01), 1.0)
