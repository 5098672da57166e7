# SPDX-License-Identifier: Apache-2.0
"""The durable state every stage reads and writes (SQLAlchemy 2 typed models).

Each stage owns a few tables and hands work to the next one through committed
rows, as Postfix does with its queue directories: `inbound_messages` (intake →
processing), `posts` (held, rejected, discarded and archived posts),
`outbox_jobs` + `outbox_recipients` (anything we send → delivery workers),
`bounce_events` (delivery and DSNs → scoring). Membership is `members` plus the
append-only `membership_events` history. `audit_events` is never deleted.

The tables live in modules by subject; this package offers them all under one
name, which is also what Alembic's autogenerate reads. Every schema change is
an Alembic migration under migrations/; a test proves the two agree.
"""

from listserv.models.api import ApiToken, IdempotentAnswer, Webhook, WebhookDelivery
from listserv.models.archive import ArchiveEntry, include_in_schema
from listserv.models.base import Base, UTCDateTime, Words, utcnow
from listserv.models.enums import (
    ArchiveAccess,
    Channel,
    DeliveryMode,
    DeliveryStatus,
    DeliveryStyle,
    DmarcMitigation,
    InboundStatus,
    IneligiblePolicy,
    MembershipChange,
    NonMemberAction,
    NotifyOwners,
    OriginalSenderHeader,
    OutboxState,
    PostStatus,
    RequestKind,
    RequestStatus,
    ReviewPolicy,
    Role,
)
from listserv.models.lists import Ban, MailingList, Member, MembershipEvent
from listserv.models.mail import BounceEvent, InboundMessage, InboundResult, Post
from listserv.models.outbox import OutboxBatch, OutboxJob, OutboxRecipient
from listserv.models.requests import AuditEvent, PendingRequest, RateEvent, UnsubscribeReceipt
from listserv.models.signin import RecoveryCode, SignInLink, TotpSecret, WebSession

__all__ = [
    "ApiToken",
    "ArchiveAccess",
    "ArchiveEntry",
    "AuditEvent",
    "Ban",
    "Base",
    "BounceEvent",
    "Channel",
    "DeliveryMode",
    "DeliveryStatus",
    "DeliveryStyle",
    "DmarcMitigation",
    "IdempotentAnswer",
    "InboundMessage",
    "InboundResult",
    "InboundStatus",
    "IneligiblePolicy",
    "MailingList",
    "Member",
    "MembershipChange",
    "MembershipEvent",
    "NonMemberAction",
    "NotifyOwners",
    "OriginalSenderHeader",
    "OutboxBatch",
    "OutboxJob",
    "OutboxRecipient",
    "OutboxState",
    "PendingRequest",
    "Post",
    "PostStatus",
    "RateEvent",
    "RecoveryCode",
    "RequestKind",
    "RequestStatus",
    "ReviewPolicy",
    "Role",
    "SignInLink",
    "TotpSecret",
    "UTCDateTime",
    "UnsubscribeReceipt",
    "WebSession",
    "Webhook",
    "WebhookDelivery",
    "Words",
    "include_in_schema",
    "utcnow",
]
