# SPDX-License-Identifier: Apache-2.0
"""Delivery workers: claim outbox recipients, hand copies to the relay, record.

Input is leased `outbox_recipients` rows; output is their new state and, for
a relay's permanent refusal of a list member, a `bounce_events` row that the
bounce stage scores. Service mail and bulk posts go one transaction per job
batch (recipients sorted by domain); personalized posts go one copy per
recipient, spliced from the shared decorated copy. Several transactions run
concurrently over the relay's reused connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from listserv import outbox
from listserv.addresses import verp_encode
from listserv.models import BounceEvent, MailingList, OutboxJob, OutboxRecipient, utcnow
from listserv.relays import Relay, RelayUnavailable

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


@dataclass(frozen=True)
class Copy:
    """One SMTP transaction: envelope and bytes for some leased recipients."""

    sender: str
    recipients: tuple[tuple[int, str], ...]  # (outbox recipient id, address)
    message: bytes


#: Builds a recipient's own copy of a personalized post from the shared bytes.
Personalizer = Callable[[JobInfo, OutboxRecipient], bytes]


def plain_copy(job: JobInfo, recipient: OutboxRecipient) -> bytes:
    return job.raw


def plan_copies(
    jobs: dict[int, JobInfo],
    rows: Sequence[OutboxRecipient],
    personalize: Personalizer,
    batch_size: int,
) -> list[Copy]:
    """Group leased rows into transactions."""
    copies: list[Copy] = []
    by_job: dict[int, list[OutboxRecipient]] = {}
    for row in rows:
        by_job.setdefault(row.job_id, []).append(row)
    for job_id, job_rows in by_job.items():
        job = jobs[job_id]
        if job.personalized:
            for row in job_rows:
                sender = (
                    verp_encode(job.list_name, row.address, job.domain)
                    if job.verp
                    else job.mail_from
                )
                copies.append(Copy(sender, ((row.id, row.address),), personalize(job, row)))
            continue
        job_rows.sort(key=lambda r: (r.domain, r.address))
        for start in range(0, len(job_rows), batch_size):
            chunk = job_rows[start : start + batch_size]
            copies.append(Copy(job.mail_from, tuple((r.id, r.address) for r in chunk), job.raw))
    return copies


class DeliveryWorker:
    """Claims due recipients and sends them; one per process on SQLite."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        relay: Relay,
        *,
        personalize: Personalizer = plain_copy,
        claim_size: int = 500,
        batch_size: int = 500,
        concurrency: int = 4,
        lease: timedelta = timedelta(minutes=10),
        worker_id: str | None = None,
        on_failures: Callable[[Session, list[tuple[OutboxRecipient, int, str]]], None]
        | None = None,
    ) -> None:
        self.factory = factory
        self.relay = relay
        self.personalize = personalize
        self.claim_size = claim_size
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.on_failures = on_failures or record_relay_bounces
        self._jobs: dict[int, JobInfo] = {}

    def _claim(self) -> tuple[list[OutboxRecipient], dict[int, JobInfo]]:
        with self.factory() as session, session.begin():
            rows = outbox.claim(
                session, self.worker_id, limit=self.claim_size, lease=self.lease, now=utcnow()
            )
            for row in rows:
                session.expunge(row)
            missing = {r.job_id for r in rows} - self._jobs.keys()
            if missing:
                query = (
                    select(OutboxJob, MailingList.name, MailingList.domain)
                    .outerjoin(MailingList, MailingList.id == OutboxJob.list_id)
                    .where(OutboxJob.id.in_(missing))
                )
                for job, name, domain in session.execute(query):
                    self._jobs[job.id] = JobInfo(
                        id=job.id,
                        kind=job.kind,
                        list_id=job.list_id,
                        list_name=name or "",
                        domain=domain or "",
                        mail_from=job.mail_from,
                        raw=job.raw,
                        personalized=job.personalized,
                        verp=job.verp,
                        expires_at=job.expires_at,
                    )
            jobs = {r.job_id: self._jobs[r.job_id] for r in rows}
        return rows, jobs

    async def run_once(self) -> int:
        """Claim one batch and deliver it; the number of recipients handled."""
        rows, jobs = await asyncio.to_thread(self._claim)
        if not rows:
            return 0
        copies = plan_copies(jobs, rows, self.personalize, self.batch_size)
        semaphore = asyncio.Semaphore(self.concurrency)
        results: list[outbox.Result] = []

        async def deliver(copy: Copy) -> None:
            async with semaphore:
                addresses = [address for _, address in copy.recipients]
                try:
                    answers = await self.relay.send(copy.sender, addresses, copy.message)
                except RelayUnavailable as exc:
                    answers = {address: (0, str(exc)) for address in addresses}
                except Exception as exc:  # a bug or a broken relay must not lose the lease
                    log.exception("relay failed")
                    answers = {address: (0, f"relay error: {exc}") for address in addresses}
                for row_id, address in copy.recipients:
                    code, text = answers.get(address, (0, "no answer for recipient"))
                    results.append(outbox.Result(row_id, code, text))

        await asyncio.gather(*(deliver(copy) for copy in copies))
        by_id = {row.id: row for row in rows}
        await asyncio.to_thread(self._record, results, jobs, by_id)
        if len(self._jobs) > 64:  # keep only a few jobs' bytes in memory
            self._jobs.clear()
        return len(rows)

    def _record(
        self,
        results: list[outbox.Result],
        jobs: dict[int, JobInfo],
        by_id: dict[int, OutboxRecipient],
    ) -> None:
        expires = {job_id: job.expires_at for job_id, job in jobs.items()}
        job_of = {row_id: row.job_id for row_id, row in by_id.items()}
        with self.factory() as session, session.begin():
            failures = outbox.record_results(session, results, expires, job_of, utcnow())
            permanent = [
                (by_id[f.recipient_id], f.code, f.reply)
                for f in failures
                if f.code >= 500 and by_id[f.recipient_id].member_id is not None
            ]
            if permanent:
                self.on_failures(session, permanent)
        for result in results:
            if not 200 <= result.code < 300:
                log.warning(
                    "recipient %s: %s %s",
                    by_id[result.recipient_id].address,
                    result.code,
                    result.reply,
                )


def record_relay_bounces(
    session: Session, failures: list[tuple[OutboxRecipient, int, str]]
) -> None:
    """A relay's 5xx for a member becomes a bounce event, scored by the bounce stage."""
    from listserv.dsn import classify_smtp_reply
    from listserv.eligibility import InvalidAddress, normalise_address

    job_lists = dict(
        session.execute(
            select(OutboxJob.id, OutboxJob.list_id).where(
                OutboxJob.id.in_({row.job_id for row, _, _ in failures})
            )
        ).all()
    )
    for row, code, text in failures:
        kind = classify_smtp_reply(code, text)
        if kind is None:
            continue
        try:
            key = normalise_address(row.address)
        except InvalidAddress:
            key = row.address.lower()
        session.add(
            BounceEvent(
                list_id=job_lists.get(row.job_id),
                member_id=row.member_id,
                address=row.address,
                address_key=key,
                kind=str(kind),
                source="relay",
                status_code=str(code),
                diagnostic=text[:2000],
            )
        )
