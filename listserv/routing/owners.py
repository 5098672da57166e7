# SPDX-License-Identifier: Apache-2.0
"""Mail to LIST-owner@: relayed unchanged to the list's owners.

The copy goes out from the list's bounces address so a dead owner address
bounces to us, not to the person who wrote. Auto-replies are not relayed, to
keep an owner's vacation message from looping with the sender's.
"""

from __future__ import annotations

from datetime import timedelta

from listserv import outbox, roster
from listserv.context import Context
from listserv.message import auto_reply_reason
from listserv.models import MailingList, Role
from listserv.routing.delivery import Delivery


def relay_to_owners(ctx: Context, delivery: Delivery) -> str:
    mlist = delivery.mlist
    if mlist is None:
        return "ignored: no list"
    reason = auto_reply_reason(delivery.message, delivery.envelope_from)
    if reason is not None and reason != "Precedence: list":
        return f"ignored: {reason}"
    sent = forward_to_owners(ctx, mlist, delivery.inbound.raw, "X-Listserv-Owner-Relay")
    return f"relayed to {sent} owner(s)" if sent else "ignored: the list has no owners"


def forward_to_owners(ctx: Context, mlist: MailingList, raw: bytes, marker: str) -> int:
    """Queue the bytes unchanged to every owner, marked with a header naming the list.

    Sent from the list's bounces address, so a dead owner address bounces to
    us; the marker lets the bounce stage recognise its own forwards. Returns
    how many owners it went to (0: the list has none, and nothing is queued).
    """
    owners = [m.address for m in roster.members(ctx.session, mlist, Role.OWNER)]
    if not owners:
        return 0
    header = f"{marker}: {mlist.posting_address}\r\n".encode()
    outbox.enqueue(
        ctx.session,
        mail_from=mlist.address("-bounces"),
        recipients=owners,
        raw=header + raw,
        retry_for=timedelta(hours=ctx.settings.delivery.retry_for_hours),
        kind="service",
        list_id=mlist.id,
        now=ctx.now,
    )
    return len(owners)
