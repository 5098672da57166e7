# SPDX-License-Identifier: Apache-2.0
"""The durable state every stage reads and writes (SQLAlchemy 2 typed models).

Each stage owns a few tables and hands work to the next one through committed
rows, as Postfix does with its queue directories: `inbound_messages` (intake →
processing), `posts` (held, rejected, discarded and archived posts),
`outbox_jobs` + `outbox_recipients` (anything we send → delivery workers),
`bounce_events` (delivery and DSNs → scoring). Membership is `members` plus the
append-only `membership_events` history, kept after a member leaves because
federal records rules need the recipients of list mail to stay identifiable.
`audit_events` is never deleted by the service.

Every schema change is an Alembic migration under migrations/; a test proves
the two agree.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Role(enum.StrEnum):
    MEMBER = "member"
    OWNER = "owner"
    MODERATOR = "moderator"


class DeliveryMode(enum.StrEnum):
    REGULAR = "regular"
    DIGEST = "digest"
    NOMAIL = "nomail"


class DeliveryStatus(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED_BOUNCING = "disabled-bouncing"
    DISABLED_BY_OWNER = "disabled-by-owner"
    SUSPENDED = "suspended"


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"
    DONE = "done"
    IGNORED = "ignored"
    FAILED = "failed"


class RequestKind(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    SET_OPTION = "set-option"
    OWNER_COMMANDS = "owner-commands"
    MODERATE_POST = "moderate-post"
    MODERATE_REQUEST = "moderate-request"
    BOUNCE_REENABLE = "bounce-reenable"  # a bouncing member turns delivery back on
    BOUNCE_PROBE = "bounce-probe"  # the token is the probe's return path, never confirmed


class RequestStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the address owner's confirmation
    AWAITING_APPROVAL = "awaiting-approval"  # confirmed or ineligible: an owner decides
    DONE = "done"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class PostStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    HELD = "held"
    REJECTED = "rejected"
    DISCARDED = "discarded"


class OutboxState(enum.StrEnum):
    """Postfix's queue names for one recipient of one outgoing message."""

    QUEUED = "queued"
    ACTIVE = "active"
    DEFERRED = "deferred"
    SENT = "sent"
    FAILED = "failed"


class MailingList(Base):
    __tablename__ = "mailing_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    domain: Mapped[str] = mapped_column(String(253))
    join_phrases: Mapped[list[Any]] = mapped_column(default=list)
    leave_phrases: Mapped[list[Any]] = mapped_column(default=list)
    eligible_domains: Mapped[list[Any]] = mapped_column(default=list)
    allowed_addresses: Mapped[list[Any]] = mapped_column(default=list)
    allowed_domains: Mapped[list[Any]] = mapped_column(default=list)
    ineligible_policy: Mapped[str] = mapped_column(String(16), default="refuse")
    confirm_expiry_hours: Mapped[int] = mapped_column(default=72)
    subject_prefix: Mapped[str] = mapped_column(String(64), default="")
    non_member_action: Mapped[str] = mapped_column(String(16), default="hold")
    moderated: Mapped[bool] = mapped_column(default=False)
    announce_only: Mapped[bool] = mapped_column(default=False)
    emergency_hold: Mapped[bool] = mapped_column(default=False)
    max_message_size: Mapped[int] = mapped_column(default=0)
    dmarc_mitigation: Mapped[str] = mapped_column(String(16), default="munge")
    original_sender_header: Mapped[str] = mapped_column(String(16), default="reply-to")
    delivery_style: Mapped[str] = mapped_column(String(16), default="personalized")
    review_policy: Mapped[str] = mapped_column(String(16), default="owners")
    public: Mapped[bool] = mapped_column(default=True)
    retention_days: Mapped[int] = mapped_column(default=0)
    legal_hold: Mapped[bool] = mapped_column(default=False)
    last_digest_at: Mapped[datetime | None] = mapped_column(default=None)
    bounce_score_threshold: Mapped[float] = mapped_column(Float, default=5.0)
    bounce_stale_after_days: Mapped[int] = mapped_column(default=7)
    bounce_warnings: Mapped[int] = mapped_column(default=3)
    bounce_warning_interval_days: Mapped[int] = mapped_column(default=7)
    bounce_temporary_score: Mapped[float] = mapped_column(Float, default=0.5)
    bounce_probe: Mapped[bool] = mapped_column(default=False)
    bounce_forward_unrecognised: Mapped[bool] = mapped_column(default=True)
    from_config: Mapped[bool] = mapped_column(default=False)
    # The file's values at the last sync: only keys the file changes since then
    # override what `listserv lists set` stored.
    config_synced: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list[Member]] = relationship(back_populates="mailing_list", lazy="raise")

    @property
    def posting_address(self) -> str:
        return f"{self.name}@{self.domain}"

    def address(self, suffix: str) -> str:
        return f"{self.name}{suffix}@{self.domain}"


class Member(Base):
    """One address in one role on one list (an owner who also reads is two rows)."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("list_id", "address_key", "role"),
        # Fan-out streams a list's roster in id order (keyset pages); without this
        # SQLite picks the unique index and sorts the whole list for every page.
        Index("ix_members_list_id_id", "list_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    job_title: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default=Role.MEMBER)
    delivery_mode: Mapped[str] = mapped_column(String(16), default=DeliveryMode.REGULAR)
    delivery_status: Mapped[str] = mapped_column(String(24), default=DeliveryStatus.ENABLED)
    moderated: Mapped[bool] = mapped_column(default=False)
    suspended_until: Mapped[datetime | None] = mapped_column(default=None)
    moderated_until: Mapped[datetime | None] = mapped_column(default=None)
    conduct_note: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    unsubscribe_nonce: Mapped[str] = mapped_column(String(32), default="")
    bounce_score: Mapped[float] = mapped_column(Float, default=0.0)
    last_bounce_at: Mapped[datetime | None] = mapped_column(default=None)
    bounce_warnings_sent: Mapped[int] = mapped_column(default=0)
    last_warning_at: Mapped[datetime | None] = mapped_column(default=None)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    mailing_list: Mapped[MailingList] = relationship(back_populates="members", lazy="raise")


class MembershipEvent(Base):
    """Append-only history of every join, leave and change, kept forever."""

    __tablename__ = "membership_events"
    __table_args__ = (Index("ix_membership_events_list_at", "list_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(24))  # join, leave, change
    delivery_mode: Mapped[str] = mapped_column(String(16))
    delivery_status: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(320), default="")
    channel: Mapped[str] = mapped_column(String(16), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class PendingRequest(Base):
    """An action waiting for a confirmation (token) or an owner's decision."""

    __tablename__ = "pending_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="CASCADE"), default=None
    )
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(24), default=RequestStatus.PENDING, index=True)
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str] = mapped_column(String(320), default="")
    reason: Mapped[str] = mapped_column(Text, default="")


class InboundMessage(Base):
    """A message as accepted by intake: stored before 250 is said."""

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_messages_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mail_from: Mapped[str] = mapped_column(String(998))
    rcpt_tos: Mapped[list[Any]] = mapped_column()
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(default=0)
    peer: Mapped[str] = mapped_column(String(100), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.RECEIVED)
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)


class Post(Base):
    """A message sent to a list's posting address, whatever became of it.

    Accepted posts are the archive; held, rejected and discarded ones stay
    with their reason, because nothing sent to a government list may vanish.
    """

    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_list_status", "list_id", "status"),
        Index("ix_posts_list_message_id", "list_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(320), default="")
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(998), default="")
    in_reply_to: Mapped[str] = mapped_column(String(998), default="")
    date: Mapped[datetime | None] = mapped_column(default=None)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str] = mapped_column(String(320), default="")
    decorated_size: Mapped[int] = mapped_column(default=0)
    decorated_sha256: Mapped[str] = mapped_column(String(64), default="")
    recipient_count: Mapped[int] = mapped_column(default=0)


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
        # By job only: a state change then touches one index, not two.
        Index("ix_outbox_recipients_job", "job_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("outbox_jobs.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320))
    member_id: Mapped[int | None] = mapped_column(default=None)
    unsubscribe_token: Mapped[str] = mapped_column(String(200), default="")
    domain: Mapped[str] = mapped_column(String(253), default="")
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.QUEUED)
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
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_code: Mapped[int | None] = mapped_column(default=None)
    last_reply: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class BounceEvent(Base):
    """A delivery failure for one address, from a DSN or the relay's reply."""

    __tablename__ = "bounce_events"
    __table_args__ = (Index("ix_bounce_events_list_address", "list_id", "address_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="CASCADE"), default=None
    )
    member_id: Mapped[int | None] = mapped_column(default=None)
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16))  # permanent, temporary, policy, unrecognised
    source: Mapped[str] = mapped_column(String(16))  # dsn, verp, relay, probe
    status_code: Mapped[str] = mapped_column(String(16), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    inbound_id: Mapped[int | None] = mapped_column(default=None)
    processed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Ban(Base):
    """An address or pattern that may not join or post (list_id None: site-wide)."""

    __tablename__ = "bans"
    __table_args__ = (UniqueConstraint("list_id", "pattern"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="CASCADE"), default=None
    )
    pattern: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RateEvent(Base):
    """One counted request, for the per-sender and per-target abuse limits."""

    __tablename__ = "rate_events"
    __table_args__ = (Index("ix_rate_events_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class UnsubscribeReceipt(Base):
    """A one-click unsubscribe carried out (web).

    The member row, and with it the nonce that verifies the link, is gone once the
    member leaves; this row lets the same link answer "already removed" (mail
    providers retry the POST) instead of "unknown link".
    """

    __tablename__ = "unsubscribe_receipts"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who did what, when, from where, through which channel; never deleted."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_list_at", "list_name", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    list_name: Mapped[str] = mapped_column(String(64), default="")
    actor: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(998), default="")
    channel: Mapped[str] = mapped_column(String(16))  # email, cli, web, system
    source: Mapped[str] = mapped_column(String(998), default="")  # peer, Message-ID
    outcome: Mapped[str] = mapped_column(String(32), default="ok")
    auth: Mapped[str] = mapped_column(String(32), default="")  # confirmed-reply, password, host
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
