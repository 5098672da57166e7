# SPDX-License-Identifier: Apache-2.0
"""The closed sets of words the tables store, as `StrEnum`s.

Each value is the string stored in the database and shown to people, so a
comparison with a plain string still holds and no data migration was needed
when the columns became enums.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    MEMBER = "member"
    OWNER = "owner"
    MODERATOR = "moderator"


class DeliveryMode(enum.StrEnum):
    REGULAR = "regular"
    DIGEST = "digest"
    NOMAIL = "nomail"

    @property
    def word(self) -> str:
        """The word people see and type: LISTSERV's SET MAIL, DIGEST or NOMAIL."""
        return "mail" if self is DeliveryMode.REGULAR else self.value


class DeliveryStatus(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED_BOUNCING = "disabled-bouncing"
    DISABLED_BY_OWNER = "disabled-by-owner"
    SUSPENDED = "suspended"


class MembershipChange(enum.StrEnum):
    """What a `membership_events` row records."""

    JOIN = "join"
    LEAVE = "leave"
    CHANGE = "change"
    #: The member's rows moved to a new address; `previous_address_key` names the old one.
    ADDRESS = "address"


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
    CHANGE_ADDRESS = "change-address"  # a member moves to a new address (no list: all of them)


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


class Channel(enum.StrEnum):
    """Through which door an act came: each is audited with it."""

    EMAIL = "email"
    CLI = "cli"
    WEB = "web"
    API = "api"
    SYSTEM = "system"


# List settings with a few allowed words (the configuration and `lists set` check them).


class IneligiblePolicy(enum.StrEnum):
    REFUSE = "refuse"
    HOLD = "hold"


class NonMemberAction(enum.StrEnum):
    HOLD = "hold"
    REJECT = "reject"
    DISCARD = "discard"
    ACCEPT = "accept"


class DmarcMitigation(enum.StrEnum):
    MUNGE = "munge"
    WRAP = "wrap"
    NONE = "none"


class OriginalSenderHeader(enum.StrEnum):
    REPLY_TO = "reply-to"
    CC = "cc"


class DeliveryStyle(enum.StrEnum):
    PERSONALIZED = "personalized"
    BULK = "bulk"


class NotifyOwners(enum.StrEnum):
    """When owners hear of joins and leaves (LISTSERV's SUBSCRIBE/SIGNOFF notices)."""

    AUTO = "auto"  # each under 5,000 members, else daily
    EACH = "each"
    DAILY = "daily"
    NONE = "none"


class ArchiveAccess(enum.StrEnum):
    """Who may read a list's web archive."""

    PUBLIC = "public"
    MEMBERS = "members"
    OWNERS = "owners"


class ReviewPolicy(enum.StrEnum):
    OWNERS = "owners"
    MEMBERS = "members"
    PUBLIC = "public"
