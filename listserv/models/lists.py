# SPDX-License-Identifier: Apache-2.0
"""Lists and their rosters: the list, each member row, the membership history, bans.

Membership is `members` plus the append-only `membership_events` history, kept
after a member leaves because federal records rules need the recipients of list
mail to stay identifiable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from listserv.models.base import Base, Words, utcnow
from listserv.models.enums import (
    ArchiveAccess,
    DeliveryMode,
    DeliveryStatus,
    DeliveryStyle,
    DmarcMitigation,
    IneligiblePolicy,
    MembershipChange,
    NonMemberAction,
    NotifyOwners,
    OriginalSenderHeader,
    ReviewPolicy,
    Role,
)


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
    ineligible_policy: Mapped[IneligiblePolicy] = mapped_column(
        Words(IneligiblePolicy, 16), default=IneligiblePolicy.REFUSE
    )
    confirm_expiry_hours: Mapped[int] = mapped_column(default=72)
    subject_prefix: Mapped[str] = mapped_column(String(64), default="")
    non_member_action: Mapped[NonMemberAction] = mapped_column(
        Words(NonMemberAction, 16), default=NonMemberAction.HOLD
    )
    moderated: Mapped[bool] = mapped_column(default=False)
    announce_only: Mapped[bool] = mapped_column(default=False)
    emergency_hold: Mapped[bool] = mapped_column(default=False)
    max_message_size: Mapped[int] = mapped_column(default=0)
    dmarc_mitigation: Mapped[DmarcMitigation] = mapped_column(
        Words(DmarcMitigation, 16), default=DmarcMitigation.MUNGE
    )
    original_sender_header: Mapped[OriginalSenderHeader] = mapped_column(
        Words(OriginalSenderHeader, 16), default=OriginalSenderHeader.REPLY_TO
    )
    delivery_style: Mapped[DeliveryStyle] = mapped_column(
        Words(DeliveryStyle, 16), default=DeliveryStyle.PERSONALIZED
    )
    review_policy: Mapped[ReviewPolicy] = mapped_column(
        Words(ReviewPolicy, 16), default=ReviewPolicy.OWNERS
    )
    public: Mapped[bool] = mapped_column(default=True)
    retention_days: Mapped[int] = mapped_column(default=0)
    legal_hold: Mapped[bool] = mapped_column(default=False)
    last_digest_at: Mapped[datetime | None] = mapped_column(default=None)
    notify_owners: Mapped[NotifyOwners] = mapped_column(
        Words(NotifyOwners, 8), default=NotifyOwners.AUTO
    )
    archive_access: Mapped[ArchiveAccess] = mapped_column(
        Words(ArchiveAccess, 8), default=ArchiveAccess.MEMBERS
    )
    digest_schedule: Mapped[str] = mapped_column(String(8), default="daily")
    digest_hour: Mapped[int] = mapped_column(default=0)
    digest_size_kb: Mapped[int] = mapped_column(default=0)
    #: Until when the owners' daily summary of joins and leaves has been sent.
    owners_notified_at: Mapped[datetime | None] = mapped_column(default=None)
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
    role: Mapped[Role] = mapped_column(Words(Role, 16), default=Role.MEMBER)
    delivery_mode: Mapped[DeliveryMode] = mapped_column(
        Words(DeliveryMode, 16), default=DeliveryMode.REGULAR
    )
    #: In DIGEST mode: "mime" (RFC 2046 multipart/digest) or "plain" (RFC 1153 text).
    digest_format: Mapped[str] = mapped_column(String(8), default="mime")
    delivery_status: Mapped[DeliveryStatus] = mapped_column(
        Words(DeliveryStatus, 24), default=DeliveryStatus.ENABLED
    )
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
    role: Mapped[Role] = mapped_column(Words(Role, 16))
    event: Mapped[MembershipChange] = mapped_column(Words(MembershipChange, 24))
    delivery_mode: Mapped[DeliveryMode] = mapped_column(Words(DeliveryMode, 16))
    delivery_status: Mapped[DeliveryStatus] = mapped_column(Words(DeliveryStatus, 24))
    actor: Mapped[str] = mapped_column(String(320), default="")
    channel: Mapped[str] = mapped_column(String(16), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: On an `address` event, the key the member had before: one member, both addresses.
    previous_address_key: Mapped[str] = mapped_column(String(320), default="")


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
