# SPDX-License-Identifier: Apache-2.0
"""The delivery worker: leases outbox rows, hands copies to the relay, settles the results.

The worker is a small pipeline, so the relay never waits for the database:

    claim (thread) → plan copies → senders (relay connections) → recorder (thread)

- claim: a few UPDATE … RETURNING statements lease up to `claim_size` recipients
  (10,000 in the service), read-ahead bounded so at most two claims' worth are held
  at once (the roster never sits in memory);
- plan: one copy per personalized or VERP recipient, one per batch of a bulk post
  (`copies.plan_copies`);
- senders: several at a time per relay connection, so a pipelining relay client
  always has the next transaction to send; a signed personalized copy is made and
  signed in a small thread pool, one thread per core: OpenSSL's RSA runs without
  the GIL, so signing spreads over the cores while the loop keeps sending;
- recorder: group commit: the results of the last `commit_interval` (50 ms) are
  settled in one transaction, so a relay's 250 is durable within about 50 ms and a
  killed worker re-sends only what was in flight or in that window.

Leases are renewed while held (every third of the lease), and released when the
worker stops; a worker named by its host and var dir takes back at start what it
held when it was killed. The database side runs in threads, in `ledger.Ledger`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from listserv import outbox
from listserv.delivery.copies import (
    Copy,
    CopySigner,
    Personalizer,
    Signer,
    plain_copy,
    plan_copies,
)
from listserv.delivery.health import RelayHealth
from listserv.delivery.ledger import FailureHandler, Ledger, Outcomes
from listserv.delivery.relay_bounces import record_relay_bounces
from listserv.delivery.relays import Relay, RelayUnavailable, SendResult
from listserv.delivery.wire import CanonicalBytes
from listserv.leasing import LEASE, one_off_name

log = logging.getLogger("listserv.delivery")


@dataclass
class _BatchAnswers:
    answers: list[tuple[int, str] | None]
    parts_left: int


class DeliveryWorker:
    """Leases due recipients and sends them; one per process on SQLite, many on PostgreSQL.

    `personalize` makes a personalized post's copy per member (None: every copy is
    the shared one); `signer` DKIM-signs and ARC-seals copies (None: unsigned).
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        relay: Relay,
        *,
        personalize: Personalizer | None = None,
        signer: Signer | None = None,
        claim_size: int = 2000,
        batch_size: int = 500,
        concurrency: int = 4,
        depth: int = 8,
        lease: timedelta = LEASE,
        backoff_start: timedelta = outbox.BACKOFF_START,
        worker_id: str | None = None,
        on_failures: FailureHandler | None = None,
        commit_interval: float = 0.05,
        commit_batch: int = 2000,
        health: RelayHealth | None = None,
    ) -> None:
        self.factory = factory
        self.relay = relay
        self.personalize: Personalizer = personalize or plain_copy
        self.signer = signer
        self.claim_size = claim_size
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.depth = depth
        self.lease = lease
        self.backoff_start = backoff_start
        self.worker_id = worker_id or one_off_name()
        self.on_failures = on_failures or record_relay_bounces
        self.commit_interval = commit_interval
        self.commit_batch = commit_batch
        self.health = health or RelayHealth("relay", backoff_start)
        self.ledger = Ledger(
            factory,
            self.worker_id,
            self.on_failures,
            signer=signer,
            claim_size=claim_size,
            batch_size=batch_size,
            lease=lease,
            backoff_start=backoff_start,
        )
        self._batches: dict[int, _BatchAnswers] = {}
        self._done = Outcomes()
        self._done_ready = asyncio.Event()
        self._in_flight = 0
        self._room = asyncio.Event()
        self._sqlite = factory.kw["bind"].dialect.name == "sqlite"
        self._signing: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ running

    async def run(self, stopping: asyncio.Event, wakeup: asyncio.Event) -> None:
        """Deliver until `stopping` is set (or the task is cancelled)."""
        ledger = self.ledger
        taken = await asyncio.to_thread(ledger.take_back)
        if taken:
            log.info("took back %d outbox leases %s held before it stopped", taken, self.worker_id)
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
                    claim, jobs = await asyncio.to_thread(ledger.claim)
                except Exception:
                    log.exception("claiming outbox rows failed; retrying shortly")
                    await _wait(stopping, 2.0)
                    continue
                ledger.drained = len(claim) < self.claim_size
                if not len(claim):
                    if ledger.unchecked and not self._in_flight:
                        await asyncio.to_thread(ledger.finish)
                    await _wait(wakeup, await asyncio.to_thread(ledger.idle_seconds))
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
        claim, jobs = await asyncio.to_thread(self.ledger.claim)
        if not len(claim):
            return 0
        semaphore = asyncio.Semaphore(self.concurrency * self.depth)

        async def deliver(copy: Copy) -> None:
            async with semaphore:
                await self._send(copy)

        await asyncio.gather(*(deliver(c) for c in plan_copies(jobs, claim, self.batch_size)))
        done, self._done = self._done, Outcomes()
        await asyncio.to_thread(self.ledger.record, done)
        if self.ledger.unchecked:
            await asyncio.to_thread(self.ledger.finish)
        return len(claim)

    async def _sender(self, copies: asyncio.Queue[Copy]) -> None:
        while True:
            copy = await copies.get()
            await self._send(copy)

    async def _send(self, copy: Copy) -> None:
        try:
            message = copy.message
            if message is None:
                signatures = copy.job.signatures
                if signatures is None:
                    message = self.personalize(copy.job, copy.rows[0])
                else:
                    message = await asyncio.get_running_loop().run_in_executor(
                        self._signing_pool(), self._signed_copy, copy, signatures
                    )
            answers: SendResult = await self.relay.send(
                copy.sender, copy.recipients, message, copy.keys
            )
        except RelayUnavailable as exc:
            answers = {address: (0, str(exc)) for address in copy.recipients}
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a broken relay must not lose the lease
            log.exception("relay failed")
            answers = {address: (0, f"relay error: {exc}") for address in copy.recipients}
        self.health.observe(answers)
        missing = (0, "no answer for recipient")
        if copy.batch is None:
            for row in copy.rows:
                code, text = answers.get(row.address, missing)
                self._done.attempts.append(outbox.Attempt(row, code, text))
        else:
            self._batch_answers(copy, [answers.get(a, missing) for a in copy.recipients])
        self._done_ready.set()

    def _signed_copy(self, copy: Copy, signatures: CopySigner) -> bytes:
        """A member's copy with its DKIM signatures (runs in the signing pool)."""
        message = self.personalize(copy.job, copy.rows[0])
        signed = signatures.sign(message)
        return CanonicalBytes(signed) if type(message) is CanonicalBytes else signed

    def _signing_pool(self) -> ThreadPoolExecutor:
        if self._signing is None:
            self._signing = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="dkim")
        return self._signing

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
            done, self._done = self._done, Outcomes()
            while True:
                try:
                    await asyncio.to_thread(self.ledger.record, done)
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
                    await asyncio.to_thread(self.ledger.renew)
                except Exception:
                    log.exception("renewing delivery leases failed")

    def _stop(self) -> None:
        """Settle what the relay already answered and hand back the rest of our leases."""
        if self._signing is not None:
            self._signing.shutdown(wait=True, cancel_futures=True)
            self._signing = None
        if len(self._done):
            done, self._done = self._done, Outcomes()
            try:
                self.ledger.record(done)
            except Exception:
                log.exception("could not record %d delivery results at stop", len(done))
        try:
            self.ledger.release_leases()
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
