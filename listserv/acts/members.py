# SPDX-License-Identifier: Apache-2.0
"""Acts on one membership: add, remove, delivery, name and title, re-enabling delivery.

Owners do these for anyone on their list; a member does the ones that are
about themselves (leaving, delivery) once a channel has proved they hold the
address. Eligibility and bans are checked here, so the CLI, an `ADD` by
email, the console and the API refuse the same addresses with the same words.
Conduct measures (moderation, suspension) are in `conduct.py` beside this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from listserv import bans, notices, owner_notices, roster
from listserv.actors import Actor, Auth
from listserv.acts.errors import Conflict, Invalid, NotFound
from listserv.acts.permissions import Need, require, require_self_or
from listserv.bounces.warnings import cancel_bounce_requests
from listserv.context import Context
from listserv.eligibility import Ineligible, InvalidAddress, check_address, normalise_address
from listserv.lists import eligibility_rule
from listserv.models import DeliveryMode, DeliveryStatus, MailingList, Member, Role


def a_role(role: Role) -> str:
    """ "a member", "an owner", "a moderator"."""
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def find(ctx: Context, mlist: MailingList, address: str, role: Role = Role.MEMBER) -> Member:
    """The roster row, or NotFound in the words every channel shows."""
    member = roster.find_member(ctx.session, mlist, address, role)
    if member is None:
        raise NotFound(f"{address} is not {a_role(role)} of {mlist.display_name}.", field="address")
    return member


def check_eligible(mlist: MailingList, address: str, *, force: bool) -> None:
    """Refuse an address the list's rule does not admit; `force` admits other domains only.

    `force` never lets through what is not a plain address (quoted local
    parts, IP literals, look-alike domains): those are refused for everyone.
    """
    verdict = check_address(address, eligibility_rule(mlist), mlist.display_name)
    if isinstance(verdict, Ineligible) and not (force and verdict.code == "domain-not-eligible"):
        raise Invalid(verdict.reason, field="address", code=verdict.code)


def _check_syntax(address: str) -> None:
    try:
        normalise_address(address)
    except InvalidAddress as exc:
        raise Invalid(f"{address!r} is not an email address: {exc}", field="address") from None


def add_member(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    address: str,
    *,
    name: str = "",
    title: str = "",
    role: Role = Role.MEMBER,
    force: bool = False,
    welcome: bool = True,
) -> Member:
    """Add an address at once (no confirmation): a member, or an owner or moderator.

    Members must pass the eligibility rule (owners may `force` another domain)
    and no ban; a member added gets the welcome message unless told not to.
    """
    require(ctx.session, actor, mlist, Need.MANAGE)
    address = address.strip().strip("<>").strip()
    if role == Role.MEMBER:
        check_eligible(mlist, address, force=force)
        if bans.is_banned(ctx, mlist, address):
            raise Conflict(
                f"{address} is banned from {mlist.display_name}; UNBAN it first to add it.",
                field="address",
                code="banned",
            )
    else:
        _check_syntax(address)
    if roster.find_member(ctx.session, mlist, address, role) is not None:
        raise Conflict(
            f"{address} is already {a_role(role)} of {mlist.display_name}.",
            field="address",
            code="already-member",
        )
    member = roster.add_member(
        ctx.session,
        mlist,
        address,
        name=name,
        title=title,
        role=role,
        actor=actor,
        source=ctx.source,
        now=ctx.now,
    )
    if welcome and role == Role.MEMBER:
        notices.send_notice(
            ctx, "welcome.txt.j2", member.address, mlist=mlist, member_name=member.display_name
        )
    return member


def remove_member(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    address: str,
    *,
    role: Role = Role.MEMBER,
    reason: str = "",
    goodbye: bool = False,
) -> str:
    """Remove a roster row; the removed address is returned.

    A member may remove themselves; anyone else needs to be an owner. The
    last owner, and owners or moderators the configuration file names (they
    would come back at the next start), cannot be removed.
    """
    if role == Role.MEMBER:
        require_self_or(ctx.session, actor, mlist, address, Need.MANAGE)
    else:
        require(ctx.session, actor, mlist, Need.MANAGE)
    member = find(ctx, mlist, address, role)
    if role != Role.MEMBER:
        _check_staff_removal(ctx, mlist, member)
    removed = member.address
    roster.remove_member(
        ctx.session, mlist, member, actor=actor, source=ctx.source, reason=reason, now=ctx.now
    )
    if goodbye:
        notices.send_notice(ctx, "goodbye.txt.j2", removed, mlist=mlist)
    if role == Role.MEMBER and actor.address.lower() == removed.lower():
        # A member leaving on their own (the one-click link): owners hear of it.
        how = "one-click link" if actor.auth == Auth.ONE_CLICK else actor.channel.value
        owner_notices.roster_changed(ctx, mlist, removed, owner_notices.LEFT, how=how)
    return removed


def _check_staff_removal(ctx: Context, mlist: MailingList, member: Member) -> None:
    configured = ctx.settings.list_named(mlist.name)
    if configured is not None:
        named = configured.owners if member.role == Role.OWNER else configured.moderators
        if member.address_key in {roster.address_key(a) for a in named}:
            raise Conflict(
                f"{member.address} is named in the configuration file; remove it there "
                "(it would be added again at the next start)",
                code="configured",
            )
    if member.role == Role.OWNER and len(roster.members(ctx.session, mlist, Role.OWNER)) <= 1:
        raise Conflict(
            f"{member.address} is the last owner of {mlist.display_name}; add another first",
            code="last-owner",
        )


@dataclass(frozen=True)
class Change:
    """What an act on a member changed: the member now, and the fields' values before."""

    member: Member
    before: dict[str, Any]

    @property
    def changed(self) -> bool:
        return bool(self.before)


def change_fields(
    ctx: Context, actor: Actor, mlist: MailingList, member: Member, fields: dict[str, Any]
) -> Change:
    """Several plain fields at once (one history event, one audit row); MANAGE or self.

    For the acts below and for `members set`, which changes delivery, name
    and title in one step; callers have validated the values.
    """
    require_self_or(ctx.session, actor, mlist, member.address, Need.MANAGE)
    before = roster.change_member(
        ctx.session, mlist, member, fields, actor=actor, source=ctx.source, now=ctx.now
    )
    return Change(member, before)


def set_delivery(
    ctx: Context, actor: Actor, mlist: MailingList, address: str, mode: DeliveryMode
) -> Change:
    """Every post, a digest, or no mail while staying a member."""
    member = find(ctx, mlist, address)
    return change_fields(ctx, actor, mlist, member, {"delivery_mode": mode})


def set_details(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    address: str,
    *,
    name: str | None = None,
    title: str | None = None,
) -> Change:
    """A member's display name and job title, as the roster shows them."""
    member = find(ctx, mlist, address)
    fields: dict[str, Any] = {}
    if name is not None:
        fields["display_name"] = clean_text(name)
    if title is not None:
        fields["job_title"] = clean_text(title)
    return change_fields(ctx, actor, mlist, member, fields)


def clean_text(text: str) -> str:
    """One line of at most 200 characters for a name or title field."""
    return " ".join(text.split())[:200]


#: Statuses re-enabling may lift: a suspension is a conduct measure, lifted as one.
ENABLEABLE = frozenset(
    {DeliveryStatus.ENABLED, DeliveryStatus.DISABLED_BOUNCING, DeliveryStatus.DISABLED_BY_OWNER}
)


def enable_delivery(ctx: Context, actor: Actor, mlist: MailingList, address: str) -> Change:
    """Turn delivery back on and forget the bounces (score, warnings, pending probes)."""
    member = find(ctx, mlist, address)
    require_self_or(ctx.session, actor, mlist, member.address, Need.MANAGE)
    if member.delivery_status not in ENABLEABLE:
        raise Conflict(
            f"{member.address} is suspended; lift the suspension to turn delivery back on",
            code="suspended",
        )
    before = roster.change_member(
        ctx.session,
        mlist,
        member,
        {
            "delivery_status": DeliveryStatus.ENABLED,
            "bounce_score": 0.0,
            "bounce_warnings_sent": 0,
            "last_warning_at": None,
        },
        actor=actor,
        source=ctx.source,
        now=ctx.now,
    )
    cancel_bounce_requests(
        ctx, mlist, member.address_key, f"delivery re-enabled by {actor.address}"
    )
    return Change(member, before)
