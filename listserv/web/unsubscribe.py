# SPDX-License-Identifier: Apache-2.0
"""One-click unsubscribe (RFC 8058): the https URL in every member's List-Unsubscribe.

Input: `/unsubscribe/<list>/<token>`, where the token is
`tokens.unsubscribe_token(secret, member_id, list, member.unsubscribe_nonce)`,
and for the POST the body `List-Unsubscribe=One-Click` (urlencoded or
multipart). Output: the member removed at once, audited as channel `web`, a
goodbye mail queued, and a 200 page — no redirect, as RFC 8058 requires of
the POST a mail provider sends. The GET of the same URL only shows a page
whose button posts that very body.

The token is bound to one member of one list; it is checked against the
member row named by its id prefix, so rotating the member's nonce (or leaving
and joining again) revokes every link already mailed. Because the row and its
nonce go when the member leaves, each removal leaves an `UnsubscribeReceipt`
(the token's SHA-256): the same link then answers 200 "already removed",
since providers retry the POST, while unknown and revoked links get 404.
There is no CSRF check here on purpose: the POST comes from mail providers'
servers and mail clients, and the member-bound token is the authority.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv import db, notices
from listserv.actors import Auth, web_actor
from listserv.acts import members
from listserv.lists import get_list
from listserv.models import MailingList, Member, Role, UnsubscribeReceipt, utcnow
from listserv.tokens import check_unsubscribe_token
from listserv.web.confirm import when
from listserv.web.pages import Link, Page, Web, message

TOKEN = re.compile(r"^(\d{1,18})\.[A-Za-z0-9_-]{16,64}$")
_LIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

#: The body RFC 8058 has mail providers post.
ONE_CLICK = "One-Click"


def unsubscribe_path(list_name: str, token: str) -> str:
    """The path under `web.base_url` that fan-out puts in List-Unsubscribe."""
    return f"/unsubscribe/{list_name}/{token}"


def receipt_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _find(
    web: Web, session: Session, list_name: str, token: str, *, lock: bool
) -> tuple[MailingList | None, Member | None, UnsubscribeReceipt | None]:
    """The list, and either the member the token verifies for or the receipt of its use."""
    match = TOKEN.match(token)
    if match is None or not _LIST_NAME.match(list_name):
        return None, None, None
    mlist = get_list(session, list_name)
    if mlist is None:
        return None, None, None
    stmt = select(Member).where(
        Member.id == int(match.group(1)), Member.list_id == mlist.id, Member.role == Role.MEMBER
    )
    if lock:
        stmt = stmt.with_for_update()  # a retried POST waits, then finds the receipt
    member = session.scalar(stmt)
    if member is not None:
        nonces = {member.id: member.unsubscribe_nonce}
        if check_unsubscribe_token(web.secret, token, mlist.name, nonces) == member.id:
            return mlist, member, None
    receipt = session.scalar(
        select(UnsubscribeReceipt).where(
            UnsubscribeReceipt.token_hash == receipt_hash(token),
            UnsubscribeReceipt.list_id == mlist.id,
        )
    )
    return mlist, None, receipt


def _join_again(mlist: MailingList) -> list[Link]:
    if not mlist.public:
        return []
    return [Link(f"Join {mlist.display_name} again", f"/lists/{mlist.name}")]


def unknown_page(mlist: MailingList | None) -> Page:
    paragraphs = [
        "This link may have been cut short, or it belongs to an earlier membership: "
        "unsubscribe links stop working when you leave and join again, or when the "
        "list's owners replace them.",
    ]
    if mlist is not None:
        paragraphs.append(
            f"If you still get messages from {mlist.display_name}, use the unsubscribe link "
            f"in the most recent one, or write to {mlist.address('-leave')}."
        )
    return message(
        404,
        "This unsubscribe link is not valid",
        *paragraphs,
        next_steps=[Link("See all mailing lists", "/lists")],
    )


def already_page(mlist: MailingList, receipt: UnsubscribeReceipt) -> Page:
    return message(
        200,
        "You have already left",
        f"{receipt.address} was removed from {mlist.display_name} on {when(receipt.at)} "
        "with this link. There is nothing more to do.",
        next_steps=_join_again(mlist),
    )


def unsubscribe_page(web: Web, list_name: str, token: str) -> Page:
    """GET: a page with the button; reads only, the session is never committed."""
    list_name = list_name.lower()
    with web.factory() as session:
        mlist, member, receipt = _find(web, session, list_name, token, lock=False)
        if mlist is not None and member is not None:
            return Page(
                "web/unsubscribe.html",
                200,
                {
                    "title": f"Leave {mlist.display_name}",
                    "list": {"name": mlist.name, "display_name": mlist.display_name},
                    "address": member.address,
                    "action": unsubscribe_path(mlist.name, token),
                    "one_click": ONE_CLICK,
                },
            )
        if mlist is not None and receipt is not None:
            return already_page(mlist, receipt)
        return unknown_page(mlist)


def one_click(
    web: Web,
    list_name: str,
    token: str,
    body_value: str,
    client: str,
    now: datetime | None = None,
) -> Page:
    """POST: remove the member at once (RFC 8058), or say it was already done."""
    now = now or utcnow()
    list_name = list_name.lower()
    with db.session_scope(web.factory) as session:
        mlist, member, receipt = _find(web, session, list_name, token, lock=True)
        if mlist is None or member is None:
            if mlist is not None and receipt is not None:
                return already_page(mlist, receipt)
            return unknown_page(mlist)
        if body_value.strip().lower() != ONE_CLICK.lower():
            return message(
                400,
                "Nothing was changed",
                "To leave the list, press the button on the unsubscribe page.",
                next_steps=[Link("Open the unsubscribe page", unsubscribe_path(mlist.name, token))],
            )
        address, member_id = member.address, member.id
        ctx = web.context(session, now=now, source=client)
        members.remove_member(
            ctx,
            web_actor(address, Auth.ONE_CLICK),  # the signed link is the member's own
            mlist,
            address,
            reason="one-click unsubscribe (RFC 8058)",
        )
        session.add(
            UnsubscribeReceipt(
                list_id=mlist.id,
                member_id=member_id,
                token_hash=receipt_hash(token),
                address=address,
                at=now,
            )
        )
        notices.send_notice(ctx, "goodbye.txt.j2", address, mlist=mlist)
        return message(
            200,
            f"You have left {mlist.display_name}",
            f"{address} has been removed from {mlist.display_name}. "
            "You will get no more messages from the list.",
            "We have sent a message to confirm it.",
            next_steps=_join_again(mlist),
        )
