# SPDX-License-Identifier: Apache-2.0
"""Owner commands on the whole list by email: HOLD, FREE, BAN, UNBAN.

HOLD is emergency moderation (every post held until FREE); BAN bars an
address, a `*@domain` glob or a `^regex` from joining and posting. Each is
proved by `proof.authorize` and done by its act.
"""

from __future__ import annotations

from listserv import bans
from listserv.acts import bans as ban_acts
from listserv.acts import lists as list_acts
from listserv.acts.errors import ActError
from listserv.commands.proof import authorize
from listserv.commands.request import CommandRequest
from listserv.commands.targets import refusal, site_line, target, usage_error
from listserv.models import Role
from listserv.outcomes import Outcome


def _emergency(request: CommandRequest, args: list[str], word: str, on: bool) -> Outcome:
    usage = f"{word.upper()} list"
    found = target(request, args, word, usage)
    if isinstance(found, Outcome):
        return found
    mlist, rest = found
    if rest:
        return usage_error(usage)
    grant = authorize(request, mlist, word, site_line(word, mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    if not list_acts.set_emergency_hold(request.ctx, grant.actor, mlist, on):
        state = "already holding every post" if on else "not holding posts"
        return Outcome.info(f"{mlist.display_name} is {state}.")
    if on:
        return Outcome.done(
            f"{mlist.display_name} now holds every post for the moderators; FREE ends it."
        )
    return Outcome.done(f"{mlist.display_name} no longer holds every post.")


def hold(request: CommandRequest, args: list[str]) -> Outcome:
    return _emergency(request, args, "hold", True)


def free(request: CommandRequest, args: list[str]) -> Outcome:
    return _emergency(request, args, "free", False)


def ban(request: CommandRequest, args: list[str]) -> Outcome:
    """BAN list address-or-pattern [reason]: may neither join nor post."""
    usage = "BAN list address-or-pattern [reason]"
    found = target(request, args, "ban", usage)
    if isinstance(found, Outcome):
        return found
    mlist, rest = found
    if not rest:
        return usage_error(usage)
    try:
        bans.normalise_pattern(rest[0])
    except bans.BanError as exc:
        return Outcome.error(str(exc))
    grant = authorize(request, mlist, "ban", site_line("ban", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    ctx = request.ctx
    try:
        stored = ban_acts.ban(ctx, grant.actor, mlist, rest[0], reason=" ".join(rest[1:]))
    except ActError as exc:
        return refusal(exc)
    matching = [
        m
        for m in bans.members_matching(ctx.session, mlist, stored.pattern)
        if m.role == Role.MEMBER
    ]
    text = f"{stored.pattern} is banned from {mlist.display_name}."
    if matching:
        text += (
            f" {len(matching)} current member(s) match and stay until you DELETE them: "
            + ", ".join(m.address for m in matching[:10])
            + (" …" if len(matching) > 10 else "")
        )
    return Outcome.done(text)


def unban(request: CommandRequest, args: list[str]) -> Outcome:
    """UNBAN list pattern."""
    usage = "UNBAN list address-or-pattern"
    found = target(request, args, "unban", usage)
    if isinstance(found, Outcome):
        return found
    mlist, rest = found
    if len(rest) != 1:
        return usage_error(usage)
    grant = authorize(request, mlist, "unban", site_line("unban", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    try:
        ban_acts.unban(request.ctx, grant.actor, mlist, rest[0])
    except ActError:
        return Outcome.refused(f"{rest[0]} is not banned on {mlist.display_name}.")
    return Outcome.done(f"The ban on {rest[0]} was lifted on {mlist.display_name}.")
