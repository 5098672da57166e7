# SPDX-License-Identifier: Apache-2.0
"""Mail as it moves through the stages: accepted inbound messages, posts, bounce events.

`inbound_messages` hands intake's work to processing, which leases rows as the
delivery workers lease outbox rows; `inbound_results` is the one result of each
(message, recipient), unique, so a second processor of the same message finds
the work done; `posts` keeps every message
sent to a posting address with what became of it (the archive is its accepted
rows); `bounce_events` carries delivery failures from DSNs and relays to scoring.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from listserv.models.base import Base, Words, utcnow
from listserv.models.enums import InboundStatus, PostStatus


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
    status: Mapped[InboundStatus] = mapped_column(
        Words(InboundStatus, 16), default=InboundStatus.RECEIVED
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Who is processing it (or processed it) and until when the lease holds.
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    lease_until: Mapped[datetime | None] = mapped_column(default=None)


class InboundResult(Base):
    """What became of one recipient of one inbound message: written once, first.

    Processing inserts this row before it routes the recipient, in the same
    transaction as every effect (post, request, reply, outbox job); what became of
    the recipient is the inbound row's `reason`. The unique key means only one
    transaction doing that work can ever commit; on PostgreSQL a second processor
    waits on the key and then finds the work done.
    """

    __tablename__ = "inbound_results"
    __table_args__ = (UniqueConstraint("inbound_id", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(400))  # list:destination:extension
    worker: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Post(Base):
    """A message sent to a list's posting address, whatever became of it.

    Accepted posts are the archive; held, rejected and discarded ones stay
    with their reason, because nothing sent to a government list may vanish.
    """

    __tablename__ = "posts"
    __table_args__ = (
        Index("ix_posts_list_status", "list_id", "status"),
        Index("ix_posts_list_message_id", "list_id", "message_id"),
        # One post per inbound message and list, whoever processes it.
        UniqueConstraint("inbound_id", "list_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_lists.id", ondelete="CASCADE"))
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_messages.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[PostStatus] = mapped_column(Words(PostStatus, 16))
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
