# SPDX-License-Identifier: Apache-2.0
"""SET and QUERY: a member's own delivery settings."""

from __future__ import annotations

from listserv import roster
from listserv.acts import subscriptions
from listserv.commands.membership import resolve_list, unknown_list
from listserv.commands.request import CommandRequest
from listserv.outcomes import Outcome

SELF_OPTIONS = ("digest", "nomail", "mail")
#: `SET list DIGEST PLAIN` (RFC 1153 text) or `SET list DIGEST MIME` (multipart/digest).
DIGEST_FORMATS = ("plain", "mime")


def set_option(request: CommandRequest, args: list[str]) -> Outcome:
    mlist, rest = resolve_list(request, args)
    if mlist is None:
        return unknown_list(request, args)
    words = [w.lower() for w in rest]
    plain_or_mime = len(words) == 2 and words[0] == "digest" and words[1] in DIGEST_FORMATS
    if not (len(words) == 1 and words[0] in SELF_OPTIONS) and not plain_or_mime:
        return Outcome.error("Usage: SET list DIGEST [PLAIN|MIME]|NOMAIL|MAIL")
    return subscriptions.request_option(
        request.ctx, request.actor, mlist, request.sender, " ".join(words)
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
