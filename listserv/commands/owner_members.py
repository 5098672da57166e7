# SPDX-License-Identifier: Apache-2.0
"""Owner commands on one member by email: ADD, DELETE, SET, SUSPEND, LIFT.

Each command reads its words, asks `proof.authorize` whether the message
proves the sender may run it (a command from an owner's address without a
password waits for the owner's confirmation), then calls the act and turns
its result or refusal into the reply's line.
"""

from __future__ import annotations

from datetime import datetime

from listserv import conduct
from listserv.acts import conduct as conduct_acts
from listserv.acts import members
from listserv.acts.errors import ActError
from listserv.commands import preferences
from listserv.commands.identity import identity_from_lines
from listserv.commands.proof import authorize
from listserv.commands.request import CommandRequest
from listserv.commands.targets import (
    bare_address,
    refusal,
    site_line,
    target,
    until_and_note,
    usage_error,
)
from listserv.models import DeliveryMode, MailingList, Member
from listserv.outcomes import Outcome

#: SET options an owner may set for a member: a delivery mode, or no moderation.
DELIVERY_OPTIONS: dict[str, DeliveryMode] = {
    "digest": DeliveryMode.DIGEST,
    "nomail": DeliveryMode.NOMAIL,
    "mail": DeliveryMode.REGULAR,
}
#: SET options that put a member under moderation (acts.conduct.moderate).
MODERATE_WORDS = ("moderated", "moderate")
OWNER_OPTIONS = (*DELIVERY_OPTIONS, "unmoderated", *MODERATE_WORDS)


def add(request: CommandRequest, args: list[str]) -> Outcome:
    """ADD list address [Name, Title]: join a member at once (eligibility still applies)."""
    usage = "ADD list address [Name, Title]"
    found = target(request, args, "add", usage)
    if isinstance(found, Outcome):
        return found
    mlist, rest = found
    if not rest or "@" not in rest[0]:
        return Outcome.error(
            f"Usage: {usage} (for owners). To join yourself, send SUBSCRIBE {mlist.name.upper()}."
        )
    address = bare_address(rest[0])
    try:
        members.check_eligible(mlist, address, force=False)
    except ActError as exc:
        return refusal(exc)
    grant = authorize(request, mlist, "add", site_line("add", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    name, title = identity_from_lines([" ".join(rest[1:])]) if rest[1:] else ("", "")
    try:
        member = members.add_member(
            request.ctx, grant.actor, mlist, address, name=name, title=title
        )
    except ActError as exc:
        return refusal(exc)
    return Outcome.done(
        f"{member.address} was added to {mlist.display_name} and sent the welcome message."
    )


def delete(request: CommandRequest, args: list[str]) -> Outcome:
    """DELETE list address: remove a member (no confirmation, no goodbye, as on the host)."""
    usage = "DELETE list address"
    found = target(request, args, "delete", usage)
    if isinstance(found, Outcome):
        return found
    mlist, rest = found
    if len(rest) != 1 or "@" not in rest[0]:
        return Outcome.error(
            f"Usage: {usage} (for owners). To leave yourself, send SIGNOFF {mlist.name.upper()}."
        )
    grant = authorize(request, mlist, "delete", site_line("delete", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    try:
        removed = members.remove_member(
            request.ctx, grant.actor, mlist, bare_address(rest[0]), reason="deleted by an owner"
        )
    except ActError as exc:
        return refusal(exc)
    return Outcome.done(f"{removed} was removed from {mlist.display_name}.")


def set_option(request: CommandRequest, args: list[str]) -> Outcome:
    """SET: a member's own options (`SET list DIGEST`), or an owner's for a member.

    The owner form names the address: `SET list address DIGEST|NOMAIL|MAIL|
    MODERATED|UNMODERATED`, and `SET list address MODERATE [until DATE] [note]`.
    """
    at = 1 if request.site else 0
    if len(args) <= at or "@" not in args[at]:
        return preferences.set_option(request, args)
    usage = "SET list address DIGEST|NOMAIL|MAIL|MODERATED|UNMODERATED|MODERATE [until DATE] [note]"
    found = target(request, args, "set", usage)
    if isinstance(found, Outcome):
        return found
    mlist, rest = found
    if len(rest) < 2:
        return usage_error(usage)
    address, option, more = bare_address(rest[0]), rest[1].lower(), rest[2:]
    ctx = request.ctx
    until: datetime | None = None
    note = ""
    if option in MODERATE_WORDS:
        parsed = until_and_note(more, ctx.now, required=False)
        if isinstance(parsed, Outcome):
            return parsed
        until, note = parsed
    elif option not in OWNER_OPTIONS or more:
        return usage_error(usage)
    grant = authorize(request, mlist, "set", site_line("set", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    try:
        member = members.find(ctx, mlist, address)
        if option in MODERATE_WORDS:
            change = conduct_acts.moderate(
                ctx, grant.actor, mlist, address, until=until, note=note or member.conduct_note
            )
            if not change.changed:
                return Outcome.info(f"{member.address}: {conduct.describe(member)} (unchanged).")
            return _described(member, mlist)
        if option == "unmoderated":
            change = conduct_acts.unmoderate(ctx, grant.actor, mlist, address)
        else:
            change = members.set_delivery(
                ctx, grant.actor, mlist, address, DELIVERY_OPTIONS[option]
            )
    except ActError as exc:
        return refusal(exc)
    state = "is now" if change.changed else "was already"
    return Outcome.done(f"{member.address} {state} {option.upper()} on {mlist.display_name}.")


def suspend(request: CommandRequest, args: list[str]) -> Outcome:
    """SUSPEND list address until DATE [note]: no delivery and no posting until then."""
    usage = "SUSPEND list address until DATE [note]"
    found = target(request, args, "suspend", usage)
    if isinstance(found, Outcome):
        return found
    mlist, rest = found
    if len(rest) < 2 or "@" not in rest[0]:
        return usage_error(usage)
    ctx = request.ctx
    parsed = until_and_note(rest[1:], ctx.now, required=True)
    if isinstance(parsed, Outcome):
        return parsed
    until, note = parsed
    if until is None:
        return usage_error(usage)
    grant = authorize(request, mlist, "suspend", site_line("suspend", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    try:
        change = conduct_acts.suspend(
            ctx, grant.actor, mlist, bare_address(rest[0]), until=until, note=note
        )
    except ActError as exc:
        return refusal(exc)
    return _described(change.member, mlist)


def lift(request: CommandRequest, args: list[str]) -> Outcome:
    """LIFT list address: end a member's moderation and suspension now."""
    usage = "LIFT list address"
    found = target(request, args, "lift", usage)
    if isinstance(found, Outcome):
        return found
    mlist, rest = found
    if len(rest) != 1 or "@" not in rest[0]:
        return usage_error(usage)
    grant = authorize(request, mlist, "lift", site_line("lift", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    address = bare_address(rest[0])
    try:
        change = conduct_acts.lift(request.ctx, grant.actor, mlist, address)
    except ActError as exc:
        return refusal(exc)
    if not change.changed:
        return Outcome.info(f"{change.member.address} is under no measure on {mlist.display_name}.")
    return _described(change.member, mlist)


def _described(member: Member, mlist: MailingList) -> Outcome:
    return Outcome.done(f"{member.address} on {mlist.display_name}: {conduct.describe(member)}.")
