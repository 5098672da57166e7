# SPDX-License-Identifier: Apache-2.0
"""The outbox: every message we send, and the delivery state of each recipient.

`outbox_jobs` holds one row per outgoing message; personalized and service mail
have one `outbox_recipients` row per recipient, bulk posts one `outbox_batches`
row per SMTP transaction's worth. States are Postfix's (`OutboxState`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from listserv.models.base import Base, Words, utcnow
from listserv.models.enums import OutboxState


class OutboxJob(Base):
    """One outgoing message: a service mail (raw is final) or a post's fan-out.

    For a post, `raw` is the shared decorated copy; the delivery worker adds
    each recipient's own headers by splicing bytes.
    """

    __tablename__ = "outbox_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # service, post, probe
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="SET NULL"), default=None
    )
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="SET NULL"), default=None
    )
    mail_from: Mapped[str] = mapped_column(String(998))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    personalized: Mapped[bool] = mapped_column(default=False)
    verp: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    recipient_count: Mapped[int] = mapped_column(default=0)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class OutboxRecipient(Base):
    """The delivery state of one recipient of one job (`OutboxState`)."""

    __tablename__ = "outbox_recipients"
    __table_args__ = (
        Index("ix_outbox_recipients_due", "state", "next_attempt_at"),
        # By job and state: "has this job an unfinished row?" and "how many failed?"
        # are answered from the index. By job alone, SQLite read every sent row of
        # the job to find an open one: 150 ms a look at 900,000 sent, once a second.
        Index("ix_outbox_recipients_job_state", "job_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("outbox_jobs.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    member_id: Mapped[int | None] = mapped_column(default=None)
    unsubscribe_token: Mapped[str] = mapped_column(String(200), default="")
    domain: Mapped[str] = mapped_column(String(253), default="")
    state: Mapped[OutboxState] = mapped_column(Words(OutboxState, 16), default=OutboxState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_code: Mapped[int | None] = mapped_column(default=None)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class OutboxBatch(Base):
    """Recipients of a bulk job that share one SMTP transaction and one delivery state.

    Bulk copies are identical, so their state is written once per batch (500 recipients)
    instead of once per recipient. A recipient the relay defers or refuses leaves its
    batch and goes on as an `outbox_recipients` row of its own.
    """

    __tablename__ = "outbox_batches"
    __table_args__ = (
        Index("ix_outbox_batches_due", "state", "next_attempt_at"),
        Index("ix_outbox_batches_job_state", "job_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("outbox_jobs.id", ondelete="CASCADE"))
    recipients: Mapped[list[Any]] = mapped_column()  # [[member id or null, address], …]
    recipient_count: Mapped[int] = mapped_column(default=0)
    state: Mapped[OutboxState] = mapped_column(Words(OutboxState, 16), default=OutboxState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_code: Mapped[int | None] = mapped_column(default=None)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
