# SPDX-License-Identifier: Apache-2.0
"""Double opt-in: requests to join or leave, their confirmations, owner approval.

Input is who asked (the From header or a web form's address), which list, and
the channel; output is a `PendingRequest` with a hashed single-use token and
a confirmation mailed to the address concerned — never to a Reply-To or the
envelope sender, so a forged From subscribes nobody. `confirm()` carries the
request out, whoever sends the token back: holding the token is the proof.
Eligibility lives in eligibility.py; this module only applies the list's rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from listserv import audit, bounces, notices, ratelimit, roster
from listserv.bans import is_banned  # re-exported: bans live in bans.py
from listserv.context import Context
from listserv.eligibility import (
    Eligible,
    Ineligible,
    check_address,
    check_from_header,
)
from listserv.lists import eligibility_rule
from listserv.models import (
    MailingList,
    PendingRequest,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.outcomes import Outcome
from listserv.tokens import hash_token, new_token


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


def _confirmation_budget(ctx: Context, address: str) -> bool:
    return ratelimit.allow(
        ctx.session,
        f"confirm-to:{roster.address_key(address)}",
        ctx.settings.limits.confirmations_per_address_per_day,
        timedelta(days=1),
        ctx.now,
    )


def _reply_address(requester: Requester) -> str | None:
    """Where a refusal may go: the addr-spec the request came from, if it parses."""
    from email.utils import getaddresses

    if requester.from_header:
        pairs = [a for _, a in getaddresses([requester.from_header]) if "@" in a]
        if len(pairs) != 1 or any(c in pairs[0] for c in "\r\n"):
            return None
        return pairs[0]
    return requester.address or None


def _new_request(
    ctx: Context,
    mlist: MailingList,
    kind: str,
    address: str,
    payload: dict[str, object],
) -> tuple[PendingRequest, str]:
    token = new_token()
    request = PendingRequest(
        list_id=mlist.id,
        kind=kind,
        status=RequestStatus.PENDING,
        address=address,
        address_key=roster.address_key(address),
        payload=payload,
        token_hash=hash_token(token),
        created_at=ctx.now,
        expires_at=ctx.now + timedelta(hours=mlist.confirm_expiry_hours),
    )
    ctx.session.add(request)
    ctx.session.flush()
    return request, token


def _confirm_links(ctx: Context, mlist: MailingList, token: str) -> dict[str, str]:
    return {
        "token": token,
        "confirm_address": mlist.address(f"-confirm+{token}"),
        "confirm_url": f"{ctx.settings.web.base_url}/confirm/{token}",
        "expiry_hours": str(mlist.confirm_expiry_hours),
    }


def request_subscribe(ctx: Context, mlist: MailingList, requester: Requester) -> Outcome:
    """Start a subscription: check the rule, then mail a confirmation to the address."""
    verdict = _check(mlist, requester)
    needs_approval = False
    if isinstance(verdict, Ineligible):
        reply_to = _reply_address(requester)
        if verdict.code == "domain-not-eligible" and mlist.ineligible_policy == "hold" and reply_to:
            needs_approval = True
            address = reply_to
        else:
            audit.record(
                ctx.session,
                "subscribe-refused",
                channel=ctx.channel,
                list_name=mlist.name,
                actor=reply_to or requester.from_header[:200],
                target=reply_to or "",
                source=ctx.source,
                outcome="refused",
                detail={"code": verdict.code, "reason": verdict.reason},
            )
            notified = False
            if reply_to and ctx.channel == "email" and _confirmation_budget(ctx, reply_to):
                notices.send_notice(
                    ctx, "subscribe_refused.txt.j2", reply_to, mlist=mlist, reason=verdict.reason
                )
                notified = True
            return Outcome.refused(verdict.reason, notified=notified)
    else:
        address = verdict.address if not requester.address else requester.address.strip()
        if requester.from_header:
            from email.utils import getaddresses

            address = getaddresses([requester.from_header])[0][1] or verdict.address

    if is_banned(ctx, mlist, address):
        audit.record(
            ctx.session,
            "subscribe-refused",
            channel=ctx.channel,
            list_name=mlist.name,
            actor=address,
            target=address,
            source=ctx.source,
            outcome="banned",
        )
        return Outcome.refused(f"{address} may not join {mlist.display_name}.")

    if roster.find_member(ctx.session, mlist, address) is not None:
        text = f"{address} is already a member of {mlist.display_name}."
        if ctx.channel == "email" and _confirmation_budget(ctx, address):
            notices.send_notice(ctx, "already_member.txt.j2", address, mlist=mlist)
            return Outcome.info(text, notified=True)
        return Outcome.info(text)

    if not _confirmation_budget(ctx, address):
        audit.record(
            ctx.session,
            "subscribe-rate-limited",
            channel=ctx.channel,
            list_name=mlist.name,
            actor=address,
            target=address,
            source=ctx.source,
            outcome="rate-limited",
        )
        # notified=True: nothing more may be mailed to this address today, not even a reply.
        return Outcome.refused(
            f"Too many confirmation requests for {address} today; please try again tomorrow.",
            notified=True,
        )

    payload: dict[str, object] = {
        "name": requester.name.strip()[:200],
        "title": requester.title.strip()[:200],
        "channel": ctx.channel,
        "needs_approval": needs_approval,
    }
    request, token = _new_request(ctx, mlist, RequestKind.SUBSCRIBE, address, payload)
    notices.send_notice(
        ctx,
        "confirm_subscribe.txt.j2",
        address,
        mlist=mlist,
        reply_to=mlist.address(f"-confirm+{token}"),
        name=payload["name"],
        title=payload["title"],
        **_confirm_links(ctx, mlist, token),
    )
    audit.record(
        ctx.session,
        "subscribe-requested",
        channel=ctx.channel,
        list_name=mlist.name,
        actor=address,
        target=address,
        source=ctx.source,
        outcome="pending",
        detail={"request": request.id, "needs_approval": needs_approval},
    )
    return Outcome.pending(
        f"A confirmation was sent to {address}; reply to it to join {mlist.display_name}.",
        notified=True,
    )


def request_unsubscribe(ctx: Context, mlist: MailingList, address: str) -> Outcome:
    """Start leaving: confirmation to the member's own address, as for joining."""
    member = roster.find_member(ctx.session, mlist, address)
    if member is None:
        if ctx.channel == "email" and _confirmation_budget(ctx, address):
            notices.send_notice(ctx, "not_member.txt.j2", address, mlist=mlist)
            return Outcome.refused(
                f"{address} is not a member of {mlist.display_name}.", notified=True
            )
        return Outcome.refused(f"{address} is not a member of {mlist.display_name}.")
    if not _confirmation_budget(ctx, member.address):
        return Outcome.refused(
            f"Too many confirmation requests for {address} today; please try again tomorrow.",
            notified=True,
        )
    request, token = _new_request(
        ctx, mlist, RequestKind.UNSUBSCRIBE, member.address, {"channel": ctx.channel}
    )
    notices.send_notice(
        ctx,
        "confirm_unsubscribe.txt.j2",
        member.address,
        mlist=mlist,
        reply_to=mlist.address(f"-confirm+{token}"),
        **_confirm_links(ctx, mlist, token),
    )
    audit.record(
        ctx.session,
        "unsubscribe-requested",
        channel=ctx.channel,
        list_name=mlist.name,
        actor=member.address,
        target=member.address,
        source=ctx.source,
        outcome="pending",
        detail={"request": request.id},
    )
    return Outcome.pending(
        f"A confirmation was sent to {member.address}; reply to it to leave {mlist.display_name}.",
        notified=True,
    )


def request_option(ctx: Context, mlist: MailingList, address: str, option: str) -> Outcome:
    """SET DIGEST|NOMAIL|MAIL for one's own membership, confirmed like leaving."""
    member = roster.find_member(ctx.session, mlist, address)
    if member is None:
        return Outcome.refused(f"{address} is not a member of {mlist.display_name}.")
    if not _confirmation_budget(ctx, member.address):
        return Outcome.refused(
            f"Too many confirmation requests for {address} today.", notified=True
        )
    _, token = _new_request(ctx, mlist, RequestKind.SET_OPTION, member.address, {"option": option})
    notices.send_notice(
        ctx,
        "confirm_option.txt.j2",
        member.address,
        mlist=mlist,
        reply_to=mlist.address(f"-confirm+{token}"),
        option=option,
        **_confirm_links(ctx, mlist, token),
    )
    return Outcome.pending(
        f"A confirmation was sent to {member.address} to set {option.upper()}.", notified=True
    )


def find_request(ctx: Context, token: str) -> PendingRequest | None:
    return ctx.session.scalar(
        select(PendingRequest).where(PendingRequest.token_hash == hash_token(token))
    )


def confirm(ctx: Context, token: str, confirmer: str = "", *, words: Sequence[str] = ()) -> Outcome:
    """Carry out the request a token names, once, before it expires.

    `words` are where a reply may say what to do (its first line, its Subject):
    kinds in DECISIONS need one (approve, reject, discard), and a reply
    without one leaves their token unused.
    """
    request = find_request(ctx, token)
    if request is None:
        return Outcome.refused(
            "That confirmation code is not known. It may be mistyped; send your request again."
        )
    decision = DECISIONS.get(request.kind)
    if decision is not None:
        return decision(ctx, request, confirmer, words)
    if request.status != RequestStatus.PENDING:
        return Outcome.refused("That confirmation code has already been used.")
    if request.expires_at <= ctx.now:
        request.status = RequestStatus.EXPIRED
        request.resolved_at = ctx.now
        return Outcome.refused(
            "That confirmation code has expired. Send your request again to get a new one."
        )
    mlist = ctx.session.get(MailingList, request.list_id) if request.list_id else None
    handler = CONFIRMATIONS.get(request.kind)
    if handler is None or mlist is None:
        return Outcome.error("That confirmation cannot be carried out here.")
    outcome = handler(ctx, mlist, request, confirmer)
    if request.status == RequestStatus.PENDING:
        request.status = RequestStatus.DONE
        request.resolved_at = ctx.now
        request.resolved_by = confirmer or request.address
    return outcome


def _confirm_subscribe(
    ctx: Context, mlist: MailingList, request: PendingRequest, confirmer: str
) -> Outcome:
    payload = request.payload or {}
    if roster.find_member(ctx.session, mlist, request.address) is not None:
        return Outcome.info(f"{request.address} is already a member of {mlist.display_name}.")
    if payload.get("needs_approval"):
        request.status = RequestStatus.AWAITING_APPROVAL
        owners = roster.members(ctx.session, mlist, Role.OWNER)
        # The owners decide by replying: their own token, naming this request.
        ask, ask_token = _new_request(
            ctx, mlist, RequestKind.MODERATE_REQUEST, request.address, {"request_id": request.id}
        )
        ask.expires_at = ctx.now + APPROVAL_REPLY_EXPIRY
        for owner in owners:
            notices.send_notice(
                ctx,
                "approval_needed.txt.j2",
                owner.address,
                mlist=mlist,
                reply_to=mlist.address(f"-confirm+{ask_token}"),
                token=ask_token,
                confirm_address=mlist.address(f"-confirm+{ask_token}"),
                expiry_days=APPROVAL_REPLY_EXPIRY.days,
                request_id=request.id,
                address=request.address,
                name=str(payload.get("name", "")),
                title=str(payload.get("title", "")),
            )
        notices.send_notice(ctx, "awaiting_approval.txt.j2", request.address, mlist=mlist)
        return Outcome.pending(
            f"{request.address} confirmed; an owner of {mlist.display_name} will review it.",
            notified=True,
        )
    return _admit(ctx, mlist, request, actor=request.address, auth="confirmed-reply")


def _admit(
    ctx: Context, mlist: MailingList, request: PendingRequest, *, actor: str, auth: str
) -> Outcome:
    payload = request.payload or {}
    member = roster.add_member(
        ctx.session,
        mlist,
        request.address,
        name=str(payload.get("name", "")),
        title=str(payload.get("title", "")),
        actor=actor,
        channel=ctx.channel,
        auth=auth,
        source=ctx.source,
        now=ctx.now,
    )
    notices.send_notice(
        ctx, "welcome.txt.j2", member.address, mlist=mlist, member_name=member.display_name
    )
    return Outcome.done(f"{member.address} joined {mlist.display_name}.", notified=True)


def _confirm_unsubscribe(
    ctx: Context, mlist: MailingList, request: PendingRequest, confirmer: str
) -> Outcome:
    member = roster.find_member(ctx.session, mlist, request.address)
    if member is None:
        return Outcome.info(f"{request.address} is no longer a member of {mlist.display_name}.")
    roster.remove_member(
        ctx.session,
        mlist,
        member,
        actor=request.address,
        channel=ctx.channel,
        auth="confirmed-reply",
        source=ctx.source,
        now=ctx.now,
    )
    notices.send_notice(ctx, "goodbye.txt.j2", request.address, mlist=mlist)
    return Outcome.done(f"{request.address} left {mlist.display_name}.", notified=True)


OPTION_CHANGES: dict[str, dict[str, str]] = {
    "digest": {"delivery_mode": "digest"},
    "nomail": {"delivery_mode": "nomail"},
    "mail": {"delivery_mode": "regular"},
}


def _confirm_option(
    ctx: Context, mlist: MailingList, request: PendingRequest, confirmer: str
) -> Outcome:
    option = str((request.payload or {}).get("option", "")).lower()
    member = roster.find_member(ctx.session, mlist, request.address)
    if member is None or option not in OPTION_CHANGES:
        return Outcome.refused(f"{request.address} is not a member of {mlist.display_name}.")
    roster.change_member(
        ctx.session,
        mlist,
        member,
        dict(OPTION_CHANGES[option]),
        actor=request.address,
        channel=ctx.channel,
        auth="confirmed-reply",
        source=ctx.source,
        now=ctx.now,
    )
    return Outcome.done(f"{member.address}: {option.upper()} is now set on {mlist.display_name}.")


def decide(
    ctx: Context, request: PendingRequest, *, approve: bool, actor: str, auth: str, reason: str = ""
) -> Outcome:
    """An owner's decision on a request awaiting approval (CLI, email, web)."""
    mlist = ctx.session.get(MailingList, request.list_id) if request.list_id else None
    if mlist is None or request.status != RequestStatus.AWAITING_APPROVAL:
        by = f" by {request.resolved_by}" if request.resolved_by else ""
        return Outcome.refused(f"Request {request.id} was already handled{by}.")
    request.resolved_at = ctx.now
    request.resolved_by = actor
    if approve:
        outcome = _admit(ctx, mlist, request, actor=actor, auth=auth)
        request.status = RequestStatus.DONE
        return outcome
    request.status = RequestStatus.REJECTED
    request.reason = reason
    audit.record(
        ctx.session,
        "subscribe-rejected",
        channel=ctx.channel,
        list_name=mlist.name,
        actor=actor,
        target=request.address,
        source=ctx.source,
        auth=auth,
        detail={"request": request.id, "reason": reason},
    )
    notices.send_notice(ctx, "request_rejected.txt.j2", request.address, mlist=mlist, reason=reason)
    return Outcome.done(f"Request {request.id} from {request.address} rejected.")


Confirmation = Callable[[Context, MailingList, PendingRequest, str], Outcome]
Decision = Callable[[Context, PendingRequest, str, Sequence[str]], Outcome]

#: How long the reply-to-decide address in an approval notice works.
APPROVAL_REPLY_EXPIRY = timedelta(days=14)


def _owner_commands(
    ctx: Context, mlist: MailingList, request: PendingRequest, confirmer: str
) -> Outcome:
    from listserv.commands.owner import run_confirmed

    return run_confirmed(ctx, mlist, request, confirmer)


def _decide_by_reply(
    ctx: Context, request: PendingRequest, confirmer: str, words: Sequence[str]
) -> Outcome:
    from listserv.commands.moderate import decide_by_reply

    return decide_by_reply(ctx, request, confirmer, words)


#: What confirming each kind of request does; administration adds its kinds here.
CONFIRMATIONS: dict[str, Confirmation] = {
    RequestKind.SUBSCRIBE: _confirm_subscribe,
    RequestKind.UNSUBSCRIBE: _confirm_unsubscribe,
    RequestKind.SET_OPTION: _confirm_option,
    RequestKind.BOUNCE_REENABLE: bounces.confirm_reenable,
    RequestKind.OWNER_COMMANDS: _owner_commands,
}

#: Kinds a reply decides rather than confirms (moderating by reply): the reply
#: must say approve, reject or discard, and the first decision wins.
DECISIONS: dict[str, Decision] = {
    RequestKind.MODERATE_POST: _decide_by_reply,
    RequestKind.MODERATE_REQUEST: _decide_by_reply,
}
