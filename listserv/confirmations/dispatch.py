# SPDX-License-Identifier: Apache-2.0
"""Carrying out the request a returned token names: one table for every kind.

Whoever sends the token back — a reply to `LIST-confirm+TOKEN@`, a CONFIRM
line, the confirmation page's button — holding it is the proof. A token
works once and before it expires. Most kinds are confirmed
(`CONFIRMATIONS`); the moderators' notices are decided instead
(`DECISIONS`): their reply must say approve, reject or discard, and the
first decision wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from listserv.actors import Actor
from listserv.acts import account, confirmed
from listserv.commands import moderate, replay
from listserv.confirmations.pending import find_request, settle
from listserv.context import Context
from listserv.models import MailingList, PendingRequest, RequestKind, RequestStatus
from listserv.outcomes import Outcome

Confirmation = Callable[[Context, Actor, MailingList, PendingRequest], Outcome]
Decision = Callable[[Context, Actor, PendingRequest, Sequence[str]], Outcome]
SiteConfirmation = Callable[[Context, Actor, PendingRequest], Outcome]


#: What confirming each kind of request does.
CONFIRMATIONS: dict[RequestKind, Confirmation] = {
    RequestKind.SUBSCRIBE: confirmed.confirm_join,
    RequestKind.UNSUBSCRIBE: confirmed.confirm_leave,
    RequestKind.SET_OPTION: confirmed.confirm_option,
    RequestKind.BOUNCE_REENABLE: confirmed.confirm_reenable,
    RequestKind.OWNER_COMMANDS: replay.run_confirmed,
}

#: Kinds about a person on every list, not one list (their request has no list).
SITE_CONFIRMATIONS: dict[RequestKind, SiteConfirmation] = {
    RequestKind.CHANGE_ADDRESS: account.confirm_address_change,
}

#: Kinds a reply decides rather than confirms (moderating by reply).
DECISIONS: dict[RequestKind, Decision] = {
    RequestKind.MODERATE_POST: moderate.decide_by_reply,
    RequestKind.MODERATE_REQUEST: moderate.decide_by_reply,
}


def confirm(ctx: Context, actor: Actor, token: str, *, words: Sequence[str] = ()) -> Outcome:
    """Carry out the request a token names, once, before it expires.

    `actor` is who sent the token back (the reply's From, or the web client);
    `words` are where a reply may say what to do (its first line, its
    Subject): kinds in DECISIONS need one, and a reply without one leaves
    their token unused.
    """
    request = find_request(ctx.session, token)
    if request is None:
        return Outcome.refused(
            "That confirmation code is not known. It may be mistyped; send your request again."
        )
    decision = DECISIONS.get(request.kind)
    if decision is not None:
        return decision(ctx, actor, request, words)
    if request.status != RequestStatus.PENDING:
        return Outcome.refused("That confirmation code has already been used.")
    if request.expires_at <= ctx.now:
        settle(request, RequestStatus.EXPIRED, "", ctx.now)
        return Outcome.refused(
            "That confirmation code has expired. Send your request again to get a new one."
        )
    site_handler = SITE_CONFIRMATIONS.get(request.kind)
    mlist = ctx.session.get(MailingList, request.list_id) if request.list_id else None
    handler = CONFIRMATIONS.get(request.kind)
    if site_handler is not None and request.list_id is None:
        outcome = site_handler(ctx, actor, request)
    elif handler is None or mlist is None:
        return Outcome.error("That confirmation cannot be carried out here.")
    else:
        outcome = handler(ctx, actor, mlist, request)
    if request.status == RequestStatus.PENDING:
        settle(request, RequestStatus.DONE, actor.address or request.address, ctx.now)
    return outcome
