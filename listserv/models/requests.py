# SPDX-License-Identifier: Apache-2.0
"""Pending requests, abuse counters, one-click receipts, and the audit log.

A `pending_requests` row is an action waiting for a confirmation (its token is
stored only as a hash) or an owner's decision. `audit_events` is never deleted
by the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from listserv.models.base import Base, Words, utcnow
from listserv.models.enums import Channel, RequestKind, RequestStatus


class PendingRequest(Base):
    """An action waiting for a confirmation (token) or an owner's decision."""

    __tablename__ = "pending_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailing_lists.id", ondelete="CASCADE"), default=None
    )
    kind: Mapped[RequestKind] = mapped_column(Words(RequestKind, 24))
    status: Mapped[RequestStatus] = mapped_column(
        Words(RequestStatus, 24), default=RequestStatus.PENDING, index=True
    )
    address: Mapped[str] = mapped_column(String(320))
    address_key: Mapped[str] = mapped_column(String(320), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str] = mapped_column(String(320), default="")
    reason: Mapped[str] = mapped_column(Text, default="")


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
    __table_args__ = (
        Index("ix_audit_events_list_at", "list_name", "at"),
        # /metrics counts the limit trips by action at every scrape.
        Index("ix_audit_events_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    list_name: Mapped[str] = mapped_column(String(64), default="")
    actor: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(998), default="")
    channel: Mapped[Channel] = mapped_column(Words(Channel, 16))
    source: Mapped[str] = mapped_column(String(998), default="")  # peer, Message-ID
    outcome: Mapped[str] = mapped_column(String(32), default="ok")
    auth: Mapped[str] = mapped_column(String(32), default="")  # confirmed-reply, password, host
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
