# SPDX-License-Identifier: Apache-2.0
"""What a returned confirmation does for the person it was mailed to.

Holding the token proves the address (auth `confirmed-reply`, whether the
token came back by reply or by the confirmation page's button), so these
acts need no role: joining (or, for an address outside the rule on a list
that holds them, waiting for an owner), leaving, and a delivery option.
`admit` is also the end of an owner's approval (`requests.py`).
"""

from __future__ import annotations

from datetime import timedelta

from listserv import notices, owner_notices, roster, staff_notices
from listserv.actors import Actor, Auth
from listserv.acts.members import change_fields, enable_delivery
from listserv.confirmations.pending import confirm_address, new_request, settle
from listserv.context import Context
from listserv.models import (
    DeliveryMode,
    DeliveryStatus,
    MailingList,
    PendingRequest,
    RequestKind,
    RequestStatus,
    Role,
)
from listserv.outcomes import Outcome
from listserv.webhooks import events as webhook_events

#: How long the reply-to-decide address in an approval notice works.
APPROVAL_REPLY_EXPIRY = timedelta(days=14)

#: SET options a member confirms for themselves, and the delivery each means.
OPTION_MODES: dict[str, DeliveryMode] = {
    "digest": DeliveryMode.DIGEST,
    "digest mime": DeliveryMode.DIGEST,
    "digest plain": DeliveryMode.DIGEST,
    "nomail": DeliveryMode.NOMAIL,
    "mail": DeliveryMode.REGULAR,
}
#: The digest format an option sets, when it names one.
OPTION_FORMATS = {"digest mime": "mime", "digest plain": "plain"}


def _how(actor: Actor, request: PendingRequest) -> str:
    """By which way someone joined, as the owners' notice says it."""
    if actor.address.lower() != request.address.lower():
        return f"approved by {actor.address}"
    return f"confirmed by {actor.channel.value}"


def token_holder(request: PendingRequest, actor: Actor) -> Actor:
    """The person a confirmation proves: the address it was mailed to, by its channel."""
    return Actor(request.address, actor.channel, Auth.CONFIRMED_REPLY)


def admit(ctx: Context, actor: Actor, mlist: MailingList, request: PendingRequest) -> Outcome:
    """The requester joins with the name and title they gave, and is welcomed.

    `actor` is whoever let them in: the requester confirming, or the owner
    approving; either way permission was settled before this point.
    """
    payload = request.payload or {}
    member = roster.add_member(
        ctx.session,
        mlist,
        request.address,
        name=str(payload.get("name", "")),
        title=str(payload.get("title", "")),
        actor=actor,
        source=ctx.source,
        now=ctx.now,
    )
    notices.send_notice(
        ctx, "welcome.txt.j2", member.address, mlist=mlist, member_name=member.display_name
    )
    owner_notices.roster_changed(
        ctx,
        mlist,
        member.address,
        owner_notices.JOINED,
        how=_how(actor, request),
        name=member.display_name,
        title=member.job_title,
    )
    return Outcome.done(f"{member.address} joined {mlist.display_name}.", notified=True)


def confirm_join(
    ctx: Context, actor: Actor, mlist: MailingList, request: PendingRequest
) -> Outcome:
    """The requester confirmed: they join, or (outside the rule, policy hold) an owner decides."""
    payload = request.payload or {}
    if roster.find_member(ctx.session, mlist, request.address) is not None:
        return Outcome.info(f"{request.address} is already a member of {mlist.display_name}.")
    if not payload.get("needs_approval"):
        return admit(ctx, token_holder(request, actor), mlist, request)
    request.status = RequestStatus.AWAITING_APPROVAL
    webhook_events.queue_event(
        ctx.session,
        webhook_events.REQUEST_CREATED,
        mlist.name,
        {"request": request.id, "address": request.address},
        ctx.now,
    )
    # The owners decide by replying: their own token, naming this request.
    ask_id, ask_token = new_request(
        ctx,
        mlist,
        RequestKind.MODERATE_REQUEST,
        request.address,
        {"request_id": request.id},
        expires_at=ctx.now + APPROVAL_REPLY_EXPIRY,
    )

    def tell_owners() -> None:
        for owner in roster.members(ctx.session, mlist, Role.OWNER):
            notices.send_notice(
                ctx,
                "approval_needed.txt.j2",
                owner.address,
                mlist=mlist,
                reply_to=confirm_address(mlist, ask_token),
                token=ask_token,
                confirm_address=confirm_address(mlist, ask_token),
                expiry_days=APPROVAL_REPLY_EXPIRY.days,
                request_id=request.id,
                address=request.address,
                name=str(payload.get("name", "")),
                title=str(payload.get("title", "")),
            )

    ask = ctx.session.get(PendingRequest, ask_id)
    assert ask is not None  # inserted just above, in this transaction
    staff_notices.announce(ctx, mlist, ask, tell_owners)  # coalesced per list
    notices.send_notice(ctx, "awaiting_approval.txt.j2", request.address, mlist=mlist)
    return Outcome.pending(
        f"{request.address} confirmed; an owner of {mlist.display_name} will review it.",
        notified=True,
    )


def confirm_leave(
    ctx: Context, actor: Actor, mlist: MailingList, request: PendingRequest
) -> Outcome:
    """The member confirmed leaving: removed, and told so."""
    member = roster.find_member(ctx.session, mlist, request.address)
    if member is None:
        return Outcome.info(f"{request.address} is no longer a member of {mlist.display_name}.")
    roster.remove_member(
        ctx.session,
        mlist,
        member,
        actor=token_holder(request, actor),
        source=ctx.source,
        now=ctx.now,
    )
    notices.send_notice(ctx, "goodbye.txt.j2", request.address, mlist=mlist)
    owner_notices.roster_changed(
        ctx, mlist, request.address, owner_notices.LEFT, how=f"confirmed by {actor.channel.value}"
    )
    return Outcome.done(f"{request.address} left {mlist.display_name}.", notified=True)


def confirm_option(
    ctx: Context, actor: Actor, mlist: MailingList, request: PendingRequest
) -> Outcome:
    """The member confirmed a delivery option (SET DIGEST|NOMAIL|MAIL)."""
    option = str((request.payload or {}).get("option", "")).lower()
    member = roster.find_member(ctx.session, mlist, request.address)
    if member is None or option not in OPTION_MODES:
        return Outcome.refused(f"{request.address} is not a member of {mlist.display_name}.")
    change_fields(
        ctx,
        token_holder(request, actor),
        mlist,
        member,
        {
            "delivery_mode": OPTION_MODES[option],
            **({"digest_format": OPTION_FORMATS[option]} if option in OPTION_FORMATS else {}),
        },
    )
    return Outcome.done(f"{member.address}: {option.upper()} is now set on {mlist.display_name}.")


#: What a member's own re-enable token may undo: bounces, not an owner's or a conduct measure.
REENABLEABLE = frozenset({DeliveryStatus.ENABLED, DeliveryStatus.DISABLED_BOUNCING})


def confirm_reenable(
    ctx: Context, actor: Actor, mlist: MailingList, request: PendingRequest
) -> Outcome:
    """The member answered a bounce notice: delivery is on again, the score forgotten."""
    member = roster.find_member(ctx.session, mlist, request.address)
    if member is None:
        return Outcome.refused(f"{request.address} is no longer a member of {mlist.display_name}.")
    if member.delivery_status not in REENABLEABLE:
        return Outcome.refused(
            f"Delivery to {member.address} was turned off by the list owners; "
            f"write to {mlist.address('-owner')}."
        )
    if member.delivery_status == DeliveryStatus.ENABLED:
        return Outcome.info(f"Delivery to {member.address} is already on.")
    # Settled first: enabling cancels the member's other pending re-enable tokens.
    settle(request, RequestStatus.DONE, actor.address or request.address, ctx.now, "confirmed")
    enable_delivery(ctx, token_holder(request, actor), mlist, member.address)
    return Outcome.done(
        f"Delivery of {mlist.display_name} to {member.address} is on again.", notified=False
    )
