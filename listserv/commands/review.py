# SPDX-License-Identifier: Apache-2.0
"""REVIEW: the roster, for whom the list's `review_policy` allows.

REVIEW changes nothing and its answer goes only to the From address, so the
policy decides and being at that address (owners, members) is the proof; a
forged From sends the roster to the real owner of that address and the
forger learns nothing. An `Approved:` password proves an owner too.
"""

from __future__ import annotations

from listserv import audit, roster
from listserv.actors import Auth, email_actor
from listserv.commands.proof import authorize, no_such_list
from listserv.commands.request import CommandRequest
from listserv.commands.targets import site_line, target
from listserv.models import DeliveryMode, MailingList, Role
from listserv.outcomes import Outcome

#: REVIEW answers at most this many lines; the CLI exports any size.
REVIEW_LIMIT = 5000


def review(request: CommandRequest, args: list[str]) -> Outcome:
    """REVIEW list: the roster, for whom the list's review_policy allows.

    `public`: anyone; `members`: members, moderators and owners; `owners`:
    owners and moderators. The answer goes only to the From address, so a
    forged From sends the roster to the real owner of that address and the
    forger learns nothing. An `Approved:` password proves an owner too, and
    a wrong one gets nothing.
    """
    found = target(request, args, "review", "REVIEW list")
    if isinstance(found, Outcome):
        return found
    mlist, _ = found
    ctx = request.ctx
    creds = request.credentials
    policy = mlist.review_policy
    auth = Auth.FROM_ADDRESS
    staff = False
    if creds.confirmed is not None or creds.password is not None:
        grant = authorize(request, mlist, "review", site_line("review", mlist, []))
        if isinstance(grant, Outcome):
            return grant
        auth, staff = grant.auth, True
    else:
        roles = roster.roles_of(ctx.session, mlist, request.sender)
        staff = bool(roles & {Role.OWNER, Role.MODERATOR})
        allowed = policy == "public" or staff or (policy == "members" and Role.MEMBER in roles)
        if not allowed:
            audit.record_act(
                ctx.session,
                request.actor,
                "roster-review",
                list_name=mlist.name,
                source=ctx.source,
                outcome="refused",
                detail={"policy": policy},
                at=ctx.now,
            )
            if not mlist.public:
                return no_such_list("review", mlist.name)
            who = "its members" if policy == "members" else "its owners and moderators"
            return Outcome.refused(f"The roster of {mlist.display_name} is open only to {who}.")
        if policy == "public" and not roles:
            auth = Auth.NONE
    reviewer = request.sender if creds.confirmed is None else creds.confirmed[1]
    audit.record_act(
        ctx.session,
        email_actor(reviewer, auth),
        "roster-review",
        list_name=mlist.name,
        source=ctx.source,
        detail={"policy": policy},
        at=ctx.now,
    )
    return Outcome.info(roster_text(request, mlist, staff=staff))


def roster_text(request: CommandRequest, mlist: MailingList, *, staff: bool) -> str:
    """The roster as REVIEW shows it: settings and staff only to owners and moderators."""
    session = request.ctx.session
    everyone = roster.members(session, mlist)
    readers = [m for m in everyone if m.role == Role.MEMBER]
    lines = [f"{mlist.display_name}: {len(readers)} member(s)"]
    if staff:
        for role, label in ((Role.OWNER, "Owners"), (Role.MODERATOR, "Moderators")):
            addresses = [m.address for m in everyone if m.role == role]
            if addresses:
                lines.append(f"{label}: {', '.join(addresses)}")
    lines.append("")
    for member in readers[:REVIEW_LIMIT]:
        entry = member.address
        if member.display_name:
            entry += f"  {member.display_name}"
        if staff:
            flags = []
            if member.delivery_mode != DeliveryMode.REGULAR:
                flags.append(member.delivery_mode.upper())
            if member.delivery_status != "enabled":
                flags.append(member.delivery_status)
            if member.moderated:
                flags.append("moderated")
            if flags:
                entry += f"  ({', '.join(flags)})"
        lines.append(entry)
    if len(readers) > REVIEW_LIMIT:
        lines.append(
            f"… and {len(readers) - REVIEW_LIMIT} more; "
            f"`listserv members export {mlist.name}` on the host has them all."
        )
    return "\n".join(lines)
