# SPDX-License-Identifier: Apache-2.0
"""Owner and moderator commands by email: run a list without a shell.

At the site address the list is named first (LISTSERV syntax: `ADD SM-COP
jane@agency.gov Jane Doe`); at `LIST-request@` it is implied (`ADD
jane@agency.gov Jane Doe`). Held posts are numbered plainly (`APPROVE 12`),
subscription requests awaiting approval with an R (`APPROVE R7`), as the
notices that announce them print them.

Every command first resolves its list and checks its arguments, then asks
`owner_auth.authorize` whether the message proves the sender may run it; a
command from an owner's address without a password is only recorded, and
runs when the owner answers the confirmation sent to the roster address.
What changes goes through the modules that audit it (roster, lists, bans,
conduct, moderation, subscriptions) with the actor and how they proved it.

REVIEW is the exception: it changes nothing and its answer goes only to the
From address, so the list's `review_policy` decides, and being at that
address (owners, members) is the proof.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from listserv import audit, bans, conduct, lists, notices, roster, subscriptions
from listserv.commands import CommandRequest, parse_line, preferences, run
from listserv.commands import moderate as moderate_reply
from listserv.commands.membership import identity_from_lines
from listserv.context import Context
from listserv.eligibility import Ineligible, check_address
from listserv.models import (
    DeliveryMode,
    MailingList,
    Member,
    PendingRequest,
    Post,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.outcomes import Outcome
from listserv.owner_auth import (
    Credentials,
    Grant,
    authorize,
    credentials,
    hidden,
    no_such_list,
    not_staff,
    staff_row,
)

_POST_ID = re.compile(r"^#?(\d{1,12})$")
_REQUEST_ID = re.compile(r"^r#?(\d{1,12})$", re.IGNORECASE)
_RELATIVE = re.compile(r"^(\d{1,4})([hdw])$", re.IGNORECASE)

#: REVIEW answers at most this many lines; the CLI exports any size.
REVIEW_LIMIT = 5000

#: SET options an owner may set for a member, and what each changes.
MEMBER_OPTIONS: dict[str, dict[str, Any]] = {
    "digest": {"delivery_mode": DeliveryMode.DIGEST},
    "nomail": {"delivery_mode": DeliveryMode.NOMAIL},
    "mail": {"delivery_mode": DeliveryMode.REGULAR},
    "unmoderated": {"moderated": False, "moderated_until": None},
}
#: SET options that put a member under moderation (conduct.moderate_member).
MODERATE_WORDS = ("moderated", "moderate")


# --------------------------------------------------------------------------- helpers


def _target(
    request: CommandRequest, args: list[str], word: str, usage: str
) -> tuple[MailingList, list[str]] | Outcome:
    """The list a command acts on and its remaining words, or the refusal to answer."""
    if request.site:
        if not args:
            return Outcome.error(f"Name the list: {usage}")
        name, rest = args[0], args[1:]
        mlist = lists.get_list(request.ctx.session, name)
    else:
        mlist, rest = request.mlist, args
        name = mlist.name if mlist is not None else ""
    if mlist is None or hidden(request, mlist):
        return no_such_list(word, name)
    return mlist, rest


def _line(word: str, mlist: MailingList, rest: list[str]) -> str:
    """The command in site syntax, as stored for confirmation and replayed."""
    return " ".join([word.upper(), mlist.name.upper(), *rest])


def _address(text: str) -> str:
    return text.strip().strip("<>").strip()


def _usage(usage: str) -> Outcome:
    return Outcome.error(f"Usage: {usage}")


def _member(request: CommandRequest, mlist: MailingList, address: str) -> Member | Outcome:
    """The member with this address, or the refusal to send back."""
    member = roster.find_member(request.ctx.session, mlist, address)
    if member is None:
        return Outcome.refused(f"{address} is not a member of {mlist.display_name}.")
    return member


def parse_until(word: str, now: datetime) -> datetime | None:
    """An end date: `2025-07-01` (00:00 UTC that day), `2025-07-01T12:00`, or `14d`/`2w`/`12h`."""
    relative = _RELATIVE.match(word)
    if relative:
        count, unit = int(relative.group(1)), relative.group(2).lower()
        return now + {"h": timedelta(hours=count), "d": timedelta(days=count)}.get(
            unit, timedelta(weeks=count)
        )
    try:
        when = datetime.fromisoformat(word)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _until_and_note(
    words: list[str], now: datetime, *, required: bool
) -> tuple[datetime | None, str] | Outcome:
    """`[until] DATE [note…]` → (end, note); DATE may be left out when not required."""
    rest = list(words)
    if rest and rest[0].lower() == "until":
        rest = rest[1:]
        if not rest:
            return Outcome.error("UNTIL needs a date: 2025-07-01, 2025-07-01T12:00 or 14d.")
    until = parse_until(rest[0], now) if rest else None
    if until is not None:
        rest = rest[1:]
    elif required or (words and words[0].lower() == "until"):
        shown = rest[0] if rest else ""
        return Outcome.error(
            f"{shown!r} is not a date; write 2025-07-01, 2025-07-01T12:00 or 14d."
            if shown
            else "Give the end date: UNTIL 2025-07-01 (or 14d)."
        )
    return until, " ".join(rest)


# --------------------------------------------------------------------------- membership


def add(request: CommandRequest, args: list[str]) -> Outcome:
    """ADD list address [Name, Title]: join a member at once (eligibility still applies)."""
    usage = "ADD list address [Name, Title]"
    target = _target(request, args, "add", usage)
    if isinstance(target, Outcome):
        return target
    mlist, rest = target
    if not rest or "@" not in rest[0]:
        return Outcome.error(
            f"Usage: {usage} (for owners). To join yourself, send SUBSCRIBE {mlist.name.upper()}."
        )
    address = _address(rest[0])
    verdict = check_address(address, lists.eligibility_rule(mlist), mlist.display_name)
    if isinstance(verdict, Ineligible):
        return Outcome.refused(verdict.reason)
    grant = authorize(request, mlist, "add", _line("add", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    ctx = request.ctx
    if bans.is_banned(ctx, mlist, address):
        return Outcome.refused(
            f"{address} is banned from {mlist.display_name}; UNBAN it first to add it."
        )
    if roster.find_member(ctx.session, mlist, address) is not None:
        return Outcome.info(f"{address} is already a member of {mlist.display_name}.")
    name, title = identity_from_lines([" ".join(rest[1:])]) if rest[1:] else ("", "")
    member = roster.add_member(
        ctx.session,
        mlist,
        address,
        name=name,
        title=title,
        actor=grant.actor,
        channel=ctx.channel,
        auth=grant.auth,
        source=ctx.source,
        now=ctx.now,
    )
    notices.send_notice(
        ctx, "welcome.txt.j2", member.address, mlist=mlist, member_name=member.display_name
    )
    return Outcome.done(
        f"{member.address} was added to {mlist.display_name} and sent the welcome message."
    )


def delete(request: CommandRequest, args: list[str]) -> Outcome:
    """DELETE list address: remove a member (no confirmation, no goodbye, as on the host)."""
    usage = "DELETE list address"
    target = _target(request, args, "delete", usage)
    if isinstance(target, Outcome):
        return target
    mlist, rest = target
    if len(rest) != 1 or "@" not in rest[0]:
        return Outcome.error(
            f"Usage: {usage} (for owners). To leave yourself, send SIGNOFF {mlist.name.upper()}."
        )
    address = _address(rest[0])
    grant = authorize(request, mlist, "delete", _line("delete", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    ctx = request.ctx
    member = _member(request, mlist, address)
    if isinstance(member, Outcome):
        return member
    roster.remove_member(
        ctx.session,
        mlist,
        member,
        actor=grant.actor,
        channel=ctx.channel,
        auth=grant.auth,
        source=ctx.source,
        reason="deleted by an owner",
        now=ctx.now,
    )
    return Outcome.done(f"{member.address} was removed from {mlist.display_name}.")


# --------------------------------------------------------------------------- the roster


def review(request: CommandRequest, args: list[str]) -> Outcome:
    """REVIEW list: the roster, for whom the list's review_policy allows.

    `public`: anyone; `members`: members, moderators and owners; `owners`:
    owners and moderators. The answer goes only to the From address, so a
    forged From sends the roster to the real owner of that address and the
    forger learns nothing. An `Approved:` password proves an owner too, and
    a wrong one gets nothing.
    """
    target = _target(request, args, "review", "REVIEW list")
    if isinstance(target, Outcome):
        return target
    mlist, _ = target
    ctx = request.ctx
    creds = credentials(request)
    policy = mlist.review_policy
    auth = "from-address"
    staff = False
    if creds.confirmed is not None or creds.password is not None:
        grant = authorize(request, mlist, "review", _line("review", mlist, []))
        if isinstance(grant, Outcome):
            return grant
        auth, staff = grant.auth, True
    else:
        roles = roster.roles_of(ctx.session, mlist, request.sender)
        staff = bool(roles & {Role.OWNER, Role.MODERATOR})
        allowed = policy == "public" or staff or (policy == "members" and Role.MEMBER in roles)
        if not allowed:
            audit.record(
                ctx.session,
                "roster-review",
                channel=ctx.channel,
                list_name=mlist.name,
                actor=request.sender,
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
            auth = ""
    audit.record(
        ctx.session,
        "roster-review",
        channel=ctx.channel,
        list_name=mlist.name,
        actor=request.sender if creds.confirmed is None else creds.confirmed[1],
        source=ctx.source,
        auth=auth,
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


# --------------------------------------------------------------------------- held posts, requests


def _item(request: CommandRequest, ident: str) -> Post | PendingRequest | None:
    session = request.ctx.session
    post_id = _POST_ID.match(ident)
    if post_id:
        return session.get(Post, int(post_id.group(1)))
    request_id = _REQUEST_ID.match(ident)
    if request_id:
        found = session.get(PendingRequest, int(request_id.group(1)))
        if found is not None and found.kind == RequestKind.SUBSCRIBE:
            return found
    return None


def _is_id(word: str) -> bool:
    return bool(_POST_ID.match(word) or _REQUEST_ID.match(word))


def _nothing_to_decide(word: str, ident: str) -> Outcome:
    """One answer for an id that does not exist and one the sender may not see."""
    return Outcome.refused(
        f"{word.upper()} {ident}: there is no such held post or request here, "
        "or you may not decide it."
    )


def _decision(request: CommandRequest, args: list[str], word: str) -> Outcome:
    """APPROVE|REJECT|DISCARD [list] id [reason]: a held post (12) or a request (R7)."""
    usage = f"{word.upper()} list id [reason]   (post 12, subscription request R7)"
    mlist: MailingList | None = None
    rest = args
    if request.site and args and not _is_id(args[0]):
        target = _target(request, args, word, usage)
        if isinstance(target, Outcome):
            return target
        mlist, rest = target
    elif not request.site:
        mlist = request.mlist
    if not rest or not _is_id(rest[0]):
        return _usage(usage)
    ident, reason = rest[0].upper(), " ".join(rest[1:])
    item = _item(request, ident)
    if item is None or item.list_id is None or (mlist is not None and item.list_id != mlist.id):
        return _nothing_to_decide(word, ident)
    session = request.ctx.session
    mlist = session.get(MailingList, item.list_id)
    if mlist is None or hidden(request, mlist):
        return _nothing_to_decide(word, ident)
    creds = credentials(request)
    if (
        creds.password is None
        and creds.confirmed is None
        and staff_row(session, mlist, request.sender) is None
    ):
        not_staff(request, mlist, word)  # audited; the answer stays the neutral one
        return _nothing_to_decide(word, ident)
    grant = authorize(request, mlist, word, _line(word, mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    if isinstance(item, Post):
        return _decide_post(request, item, word, reason, grant)
    return _decide_request(request, item, word, reason, grant)


def _decide_post(
    request: CommandRequest, post: Post, word: str, reason: str, grant: Grant
) -> Outcome:
    from listserv import moderation

    ctx = request.ctx
    if word == "approve":
        return moderation.approve_post(ctx, post, actor=grant.actor, auth=grant.auth)
    if word == "reject":
        return moderation.reject_post(ctx, post, actor=grant.actor, auth=grant.auth, reason=reason)
    return moderation.discard_post(ctx, post, actor=grant.actor, auth=grant.auth)


def _decide_request(
    request: CommandRequest, pending: PendingRequest, word: str, reason: str, grant: Grant
) -> Outcome:
    ctx = request.ctx
    if word == "discard":
        outcome = discard_request(request.ctx, pending, actor=grant.actor, auth=grant.auth)
    else:
        outcome = subscriptions.decide(
            ctx,
            pending,
            approve=word == "approve",
            actor=grant.actor,
            auth=grant.auth,
            reason=reason,
        )
    moderate_reply.close_request_tokens(ctx, pending, grant.actor)
    # The welcome or refusal went to the requester; the owner is still owed the result.
    return replace(outcome, notified=False)


def discard_request(ctx: Context, pending: PendingRequest, *, actor: str, auth: str) -> Outcome:
    """Turn a subscription request down without telling the requester (DISCARD)."""
    mlist = ctx.session.get(MailingList, pending.list_id) if pending.list_id else None
    if mlist is None or pending.status != RequestStatus.AWAITING_APPROVAL:
        by = f" by {pending.resolved_by}" if pending.resolved_by else ""
        return Outcome.refused(f"Request R{pending.id} was already handled{by}.")
    pending.status = RequestStatus.REJECTED
    pending.resolved_at = ctx.now
    pending.resolved_by = actor[:320]
    pending.reason = "discarded"
    audit.record(
        ctx.session,
        "subscribe-discarded",
        channel=ctx.channel,
        list_name=mlist.name,
        actor=actor,
        target=pending.address,
        source=ctx.source,
        auth=auth,
        detail={"request": pending.id},
        at=ctx.now,
    )
    return Outcome.done(f"Request R{pending.id} from {pending.address} discarded; nobody was told.")


def approve(request: CommandRequest, args: list[str]) -> Outcome:
    return _decision(request, args, "approve")


def reject(request: CommandRequest, args: list[str]) -> Outcome:
    return _decision(request, args, "reject")


def discard(request: CommandRequest, args: list[str]) -> Outcome:
    return _decision(request, args, "discard")


# --------------------------------------------------------------------------- the list


def _emergency(request: CommandRequest, args: list[str], word: str, on: bool) -> Outcome:
    usage = f"{word.upper()} list"
    target = _target(request, args, word, usage)
    if isinstance(target, Outcome):
        return target
    mlist, rest = target
    if rest:
        return _usage(usage)
    grant = authorize(request, mlist, word, _line(word, mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    ctx = request.ctx
    changed = lists.change_list(
        ctx.session,
        mlist,
        {"emergency_hold": on},
        actor=grant.actor,
        channel=ctx.channel,
        auth=grant.auth,
        source=ctx.source,
    )
    if not changed:
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
    target = _target(request, args, "ban", usage)
    if isinstance(target, Outcome):
        return target
    mlist, rest = target
    if not rest:
        return _usage(usage)
    try:
        bans.normalise_pattern(rest[0])
    except bans.BanError as exc:
        return Outcome.error(str(exc))
    grant = authorize(request, mlist, "ban", _line("ban", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    ctx = request.ctx
    try:
        stored = bans.add_ban(
            ctx, mlist, rest[0], actor=grant.actor, auth=grant.auth, reason=" ".join(rest[1:])
        )
    except bans.BanError as exc:
        return Outcome.refused(str(exc))
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
    target = _target(request, args, "unban", usage)
    if isinstance(target, Outcome):
        return target
    mlist, rest = target
    if len(rest) != 1:
        return _usage(usage)
    grant = authorize(request, mlist, "unban", _line("unban", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    if not bans.remove_ban(request.ctx, mlist, rest[0], actor=grant.actor, auth=grant.auth):
        return Outcome.refused(f"{rest[0]} is not banned on {mlist.display_name}.")
    return Outcome.done(f"The ban on {rest[0]} was lifted on {mlist.display_name}.")


# --------------------------------------------------------------------------- one member


def set_option(request: CommandRequest, args: list[str]) -> Outcome:
    """SET: a member's own options (`SET list DIGEST`), or an owner's for a member.

    The owner form names the address: `SET list address DIGEST|NOMAIL|MAIL|
    MODERATED|UNMODERATED`, and `SET list address MODERATE [until DATE] [note]`.
    """
    at = 1 if request.site else 0
    if len(args) <= at or "@" not in args[at]:
        return preferences.set_option(request, args)
    usage = "SET list address DIGEST|NOMAIL|MAIL|MODERATED|UNMODERATED|MODERATE [until DATE] [note]"
    target = _target(request, args, "set", usage)
    if isinstance(target, Outcome):
        return target
    mlist, rest = target
    if len(rest) < 2:
        return _usage(usage)
    address, option, more = _address(rest[0]), rest[1].lower(), rest[2:]
    ctx = request.ctx
    until: datetime | None = None
    note = ""
    if option in MODERATE_WORDS:
        parsed = _until_and_note(more, ctx.now, required=False)
        if isinstance(parsed, Outcome):
            return parsed
        until, note = parsed
    elif option not in MEMBER_OPTIONS or more:
        return _usage(usage)
    grant = authorize(request, mlist, "set", _line("set", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    member = _member(request, mlist, address)
    if isinstance(member, Outcome):
        return member
    if option in MODERATE_WORDS:
        try:
            changed = conduct.moderate_member(
                ctx,
                mlist,
                member,
                until=until,
                note=note or member.conduct_note,
                actor=grant.actor,
                auth=grant.auth,
            )
        except conduct.ConductError as exc:
            return Outcome.error(f"{exc}.")
        if not changed:
            return Outcome.info(f"{member.address}: {conduct.describe(member)} (unchanged).")
        return Outcome.done(
            f"{member.address} on {mlist.display_name}: {conduct.describe(member)}."
        )
    changed = roster.change_member(
        ctx.session,
        mlist,
        member,
        dict(MEMBER_OPTIONS[option]),
        actor=grant.actor,
        channel=ctx.channel,
        auth=grant.auth,
        source=ctx.source,
        now=ctx.now,
    )
    state = "is now" if changed else "was already"
    return Outcome.done(f"{member.address} {state} {option.upper()} on {mlist.display_name}.")


def suspend(request: CommandRequest, args: list[str]) -> Outcome:
    """SUSPEND list address until DATE [note]: no delivery and no posting until then."""
    usage = "SUSPEND list address until DATE [note]"
    target = _target(request, args, "suspend", usage)
    if isinstance(target, Outcome):
        return target
    mlist, rest = target
    if len(rest) < 2 or "@" not in rest[0]:
        return _usage(usage)
    ctx = request.ctx
    parsed = _until_and_note(rest[1:], ctx.now, required=True)
    if isinstance(parsed, Outcome):
        return parsed
    until, note = parsed
    assert until is not None
    grant = authorize(request, mlist, "suspend", _line("suspend", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    address = _address(rest[0])
    member = _member(request, mlist, address)
    if isinstance(member, Outcome):
        return member
    try:
        conduct.suspend_member(
            ctx, mlist, member, until=until, note=note, actor=grant.actor, auth=grant.auth
        )
    except conduct.ConductError as exc:
        return Outcome.error(f"{exc}.")
    return Outcome.done(f"{member.address} on {mlist.display_name}: {conduct.describe(member)}.")


def lift(request: CommandRequest, args: list[str]) -> Outcome:
    """LIFT list address: end a member's moderation and suspension now."""
    usage = "LIFT list address"
    target = _target(request, args, "lift", usage)
    if isinstance(target, Outcome):
        return target
    mlist, rest = target
    if len(rest) != 1 or "@" not in rest[0]:
        return _usage(usage)
    grant = authorize(request, mlist, "lift", _line("lift", mlist, rest))
    if isinstance(grant, Outcome):
        return grant
    ctx = request.ctx
    address = _address(rest[0])
    member = _member(request, mlist, address)
    if isinstance(member, Outcome):
        return member
    changed = conduct.lift_conduct(ctx, mlist, member, actor=grant.actor, auth=grant.auth)
    if not changed:
        return Outcome.info(f"{member.address} is under no measure on {mlist.display_name}.")
    return Outcome.done(f"{member.address} on {mlist.display_name}: {conduct.describe(member)}.")


# --------------------------------------------------------------------------- confirmed replay


def run_confirmed(
    ctx: Context, mlist: MailingList, pending: PendingRequest, confirmer: str
) -> Outcome:
    """Carry out an `owner-commands` request whose confirmation came back.

    The commands run as the owner the confirmation went to (auth
    `confirmed-reply`), and their results go to that owner's address, not to
    whoever sent the reply, so a forwarded confirmation shows nobody a roster.
    """
    lines = [str(line) for line in (pending.payload or {}).get("commands", [])]
    request = CommandRequest(
        ctx=ctx,
        mlist=None,
        sender=pending.address,
        from_header=f"<{pending.address}>",
        message=EmailMessage(),
        site=True,
        credentials=Credentials(confirmed=(mlist.id, pending.address)),
    )
    invocations = [inv for inv in (parse_line(line) for line in lines) if inv is not None]
    results = run(request, invocations)
    notices.send_notice(
        ctx,
        "owner_results.txt.j2",
        pending.address,
        mlist=mlist,
        results=[
            {"line": line, "status": outcome.status.value, "text": outcome.text}
            for line, outcome in results
        ],
    )
    audit.record(
        ctx.session,
        "owner-commands-confirmed",
        channel=ctx.channel,
        list_name=mlist.name,
        actor=pending.address,
        target=pending.address,
        source=ctx.source,
        auth="confirmed-reply",
        detail={
            "request": pending.id,
            "confirmed_by": confirmer,
            "results": [{"line": line, "status": o.status.value} for line, o in results],
        },
        at=ctx.now,
    )
    done = sum(1 for _, o in results if o.status.value in ("done", "info"))
    return Outcome.done(
        f"{done} of the {len(results)} command(s) for {mlist.display_name} you confirmed were "
        f"carried out; the results were mailed to {pending.address}.",
        notified=True,
    )
