# SPDX-License-Identifier: Apache-2.0
"""Copies: what one SMTP transaction carries, and how a recipient's own copy is made.

A personalized post is one copy per member, spliced from the shared decorated copy
(`decorate.personalize`, microseconds); a bulk post is one copy per batch, sorted
by domain; service mail goes as it is. A `Personalizer` makes a member's copy, a
`Signer` puts DKIM signatures and ARC seals on copies (`listserv.signing.Signer`
is the one the service uses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from listserv import outbox
from listserv.addresses import verp_encode
from listserv.decorate import personalize
from listserv.delivery.wire import CanonicalBytes
from listserv.tokens import one_click_url

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
    created_at: datetime | None = None
    signatures: CopySigner | None = None  # signs each personalized copy (None: unsigned)


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


class CopySigner(Protocol):
    """Signs the copies of one shared copy; what they share was computed once."""

    def sign(self, copy: bytes, /) -> bytes:
        """`copy` with its DKIM-Signature headers on top."""
        ...


class Signer(Protocol):
    """Signs copies for the list's domain: DKIM per copy, an ARC seal once per post."""

    def sign(self, message: bytes, domain: str, /) -> bytes:
        """`message` with a DKIM-Signature for `domain` on top."""
        ...

    def prepare(self, shared: bytes, domain: str, /) -> CopySigner:
        """A signer for the personalized copies of `shared`."""
        ...

    def seal(self, shared: bytes, domain: str, original: bytes, /) -> bytes:
        """A post's shared copy with an ARC set on top (`original` is the post as received)."""
        ...


def plain_copy(job: JobInfo, recipient: Addressee) -> bytes:
    return job.raw


#: Jobs whose copies carry each member's own one-click link.
PERSONAL_KINDS = frozenset({"post", "digest"})


def make_personalizer(settings: Settings) -> Personalizer:
    """Each member's copy of a personalized post or digest: their own one-click link.

    `List-Unsubscribe: <{base_url}/unsubscribe/{list}/{token}>, <mailto:{list}-leave@…>`
    and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), spliced into
    the shared decorated copy, and the same link in the footer. Any other job (service mail, bulk posts) is sent as
    it is.
    """
    base = settings.web.base_url

    def personalized_copy(job: JobInfo, recipient: Addressee) -> bytes:
        if job.kind not in PERSONAL_KINDS or not job.personalized:
            return job.raw
        if not recipient.unsubscribe_token or not job.list_name:
            return job.raw
        copy = personalize(
            job.raw,
            one_click_url(base, job.list_name, recipient.unsubscribe_token),
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

    @property
    def keys(self) -> tuple[str, ...]:
        """Each recipient's delivery key, in `recipients` order (see `delivery_key`)."""
        return tuple(delivery_key(self.job, address) for address in self.recipients)


def delivery_key(job: JobInfo, address: str) -> str:
    """The name of one recipient's delivery of one job: the same on every try.

    The job's creation time, its id and a digest of the address (a job sends each
    address once, whether from a batch or from a recipient row of its own), in
    Maildir's `time.unique.host` shape, so a replay after a crash is recognised
    and names sort in the order jobs were made.
    """
    stamp = f"{job.created_at.timestamp():.6f}" if job.created_at is not None else "0"
    digest = hashlib.sha256(address.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{stamp}.J{job.id}A{digest}.listserv"


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
