# SPDX-License-Identifier: Apache-2.0
"""The list page's leave form: an address in, a confirmation mailed to it.

Leaving from the page is the same act as writing to the -leave address
(`request_leave`): the member confirms from their own mailbox, so nobody can
remove someone else. The answer is the same whether or not the address is a
member, and a non-member gets no mail, so the form reveals nothing about the
roster and cannot be used to send mail to strangers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from listserv import db, ratelimit
from listserv.actors import web_actor
from listserv.acts.subscriptions import request_leave
from listserv.limits import client_key
from listserv.models import utcnow
from listserv.web.listinfo import list_not_found, public_list
from listserv.web.pages import Link, Page, Web, message


def leave_error(address: str) -> str | None:
    if not address:
        return "Enter the email address you want to remove from the list"
    if len(address) > 254 or any(ord(c) < 32 or ord(c) == 127 for c in address):
        return "Enter the email address as it appears in messages from the list"
    return None


def leave(web: Web, name: str, address: str, client: str, now: datetime | None = None) -> Page:
    """Mail the leave confirmation to a member; answer everyone the same way."""
    now = now or utcnow()
    address = address.strip()
    with db.session_scope(web.factory) as session:
        mlist = public_list(session, name)
        if mlist is None:
            return list_not_found(name)
        back = [Link(f"Back to {mlist.display_name}", f"/lists/{mlist.name}")]
        problem = leave_error(address)
        if problem is not None:
            return message(400, "There is a problem", problem, next_steps=back)
        if not ratelimit.allow(
            session,
            f"web-leave-from:{client_key(client)}",
            web.joins_per_client_per_hour,
            timedelta(hours=1),
            now,
        ):
            return message(
                429,
                "Too many requests",
                "We have had too many requests from your network in the last hour.",
                f"Please try again later, or send any message to {mlist.address('-leave')}.",
                next_steps=back,
                headers={"Retry-After": "3600"},
            )
        ctx = web.context(session, now=now, source=client)
        request_leave(ctx, web_actor(), mlist, address)
        return message(
            200,
            "Check your mail",
            f"If {address} is a member of {mlist.display_name}, we have sent it a message "
            "to confirm that you want to leave.",
            f"Open the link in that message and press “Leave {mlist.display_name}”, or reply "
            f"to it. The link works for {mlist.confirm_expiry_hours} hours; until you "
            "confirm, nothing changes.",
            "If nothing arrives within a few minutes, look in your junk or spam folder.",
            next_steps=back,
        )
