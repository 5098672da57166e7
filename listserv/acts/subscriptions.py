# SPDX-License-Identifier: Apache-2.0
"""Asking to join, to leave, or to change one's delivery: the double opt-in's first half.

Input is who asked (the From header of a mail, or an address typed into a
form), which list, and the channel; output is a pending request with a
hashed single-use token and a confirmation mailed to the address concerned —
never to a Reply-To or the envelope sender, so a forged From subscribes
nobody. What confirming does is in `confirmed.py`. Eligibility is
eligibility.py's; this module applies the list's rule and its limits: a
confirmation budget per address, and no reply at all past it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from email.utils import getaddresses

from listserv import audit, bans, notices, ratelimit, roster
from listserv.actors import Actor
from listserv.confirmations.pending import confirm_address, confirm_links, new_request
from listserv.context import Context
from listserv.eligibility import Eligible, Ineligible, check_address, check_from_header
from listserv.lists import eligibility_rule
from listserv.mailbox import canonical_address
from listserv.models import Channel, IneligiblePolicy, MailingList, RequestKind
from listserv.outcomes import Outcome


@dataclass(frozen=True)
class Requester:
    """Who is asking: a From header (email) or a typed address (web, CLI)."""

    from_header: str = ""
    address: str = ""
    name: str = ""
    title: str = ""


def _check(mlist: MailingList, requester: Requester) -> Eligible | Ineligible:
    rule = eligibility_rule(mlist)
    label = mlist.display_name
    if requester.from_header:
        return check_from_header(requester.from_header, rule, label)
    return check_address(requester.address, rule, label)


def confirmation_budget(ctx: Context, address: str) -> bool:
    """Whether one more confirmation may go to this address today (mail-bomb guard)."""
    return ratelimit.allow(
        ctx.session,
        f"confirm-to:{roster.address_key(address)}",
        ctx.settings.limits.confirmations_per_address_per_day,
        timedelta(days=1),
        ctx.now,
    )


def _reply_address(requester: Requester) -> str | None:
    """Where a refusal may go: the addr-spec the request came from, if it parses."""
    if requester.from_header:
        pairs = [a for _, a in getaddresses([requester.from_header]) if "@" in a]
        if len(pairs) != 1 or any(c in pairs[0] for c in "\r\n"):
            return None
        return pairs[0]
    return requester.address or None


def _by_mail(actor: Actor) -> bool:
    return actor.channel == Channel.EMAIL


def _audit(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    action: str,
    address: str,
    outcome: str,
    **detail: object,
) -> None:
    audit.record_act(
        ctx.session,
        replace(actor, address=address),
        action,
        list_name=mlist.name,
        target=address,
        source=ctx.source,
        outcome=outcome,
        detail=dict(detail),
        at=ctx.now,
    )


def request_join(ctx: Context, actor: Actor, mlist: MailingList, requester: Requester) -> Outcome:
    """Start a subscription: check the rule, then mail a confirmation to the address."""
    verdict = _check(mlist, requester)
    needs_approval = False
    if isinstance(verdict, Ineligible):
        reply_to = _reply_address(requester)
        holds = mlist.ineligible_policy == IneligiblePolicy.HOLD
        if verdict.code == "domain-not-eligible" and holds and reply_to:
            needs_approval = True
            address = reply_to
        else:
            who = reply_to or requester.from_header[:200]
            _audit(ctx, actor, mlist, "subscribe-refused", who, "refused",
                   code=verdict.code, reason=verdict.reason)  # fmt: skip
            notified = False
            if reply_to and _by_mail(actor) and confirmation_budget(ctx, reply_to):
                notices.send_notice(
                    ctx, "subscribe_refused.txt.j2", reply_to, mlist=mlist, reason=verdict.reason
                )
                notified = True
            return Outcome.refused(verdict.reason, notified=notified)
    else:
        address = verdict.address if not requester.address else requester.address.strip()
        if requester.from_header:
            address = getaddresses([requester.from_header])[0][1] or verdict.address
        address = canonical_address(address)  # stored, matched and mailed as folded

    if bans.is_banned(ctx, mlist, address):
        _audit(ctx, actor, mlist, "subscribe-refused", address, "banned")
        return Outcome.refused(f"{address} may not join {mlist.display_name}.")

    if roster.find_member(ctx.session, mlist, address) is not None:
        text = f"{address} is already a member of {mlist.display_name}."
        if _by_mail(actor) and confirmation_budget(ctx, address):
            notices.send_notice(ctx, "already_member.txt.j2", address, mlist=mlist)
            return Outcome.info(text, notified=True)
        return Outcome.info(text)

    if not confirmation_budget(ctx, address):
        _audit(ctx, actor, mlist, "subscribe-rate-limited", address, "rate-limited")
        # notified=True: nothing more may be mailed to this address today, not even a reply.
        return Outcome.refused(
            f"Too many confirmation requests for {address} today; please try again tomorrow.",
            notified=True,
        )

    payload: dict[str, object] = {
        "name": requester.name.strip()[:200],
        "title": requester.title.strip()[:200],
        "channel": actor.channel.value,
        "needs_approval": needs_approval,
    }
    request_id, token = new_request(ctx, mlist, RequestKind.SUBSCRIBE, address, payload)
    notices.send_notice(
        ctx,
        "confirm_subscribe.txt.j2",
        address,
        mlist=mlist,
        reply_to=confirm_address(mlist, token),
        name=payload["name"],
        title=payload["title"],
        **confirm_links(ctx, mlist, token),
    )
    _audit(ctx, actor, mlist, "subscribe-requested", address, "pending",
           request=request_id, needs_approval=needs_approval)  # fmt: skip
    return Outcome.pending(
        f"A confirmation was sent to {address}; reply to it to join {mlist.display_name}.",
        notified=True,
    )


def request_leave(ctx: Context, actor: Actor, mlist: MailingList, address: str) -> Outcome:
    """Start leaving: confirmation to the member's own address, as for joining."""
    member = roster.find_member(ctx.session, mlist, address)
    if member is None:
        text = f"{address} is not a member of {mlist.display_name}."
        if _by_mail(actor) and confirmation_budget(ctx, address):
            notices.send_notice(ctx, "not_member.txt.j2", address, mlist=mlist)
            return Outcome.refused(text, notified=True)
        return Outcome.refused(text)
    if not confirmation_budget(ctx, member.address):
        return Outcome.refused(
            f"Too many confirmation requests for {address} today; please try again tomorrow.",
            notified=True,
        )
    request_id, token = new_request(
        ctx, mlist, RequestKind.UNSUBSCRIBE, member.address, {"channel": actor.channel.value}
    )
    notices.send_notice(
        ctx,
        "confirm_unsubscribe.txt.j2",
        member.address,
        mlist=mlist,
        reply_to=confirm_address(mlist, token),
        **confirm_links(ctx, mlist, token),
    )
    _audit(ctx, actor, mlist, "unsubscribe-requested", member.address, "pending",
           request=request_id)  # fmt: skip
    return Outcome.pending(
        f"A confirmation was sent to {member.address}; reply to it to leave {mlist.display_name}.",
        notified=True,
    )


def request_option(
    ctx: Context, actor: Actor, mlist: MailingList, address: str, option: str
) -> Outcome:
    """SET DIGEST|NOMAIL|MAIL for one's own membership, confirmed like leaving."""
    member = roster.find_member(ctx.session, mlist, address)
    if member is None:
        return Outcome.refused(f"{address} is not a member of {mlist.display_name}.")
    if not confirmation_budget(ctx, member.address):
        return Outcome.refused(
            f"Too many confirmation requests for {address} today.", notified=True
        )
    _, token = new_request(ctx, mlist, RequestKind.SET_OPTION, member.address, {"option": option})
    notices.send_notice(
        ctx,
        "confirm_option.txt.j2",
        member.address,
        mlist=mlist,
        reply_to=confirm_address(mlist, token),
        option=option,
        **confirm_links(ctx, mlist, token),
    )
    return Outcome.pending(
        f"A confirmation was sent to {member.address} to set {option.upper()}.", notified=True
    )
