# SPDX-License-Identifier: Apache-2.0
"""A member's own memberships: delivery, name and title, leaving, a new address.

The actor is a person whose address a channel has proved (the web account
page: a mailed sign-in link). They reach only the rows of their own address,
whatever roles they hold elsewhere: `own` refuses any other row, so an owner
or a site administrator cannot use these acts on someone else (the console's
acts are for that). Each change is the act the email commands and the CLI
use (`members.change_fields`, `members.remove_member`), so the history, the
audit record, the goodbye and the owners' notice are theirs too.

Changing address is a double opt-in of its own: the new address must pass
every list's rule as joining does, a confirmation goes to it (a request of
kind `change-address`, about no one list), and only confirming moves the
person's member rows, keeping each row (settings, id) so the history reads
as one member under both addresses. The old address's web sessions end then:
it no longer proves who the person is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select

from listserv import audit, bans, notices, roster, signin
from listserv.actors import Actor, Auth
from listserv.acts.errors import ActError, Conflict, Invalid, NotFound
from listserv.acts.members import change_fields, clean_text, remove_member
from listserv.acts.subscriptions import confirmation_budget
from listserv.confirmations.pending import SITE_EXPIRY, new_request
from listserv.context import Context
from listserv.eligibility import Ineligible, InvalidAddress, check_address, normalise_address
from listserv.lists import eligibility_rule
from listserv.mailbox import canonical_address
from listserv.models import (
    DeliveryMode,
    MailingList,
    Member,
    PendingRequest,
    RequestKind,
    Role,
)
from listserv.outcomes import Outcome

#: The delivery choices the account page offers: (mode, digest format or None to keep).
DELIVERIES: dict[str, tuple[DeliveryMode, str | None]] = {
    "mail": (DeliveryMode.REGULAR, None),
    "digest-mime": (DeliveryMode.DIGEST, "mime"),
    "digest-plain": (DeliveryMode.DIGEST, "plain"),
    "nomail": (DeliveryMode.NOMAIL, None),
}


def delivery_choice(member: Member) -> str:
    """Which of `DELIVERIES` a member's row is now."""
    if member.delivery_mode == DeliveryMode.DIGEST:
        return "digest-plain" if member.digest_format == "plain" else "digest-mime"
    return "nomail" if member.delivery_mode == DeliveryMode.NOMAIL else "mail"


@dataclass(frozen=True)
class Membership:
    mlist: MailingList
    member: Member


def _key(actor: Actor) -> str:
    return roster.address_key(actor.address)


def memberships(ctx: Context, actor: Actor) -> list[Membership]:
    """Every list the actor's address is a member of (role member), by list name."""
    rows = ctx.session.execute(
        select(Member, MailingList)
        .join(MailingList, MailingList.id == Member.list_id)
        .where(Member.address_key == _key(actor), Member.role == Role.MEMBER)
        .order_by(MailingList.name)
    ).all()
    return [Membership(mlist, member) for member, mlist in rows]


def own(ctx: Context, actor: Actor, member_id: int) -> Membership:
    """The actor's own membership row, or NotFound: no one reaches another person's row here."""
    member = ctx.session.get(Member, member_id)
    if (
        member is None
        or actor.scope is not None
        or member.role != Role.MEMBER
        or member.address_key != _key(actor)
    ):
        raise NotFound("That is not one of your memberships.", code="not-yours")
    mlist = ctx.session.get(MailingList, member.list_id)
    assert mlist is not None
    return Membership(mlist, member)


def update_membership(
    ctx: Context, actor: Actor, member_id: int, *, delivery: str, name: str, title: str
) -> Membership:
    """Delivery, name and title of one's own membership, in one history event (if any changed)."""
    mine = own(ctx, actor, member_id)
    if delivery not in DELIVERIES:
        raise Invalid("Choose how you get the list.", field="delivery", code="delivery")
    mode, digest_format = DELIVERIES[delivery]
    fields: dict[str, object] = {
        "delivery_mode": mode,
        "display_name": clean_text(name),
        "job_title": clean_text(title),
    }
    if digest_format is not None:
        fields["digest_format"] = digest_format
    change_fields(ctx, actor, mine.mlist, mine.member, fields)
    return mine


def leave(ctx: Context, actor: Actor, member_id: int) -> Membership:
    """Leave one list at once: the goodbye and the owners' notice, as leaving by email."""
    mine = own(ctx, actor, member_id)
    remove_member(ctx, actor, mine.mlist, mine.member.address, goodbye=True)
    return mine


def _refusal(ctx: Context, mlist: MailingList, address: str) -> ActError | None:
    """Why `address` may not take a member's place on `mlist`, if it may not."""
    verdict = check_address(address, eligibility_rule(mlist), mlist.display_name)
    if isinstance(verdict, Ineligible):
        return Invalid(verdict.reason, field="new_address", code=verdict.code)
    if bans.is_banned(ctx, mlist, address):
        return Conflict(
            f"{address} may not join {mlist.display_name}.", field="new_address", code="banned"
        )
    if roster.find_member(ctx.session, mlist, address) is not None:
        return Conflict(
            f"{address} is already a member of {mlist.display_name}.",
            field="new_address",
            code="already-member",
        )
    return None


def request_address_change(ctx: Context, actor: Actor, new_address: str) -> Outcome:
    """Check the new address on every list the actor is on, then mail it a confirmation."""
    mine = memberships(ctx, actor)
    if not mine:
        raise Conflict("You are not a member of any list.", field="new_address", code="no-lists")
    address = new_address.strip().strip("<>").strip()[:254]
    try:
        new_key = normalise_address(address)
    except InvalidAddress as exc:
        raise Invalid(
            f"{address!r} is not an email address: {exc}", field="new_address", code="syntax"
        ) from None
    if new_key == _key(actor):
        raise Invalid("That is already your address.", field="new_address", code="same")
    for item in mine:
        refused = _refusal(ctx, item.mlist, address)
        if refused is not None:
            raise refused
    address = canonical_address(address)
    if not confirmation_budget(ctx, address):
        raise Conflict(
            f"Too many confirmation requests for {address} today; please try again tomorrow.",
            field="new_address",
            code="rate-limited",
        )
    lists = [item.mlist.display_name for item in mine]
    request_id, token = new_request(
        ctx,
        None,
        RequestKind.CHANGE_ADDRESS,
        address,
        {"from_key": _key(actor), "from": mine[0].member.address, "channel": actor.channel.value},
    )
    notices.send_notice(
        ctx,
        "confirm_change_address.txt.j2",
        address,
        old_address=mine[0].member.address,
        lists=lists,
        confirm_url=f"{ctx.settings.web.base_url}/confirm/{token}",
        expiry_hours=int(SITE_EXPIRY.total_seconds() // 3600),
    )
    audit.record_act(
        ctx.session,
        actor,
        "address-change-requested",
        target=address,
        source=ctx.source,
        outcome="pending",
        detail={"request": request_id, "from": _key(actor), "lists": [m.mlist.name for m in mine]},
        at=ctx.now,
    )
    return Outcome.pending(
        f"A confirmation was sent to {address}. Open the link in it to move your "
        "memberships to that address; until then nothing changes.",
        notified=True,
    )


def confirm_address_change(ctx: Context, actor: Actor, request: PendingRequest) -> Outcome:
    """The new address confirmed: every member row of the old one moves to it, if still allowed.

    Eligibility, bans and existing memberships are checked again, because
    days may have passed; a refusal changes nothing on any list.
    """
    payload = request.payload or {}
    old_key = str(payload.get("from_key", ""))
    holder = replace(actor, address=request.address, auth=Auth.CONFIRMED_REPLY)
    mine = memberships(ctx, replace(holder, address=old_key))
    if not old_key or not mine:
        return Outcome.refused(f"{old_key or 'The old address'} is no longer a member of any list.")
    for item in mine:
        refused = _refusal(ctx, item.mlist, request.address)
        if refused is not None:
            return Outcome.refused(f"{refused.message} Nothing was changed.")
    old_address = mine[0].member.address
    for item in mine:
        roster.move_member(
            ctx.session,
            item.mlist,
            item.member,
            request.address,
            actor=holder,
            source=ctx.source,
            now=ctx.now,
        )
    ended = signin.end_sessions(ctx.session, old_key, ctx.now)
    names = [item.mlist.name for item in mine]
    audit.record_act(
        ctx.session,
        holder,
        "address-changed",
        target=request.address,
        source=ctx.source,
        detail={"request": request.id, "from": old_key, "lists": names, "sessions_ended": ended},
        at=ctx.now,
    )
    shown = ", ".join(item.mlist.display_name for item in mine)
    notices.send_notice(
        ctx,
        "address_changed.txt.j2",
        old_address,
        new_address=request.address,
        lists=shown,
        postmaster=ctx.settings.site.postmaster,
    )
    return Outcome.done(
        f"Your memberships ({shown}) moved from {old_address} to {request.address}.",
        notified=True,
    )
