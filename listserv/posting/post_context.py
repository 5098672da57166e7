# SPDX-License-Identifier: Apache-2.0
"""What a posting rule looks at and what it may find: the post read once, a hit, an action.

Kept apart from the rules themselves so each group of rules (administrivia
detection is one) can live in a module of its own and still speak the same
types; `rules.py` holds the one ordered list.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from email.message import EmailMessage

from listserv import roster
from listserv.addresses import Destination
from listserv.context import Context
from listserv.message import from_addresses, message_id
from listserv.models import MailingList, Member, Role


class Action(enum.IntEnum):
    """What happens to a post, in increasing severity; the most severe hit wins."""

    ACCEPT = 0  # archived and sent to every member
    HOLD = 1  # kept for a moderator's decision; the poster is told
    REJECT = 2  # refused; the poster is told why
    DISCARD = 3  # dropped without a word to the sender (kept and audited)


@dataclass(frozen=True)
class Hit:
    """One rule's finding. ``route_to`` hands the message to another address's stage."""

    action: Action
    reason: str
    route_to: Destination | None = None


@dataclass(frozen=True)
class PostContext:
    """Everything a rule may look at, read once per post."""

    ctx: Context
    mlist: MailingList
    message: EmailMessage
    size: int
    envelope_from: str
    sender: str  # the one From addr-spec; '' when there is none or several
    roles: frozenset[str]  # the sender's roles on this list
    member: Member | None  # the sender's row with role member
    message_id: str
    post_id: int | None = None  # this post's own row, left out of the duplicate check

    @property
    def is_member(self) -> bool:
        return Role.MEMBER in self.roles

    @property
    def is_privileged(self) -> bool:
        """Owners and moderators may post to announce-only and moderated lists."""
        return bool(self.roles & {Role.OWNER, Role.MODERATOR})


def post_context(
    ctx: Context,
    mlist: MailingList,
    message: EmailMessage,
    *,
    size: int,
    envelope_from: str,
    post_id: int | None = None,
) -> PostContext:
    """Read who the sender is: the From addr-spec, matched like every roster lookup."""
    senders = {roster.address_key(a): a for _, a in from_addresses(message)}
    sender = next(iter(senders.values())) if len(senders) == 1 else ""
    roles: frozenset[str] = frozenset()
    member = None
    if sender:
        roles = frozenset(roster.roles_of(ctx.session, mlist, sender))
        if Role.MEMBER in roles:
            member = roster.find_member(ctx.session, mlist, sender)
    return PostContext(
        ctx=ctx,
        mlist=mlist,
        message=message,
        size=size,
        envelope_from=envelope_from,
        sender=sender,
        roles=roles,
        member=member,
        message_id=message_id(message) or "",
        post_id=post_id,
    )
