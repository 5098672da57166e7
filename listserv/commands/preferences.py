# SPDX-License-Identifier: Apache-2.0
"""SET and QUERY: a member's own delivery settings."""

from __future__ import annotations

from listserv import roster
from listserv.acts import subscriptions
from listserv.commands.membership import resolve_list, unknown_list
from listserv.commands.request import CommandRequest
from listserv.outcomes import Outcome

SELF_OPTIONS = ("digest", "nomail", "mail")


def set_option(request: CommandRequest, args: list[str]) -> Outcome:
    mlist, rest = resolve_list(request, args)
    if mlist is None:
        return unknown_list(request, args)
    if len(rest) != 1 or rest[0].lower() not in SELF_OPTIONS:
        return Outcome.error("Usage: SET list DIGEST|NOMAIL|MAIL")
    return subscriptions.request_option(
        request.ctx, request.actor, mlist, request.sender, rest[0].lower()
    )


def query(request: CommandRequest, args: list[str]) -> Outcome:
    """Answer goes to the From address only, so a forged From learns nothing."""
    mlist, _ = resolve_list(request, args)
    if mlist is None:
        return unknown_list(request, args)
    member = roster.find_member(request.ctx.session, mlist, request.sender)
    if member is None:
        return Outcome.info(f"{request.sender} is not a member of {mlist.display_name}.")
    return Outcome.info(
        f"{member.address} on {mlist.display_name}: name {member.display_name or '-'}, "
        f"delivery {member.delivery_mode.upper()}, status {member.delivery_status}, "
        f"member since {member.joined_at:%Y-%m-%d}."
    )
