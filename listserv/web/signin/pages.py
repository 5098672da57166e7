# SPDX-License-Identifier: Apache-2.0
"""The sign-in pages: ask for a link, open it, pass the second factor, sign out.

Page functions run in a worker thread and return a `Page` (and, when a
session starts, its raw id for the cookie). They parse and present; every
change is an act in `acts/signin.py`, with a web actor.

The link's GET only shows a button (mail gateways fetch links); its POST
must carry the form key that page rendered, an HMAC of the token, so a
fetched or guessed URL signs nobody in.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any

import segno

from listserv import db, signin
from listserv.actors import Auth, web_actor
from listserv.acts import signin as signin_acts
from listserv.acts.errors import ActError, NotFound
from listserv.models import WebSession, utcnow
from listserv.web.pages import Link, Page, Web, message
from listserv.web.signin.visitor import Visitor

TOKEN = re.compile(r"^[a-z2-7]{32}$")

HOW = {
    Auth.LINK: "a mailed link",
    Auth.LINK_TOTP: "a mailed link and a code from an authenticator app",
    Auth.LINK_RECOVERY: "a mailed link and a recovery code",
    Auth.LINK_PASSKEY: "a mailed link and a passkey",
}


def link_form_key(secret: str, token: str) -> str:
    mac = hmac.new(secret.encode(), b"web-sign-in:" + token.encode("ascii", "replace"), "sha256")
    return mac.hexdigest()[:32]


def console_page(template: str, visitor: Visitor | None, status: int = 200, **context: Any) -> Page:
    """A page of the signed-in part: the visitor, a notice and form errors always defined."""
    context.setdefault("notice", "")
    context.setdefault("errors", {})
    return Page(template, status, {"visitor": visitor, **context})


def login_page(
    visitor: Visitor | None, *, notice: str = "", address: str = "", status: int = 200
) -> Page:
    return console_page(
        "web/login.html", visitor, status, title="Sign in", notice=notice, address=address
    )


def ask_for_link(web: Web, address: str, client: str) -> Page:
    """POST /login: the same answer whoever asks, known or not."""
    address = address.strip()[:254]
    if not address:
        page = login_page(None, status=400)
        page.context["errors"] = {"address": "Enter your email address"}
        return page
    with db.session_scope(web.factory) as session:
        ctx = web.context(session, now=utcnow(), source=client)
        signin_acts.request_link(ctx, web_actor(), address)
    return message(
        200,
        "Check your mail",
        f"If {address} may sign in here, a sign-in link is on its way to it. The link "
        f"works once, for {signin_acts.LINK_MINUTES} minutes.",
        "No message after a few minutes? Check the address, and your junk mail folder, "
        "then ask again.",
        next_steps=[Link("Ask for another link", "/login")],
    )


def _link_refused(error: ActError) -> Page:
    again = [Link("Ask for a new sign-in link", "/login")]
    if isinstance(error, NotFound):
        return message(
            404,
            "This sign-in link is not known",
            "The link may have been cut short: open it again from the message, copying "
            "the whole link, or ask for a new one.",
            next_steps=again,
        )
    if error.code == "link-used":
        words = "Each sign-in link works once, and this one has been used."
    else:
        words = (
            f"Sign-in links work for {signin_acts.LINK_MINUTES} minutes, and this one has expired."
        )
    return message(
        410,
        "This sign-in link no longer works",
        words,
        "Ask for a new link on the sign-in page; we will mail it to you.",
        next_steps=again,
    )


def link_page(web: Web, token: str) -> Page:
    """GET /login/<token>: a button, nothing more (reads only)."""
    token = token.lower()
    if not TOKEN.match(token):
        return _link_refused(NotFound("unknown"))
    with web.factory() as session:
        ctx = web.context(session, now=utcnow(), source="")
        try:
            link = signin_acts.find_link(ctx, token)
        except ActError as error:
            return _link_refused(error)
        return console_page(
            "web/login_link.html",
            None,
            title="Sign in",
            address=link.address,
            token=token,
            form_key=link_form_key(web.secret, token),
            expires=f"{link.expires_at:%H:%M} UTC",
        )


@dataclass(frozen=True)
class Redeemed:
    """The answer to the link's POST: a page, or a new session and where to go."""

    page: Page | None = None
    raw_session_id: str = ""
    go_to: str = ""


def redeem(web: Web, token: str, form_key: str, client: str) -> Redeemed:
    token = token.lower()
    if not TOKEN.match(token):
        return Redeemed(_link_refused(NotFound("unknown")))
    if not hmac.compare_digest(link_form_key(web.secret, token), form_key.strip()):
        return Redeemed(
            message(
                403,
                "This form could not be accepted",
                "Nothing was changed. Open the link in the message we sent you again, and "
                "press the button on that page.",
                next_steps=[Link("Open the sign-in page", f"/login/{token}")],
            )
        )
    try:
        with db.session_scope(web.factory) as session:
            ctx = web.context(session, now=utcnow(), source=client)
            done = signin_acts.redeem_link(ctx, web_actor(), token)
    except ActError as error:
        return Redeemed(_link_refused(error))
    if done.owes != signin_acts.Factor.NONE:
        return Redeemed(raw_session_id=done.raw_session_id, go_to="/login/second-factor")
    return Redeemed(raw_session_id=done.raw_session_id, go_to="/account")


def qr_svg(uri: str) -> str:
    svg: str = segno.make(uri, error="m").svg_inline(scale=5, title="QR code to scan")
    return svg.replace("<svg ", '<svg role="img" ', 1)


def second_factor_page(web: Web, visitor: Visitor, *, error: str = "", status: int = 200) -> Page:
    with web.factory() as session:
        ctx = web.context(session, now=utcnow(), source="")
        factor = signin_acts.totp_of(ctx, visitor.address)
    if factor is None:
        return message(
            404,
            "Nothing to check",
            "Ask for a new sign-in link.",
            next_steps=[Link("Sign in", "/login")],
        )
    enrolling = factor.confirmed_at is None
    context: dict[str, Any] = {
        "title": "Second factor",
        "enrolling": enrolling,
        "address": visitor.address,
    }
    if enrolling:
        uri = signin.provisioning_uri(factor.secret, visitor.address, web.settings.site.domain)
        context.update(uri=uri, secret=factor.secret, qr_svg=qr_svg(uri))
    if error:
        context["errors"] = {"code": error}
    return console_page("web/second_factor.html", visitor, status, **context)


def check_code(web: Web, visitor: Visitor, code: str, client: str) -> Page | None:
    """POST /login/second-factor: None when passed without codes to show (go on)."""
    if not code.strip():
        return second_factor_page(web, visitor, error="Enter the code", status=400)
    with db.session_scope(web.factory) as session:
        ctx = web.context(session, now=utcnow(), source=client)
        row = session.get(WebSession, visitor.session_row_id)
        assert row is not None
        result = signin_acts.pass_second_factor(ctx, visitor.actor(), row, code[:40])
    if not result.passed:
        status = 429 if result.locked_until is not None else 400
        return second_factor_page(web, visitor, error=result.text, status=status)
    if result.recovery_codes:
        return console_page(
            "web/recovery_codes.html",
            None,
            title="Your recovery codes",
            codes=result.recovery_codes,
        )
    return None


def sign_out(web: Web, visitor: Visitor, client: str, *, everywhere: bool) -> Page:
    with db.session_scope(web.factory) as session:
        ctx = web.context(session, now=utcnow(), source=client)
        row = session.get(WebSession, visitor.session_row_id)
        assert row is not None
        ended = signin_acts.sign_out(ctx, visitor.actor(), row, everywhere=everywhere)
    words = (
        f"Every session of {visitor.address} has ended ({ended})."
        if everywhere
        else "You have signed out of this browser."
    )
    return message(200, "You have signed out", words, next_steps=[Link("Sign in again", "/login")])
