# SPDX-License-Identifier: Apache-2.0
"""Subscription requests awaiting an owner: approve, reject (the requester is told), discard.

A request waits here when its address is outside the list's rule and the
list holds such requests for approval. Moderators and owners decide, by
`APPROVE R7` or a reply to the approval notice, on the host, in the console
or through the API; the first decision wins, and the notices' reply tokens
are retired with it so a later reply is told who decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from listserv import audit, notices, roster
from listserv.actors import Actor
from listserv.acts.confirmed import admit
from listserv.acts.errors import Conflict, NotFound
from listserv.acts.held import Ruling
from listserv.acts.permissions import Need, require
from listserv.confirmations.pending import settle
from listserv.context import Context
from listserv.models import MailingList, PendingRequest, RequestKind, RequestStatus


@dataclass(frozen=True)
class RequestDecision:
    request: PendingRequest
    status: RequestStatus
    text: str


def find_request(ctx: Context, mlist: MailingList, request_id: int) -> PendingRequest:
    """A subscription request of this list (any status), or NotFound."""
    request = ctx.session.get(PendingRequest, request_id)
    if request is None or request.list_id != mlist.id or request.kind != RequestKind.SUBSCRIBE:
        raise NotFound(f"There is no request {request_id} on {mlist.display_name}.", field="id")
    return request


def awaiting(ctx: Context, mlist: MailingList) -> list[PendingRequest]:
    """Requests waiting for an owner's decision, oldest first."""
    return list(
        ctx.session.scalars(
            select(PendingRequest)
            .where(
                PendingRequest.list_id == mlist.id,
                PendingRequest.kind == RequestKind.SUBSCRIBE,
                PendingRequest.status == RequestStatus.AWAITING_APPROVAL,
            )
            .order_by(PendingRequest.id)
        )
    )


def _open(ctx: Context, actor: Actor, mlist: MailingList, request_id: int) -> PendingRequest:
    require(ctx.session, actor, mlist, Need.MODERATE)
    request = find_request(ctx, mlist, request_id)
    if request.status != RequestStatus.AWAITING_APPROVAL:
        by = f" by {request.resolved_by}" if request.resolved_by else ""
        raise Conflict(f"Request {request.id} was already handled{by}.", code="already-handled")
    return request


def _retire_reply_tokens(ctx: Context, request: PendingRequest) -> None:
    """The approval notices' reply tokens for this request stop deciding anything."""
    tokens = ctx.session.scalars(
        select(PendingRequest).where(
            PendingRequest.kind == RequestKind.MODERATE_REQUEST,
            PendingRequest.list_id == request.list_id,
            PendingRequest.address_key == roster.address_key(request.address),
            PendingRequest.status.in_((RequestStatus.PENDING, RequestStatus.EXPIRED)),
        )
    )
    for token in tokens:
        if (token.payload or {}).get("request_id") == request.id:
            settle(token, RequestStatus.DONE, request.resolved_by, ctx.now)


def _record(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    request: PendingRequest,
    action: str,
    **extra: str,
) -> None:
    audit.record_act(
        ctx.session,
        actor,
        action,
        list_name=mlist.name,
        target=request.address,
        source=ctx.source,
        detail={"request": request.id, **extra},
        at=ctx.now,
    )


def approve_request(
    ctx: Context, actor: Actor, mlist: MailingList, request_id: int
) -> RequestDecision:
    """The address joins as if it had passed the rule, and is welcomed."""
    request = _open(ctx, actor, mlist, request_id)
    settle(request, RequestStatus.DONE, actor.address, ctx.now)
    outcome = admit(ctx, actor, mlist, request)
    _retire_reply_tokens(ctx, request)
    return RequestDecision(request, RequestStatus.DONE, outcome.text)


def reject_request(
    ctx: Context, actor: Actor, mlist: MailingList, request_id: int, *, reason: str = ""
) -> RequestDecision:
    """Turn the request down; the requester is told, with the reason if one is given."""
    request = _open(ctx, actor, mlist, request_id)
    settle(request, RequestStatus.REJECTED, actor.address, ctx.now, reason)
    _record(ctx, actor, mlist, request, "subscribe-rejected", reason=reason)
    notices.send_notice(ctx, "request_rejected.txt.j2", request.address, mlist=mlist, reason=reason)
    _retire_reply_tokens(ctx, request)
    return RequestDecision(
        request, RequestStatus.REJECTED, f"Request {request.id} from {request.address} rejected."
    )


def discard_request(
    ctx: Context, actor: Actor, mlist: MailingList, request_id: int
) -> RequestDecision:
    """Turn the request down without telling the requester."""
    request = _open(ctx, actor, mlist, request_id)
    settle(request, RequestStatus.REJECTED, actor.address, ctx.now, "discarded")
    _record(ctx, actor, mlist, request, "subscribe-discarded")
    _retire_reply_tokens(ctx, request)
    return RequestDecision(
        request,
        RequestStatus.REJECTED,
        f"Request R{request.id} from {request.address} discarded; nobody was told.",
    )


def decide_request(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    request_id: int,
    ruling: Ruling,
    *,
    reason: str = "",
) -> RequestDecision:
    """The one of the three an owner chose, for channels that read the word."""
    return ruling.carry_out(
        approve=lambda: approve_request(ctx, actor, mlist, request_id),
        reject=lambda: reject_request(ctx, actor, mlist, request_id, reason=reason),
        discard=lambda: discard_request(ctx, actor, mlist, request_id),
    )
