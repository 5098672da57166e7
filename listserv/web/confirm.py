# SPDX-License-Identifier: Apache-2.0
"""Confirmation pages: the link in every confirmation mail.

Input: a confirmation token from the URL, and for the POST the hidden form key.
Output: a page saying what confirming will do (GET), or what it did (POST).

Mail security gateways (Safe Links and the like) fetch every link in incoming
mail, so the GET only shows: it opens a session that is never committed. Only a
POST from the page acts, and it must carry the form key the page rendered —
an HMAC of the token with the site secret (see `security.confirm_form_key`),
so nothing that merely knows the URL acts by posting to it, and no cookie or
server session is needed. Cross-site posts are refused before this module runs.

Token states and their status codes:

- unknown (or malformed): 404, with where to start again;
- expired: 410 Gone, on GET and POST (the POST also records the expiry);
- used (done, awaiting an owner, rejected or cancelled): 410 Gone. The link is
  single-use and will never work again, which is what 410 says; 409 Conflict
  would suggest the client could resolve something and retry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv import db
from listserv.actors import Auth, web_actor
from listserv.confirmations.dispatch import SITE_CONFIRMATIONS, confirm
from listserv.models import MailingList, PendingRequest, RequestKind, RequestStatus, utcnow
from listserv.outcomes import Outcome, Status
from listserv.tokens import hash_token
from listserv.web.pages import Link, Page, Web, message
from listserv.web.security import check_confirm_form_key, confirm_form_key

TOKEN = re.compile(r"^[a-z2-7]{32}$")


@dataclass(frozen=True)
class Description:
    """What confirming a request will do, in words for its page."""

    heading: str
    details: tuple[tuple[str, str], ...]
    explanation: str
    button: str


def _person(request: PendingRequest) -> tuple[str, str]:
    payload = request.payload or {}
    return str(payload.get("name", "")).strip(), str(payload.get("title", "")).strip()


def _describe_subscribe(request: PendingRequest, mlist: MailingList) -> Description:
    name, title = _person(request)
    details = [("List", mlist.display_name), ("Email address", request.address)]
    if name:
        details.append(("Name", name))
    if title:
        details.append(("Job title", title))
    explanation = f"Press the button to join {mlist.display_name} as {name or request.address}."
    if (request.payload or {}).get("needs_approval"):
        explanation += " An owner of the list will then review your request."
    return Description(
        f"Join {mlist.display_name}", tuple(details), explanation, f"Join {mlist.display_name}"
    )


def _describe_unsubscribe(request: PendingRequest, mlist: MailingList) -> Description:
    return Description(
        f"Leave {mlist.display_name}",
        (("List", mlist.display_name), ("Email address", request.address)),
        f"Press the button to remove {request.address} from {mlist.display_name}. "
        "You will get no more messages from the list.",
        f"Leave {mlist.display_name}",
    )


OPTION_WORDS = {
    "digest": "a daily digest of the list's messages instead of each message",
    "nomail": "no messages while you stay a member",
    "mail": "every message as it is sent",
}


def _describe_option(request: PendingRequest, mlist: MailingList) -> Description:
    option = str((request.payload or {}).get("option", "")).lower()
    words = OPTION_WORDS.get(option, f"the setting {option.upper()}")
    return Description(
        f"Change how you get {mlist.display_name}",
        (
            ("List", mlist.display_name),
            ("Email address", request.address),
            ("New setting", option.upper()),
        ),
        f"Press the button to receive {words}.",
        f"Set {option.upper()}",
    )


def _describe_other(request: PendingRequest, mlist: MailingList) -> Description:
    return Description(
        f"Confirm your request to {mlist.display_name}",
        (("List", mlist.display_name), ("Email address", request.address)),
        "Press the button to carry out the request that was sent from this address.",
        "Confirm",
    )


#: How each kind of request is described on its page; kinds not named here
#: (added to confirmations.dispatch.CONFIRMATIONS) get the general words.
DESCRIPTIONS: dict[str, Callable[[PendingRequest, MailingList], Description]] = {
    RequestKind.SUBSCRIBE: _describe_subscribe,
    RequestKind.UNSUBSCRIBE: _describe_unsubscribe,
    RequestKind.SET_OPTION: _describe_option,
}


def _describe_change_address(request: PendingRequest) -> Description:
    payload = request.payload or {}
    old = str(payload.get("from", payload.get("from_key", "")))
    return Description(
        "Use this address for your lists",
        (("Old address", old), ("New address", request.address)),
        f"Press the button to move every list membership of {old} to {request.address}. "
        "Your settings stay as they are; list mail then comes to the new address only, and "
        f"web sessions signed in as {old} end.",
        "Use this address",
    )


def describe(request: PendingRequest, mlist: MailingList | None) -> Description | None:
    """The page's words; None for a request this page cannot carry out."""
    if request.kind in SITE_CONFIRMATIONS and request.list_id is None:
        return _describe_change_address(request)
    if mlist is None:
        return None
    return DESCRIPTIONS.get(request.kind, _describe_other)(request, mlist)


def when(moment: datetime) -> str:
    return moment.strftime("%-d %B %Y at %H:%M UTC")


def _start_again(mlist: MailingList | None) -> list[Link]:
    if mlist is not None and mlist.public:
        return [Link(f"Go to the {mlist.display_name} page", f"/lists/{mlist.name}")]
    return [Link("See all mailing lists", "/lists")]


def unknown_page() -> Page:
    return message(
        404,
        "This confirmation link is not known",
        "The link may have been cut short or mistyped: some mail programs break long "
        "links across lines. Open it again from the message, copying the whole link.",
        "If it still does not work, start your request again; we will send a new link.",
        next_steps=_start_again(None),
    )


def expired_page(request: PendingRequest, mlist: MailingList | None) -> Page:
    hours = mlist.confirm_expiry_hours if mlist is not None else 72
    again = "Nothing was changed. Start your request again and we will send a new link."
    if request.kind == RequestKind.UNSUBSCRIBE and mlist is not None:
        again = (
            "Nothing was changed: you are still a member. To leave, use the unsubscribe "
            f"link at the bottom of any list message, or write to {mlist.address('-leave')}."
        )
    return message(
        410,
        "This link has expired",
        f"Links to confirm a request work for {hours} hours, and this one expired on "
        f"{when(request.expires_at)}.",
        again,
        next_steps=_start_again(mlist),
    )


_USED_WORDS: dict[str, str] = {
    RequestStatus.DONE: "This request was confirmed{on}, so there is nothing more to do.",
    RequestStatus.AWAITING_APPROVAL: (
        "You have already confirmed this request. An owner of the list is reviewing it, "
        "and you will get an email when they decide."
    ),
    RequestStatus.REJECTED: "An owner of the list declined this request{on}.",
    RequestStatus.CANCELLED: "This request was cancelled{on}.",
    RequestStatus.EXPIRED: "This request expired{on} without being confirmed.",
}


def used_page(request: PendingRequest, mlist: MailingList | None) -> Page:
    on = f" on {when(request.resolved_at)}" if request.resolved_at else ""
    words = _USED_WORDS.get(request.status, "This request has already been dealt with.")
    if request.status == RequestStatus.EXPIRED:
        return expired_page(request, mlist)
    return message(
        410,
        "This link has already been used",
        "Each confirmation link works once. " + words.format(on=on),
        next_steps=_start_again(mlist),
    )


def stale_form_page(token: str) -> Page:
    return message(
        403,
        "This form could not be accepted",
        "Nothing was changed. The form was not sent from this site's confirmation page, "
        "or it was changed on the way.",
        "Open the link in the message we sent you again, and press the button on that page.",
        next_steps=[Link("Open the confirmation page", f"/confirm/{token}")],
    )


def _lookup(session: Session, token: str, *, lock: bool) -> PendingRequest | None:
    stmt = select(PendingRequest).where(PendingRequest.token_hash == hash_token(token))
    if lock:
        # Two posts of one link (a double click) must not both act.
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def _list_of(session: Session, request: PendingRequest) -> MailingList | None:
    return session.get(MailingList, request.list_id) if request.list_id else None


def confirm_page(web: Web, token: str, now: datetime | None = None) -> Page:
    """GET: say what confirming will do. Reads only; the session is never committed."""
    now = now or utcnow()
    token = token.lower()
    if not TOKEN.match(token):
        return unknown_page()
    with web.factory() as session:
        request = _lookup(session, token, lock=False)
        if request is None:
            return unknown_page()
        mlist = _list_of(session, request)
        if request.status != RequestStatus.PENDING:
            return used_page(request, mlist)
        if request.expires_at <= now:
            return expired_page(request, mlist)
        description = describe(request, mlist)
        if description is None:
            return unknown_page()
        return Page(
            "web/confirm.html",
            200,
            {
                "title": description.heading,
                "description": description,
                "token": token,
                "form_key": confirm_form_key(web.secret, token),
                "expires": when(request.expires_at),
            },
        )


def _result_page(request: PendingRequest, mlist: MailingList | None, outcome: Outcome) -> Page:
    back = _start_again(mlist)
    if request.kind == RequestKind.CHANGE_ADDRESS:
        back = [Link("Sign in with your new address", "/login")]
    if outcome.status == Status.DONE:
        name = mlist.display_name if mlist is not None else ""
        headings: dict[str, str] = {
            RequestKind.SUBSCRIBE: f"Welcome to {name}",
            RequestKind.UNSUBSCRIBE: f"You have left {name}",
            RequestKind.SET_OPTION: "Your setting is changed",
            RequestKind.CHANGE_ADDRESS: "Your address is changed",
        }
        heading = headings.get(request.kind, "Done")
        follow_ups: dict[str, str] = {
            RequestKind.SUBSCRIBE: "We have sent you a welcome message that says how to post "
            "and how to leave.",
            RequestKind.UNSUBSCRIBE: "We have sent you a message to confirm it.",
            RequestKind.CHANGE_ADDRESS: "We have told your old address. Sign in again with "
            "the new one to see your lists.",
        }
        more = follow_ups.get(request.kind)
        paragraphs = [outcome.text] + ([more] if more else [])
        return message(200, heading, *paragraphs, next_steps=back)
    if outcome.status == Status.PENDING:
        return message(200, "Thank you: request confirmed", outcome.text, next_steps=back)
    if outcome.status == Status.INFO:
        return message(200, "Nothing to change", outcome.text, next_steps=back)
    return message(409, "This request could not be carried out", outcome.text, next_steps=back)


def confirm_action(
    web: Web, token: str, form_key: str, client: str, now: datetime | None = None
) -> Page:
    """POST from the confirmation page: carry the request out, once."""
    now = now or utcnow()
    token = token.lower()
    if not TOKEN.match(token):
        return unknown_page()
    if not check_confirm_form_key(web.secret, token, form_key):
        return stale_form_page(token)
    with db.session_scope(web.factory) as session:
        request = _lookup(session, token, lock=True)
        if request is None:
            return unknown_page()
        mlist = _list_of(session, request)
        if request.status != RequestStatus.PENDING:
            return used_page(request, mlist)
        if describe(request, mlist) is None:
            return unknown_page()
        ctx = web.context(session, now=now, source=client)
        holder = web_actor(auth=Auth.CONFIRMED_REPLY)  # holding the token is the proof
        if request.expires_at <= now:
            confirm(ctx, holder, token)  # records the expiry
            return expired_page(request, mlist)
        outcome = confirm(ctx, holder, token)
        return _result_page(request, mlist, outcome)
