# SPDX-License-Identifier: Apache-2.0
"""The command stage's entry: guards before any command runs.

Auto-replies (RFC 3834), bounces and mail with a null reverse path are never
answered, or two robots would mail each other forever; a sender over the
request rate gets no answer at all, so we cannot be made to flood anyone.
"""

from __future__ import annotations

from datetime import timedelta

from listserv import approved, audit, ratelimit, roster
from listserv.actors import email_actor
from listserv.commands import dispatch
from listserv.context import Context
from listserv.message import auto_reply_reason, sender_address
from listserv.routing.delivery import Delivery
from listserv.sender_auth import sender_proof


def receive_command_mail(ctx: Context, delivery: Delivery) -> str:
    msg = delivery.message
    # First of all, so not even an ignored message keeps an owner's password.
    password = approved.take_password(ctx, delivery.inbound, msg)
    reason = auto_reply_reason(msg, delivery.envelope_from)
    list_name = delivery.mlist.name if delivery.mlist is not None else ""
    if reason is not None:
        audit.record_act(
            ctx.session,
            email_actor(delivery.envelope_from),
            "request-ignored",
            at=ctx.now,
            list_name=list_name,
            source=ctx.source,
            outcome="auto-reply",
            detail={"reason": reason},
        )
        return f"ignored: {reason}"
    sender = sender_address(msg, delivery.envelope_from) or ""
    if not sender or any(c in sender for c in "\r\n"):
        return "ignored: no sender address"
    ctx.sender_proof = sender_proof(msg, sender, ctx.settings.site.authserv_id)
    if not ratelimit.allow(
        ctx.session,
        f"request-from:{roster.address_key(sender)}",
        ctx.settings.limits.requests_per_sender_per_hour,
        timedelta(hours=1),
        ctx.now,
    ):
        audit.record_act(
            ctx.session,
            email_actor(sender),
            "request-ignored",
            at=ctx.now,
            list_name=list_name,
            source=ctx.source,
            outcome="rate-limited",
        )
        return "ignored: sender over the request rate limit"
    results = dispatch.handle(
        ctx,
        msg,
        delivery.recipient,
        delivery.mlist,
        sender,
        password=password,
        envelope_from=delivery.envelope_from,
    )
    return "; ".join(f"{outcome.status}: {outcome.text}" for _, outcome in results)[:2000]
