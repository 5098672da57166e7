# SPDX-License-Identifier: Apache-2.0
"""Copies: what one SMTP transaction carries, and how a recipient's own copy is made.

A personalized post is one copy per member, spliced from the shared decorated copy
(`decorate.personalize`, microseconds); a bulk post is one copy per batch, sorted
by domain; service mail goes as it is. A `Personalizer` makes a member's copy, a
`Signer` puts DKIM signatures and ARC seals on copies (`listserv.signing.Signer`
is the one the service uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from listserv import outbox
from listserv.addresses import verp_encode
from listserv.decorate import personalize
from listserv.delivery.wire import CanonicalBytes

if TYPE_CHECKING:
    from listserv.config import Settings


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


class Personalizer(Protocol):
    """Builds a recipient's own copy of a post from the shared bytes."""

    def __call__(self, job: JobInfo, recipient: Addressee, /) -> bytes: ...


class Signer(Protocol):
    """Signs copies for the list's domain: DKIM per copy, an ARC seal once per post."""

    def sign(self, message: bytes, domain: str, /) -> bytes:
        """`message` with a DKIM-Signature for `domain` on top."""
        ...

    def seal(self, shared: bytes, domain: str, original: bytes, /) -> bytes:
        """A post's shared copy with an ARC set on top (`original` is the post as received)."""
        ...


def plain_copy(job: JobInfo, recipient: Addressee) -> bytes:
    return job.raw


def make_personalizer(settings: Settings) -> Personalizer:
    """Each member's copy of a personalized post: their own List-Unsubscribe headers.

    `List-Unsubscribe: <{base_url}/unsubscribe/{list}/{token}>, <mailto:{list}-leave@…>`
    and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), spliced into
    the shared decorated copy. Any other job (service mail, bulk posts) is sent as
    it is.
    """
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
