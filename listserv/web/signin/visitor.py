# SPDX-License-Identifier: Apache-2.0
"""The person behind a request: the session cookie, checked against `web_sessions`.

The cookie holds a random 256-bit id; the server keeps only its hash, so
ending the row signs the browser out. It is `HttpOnly` and `SameSite=Strict`,
and when the site is served over https also `Secure` with the `__Host-`
prefix (no subdomain can set or read it). Every POST a signed-in page makes
carries a CSRF token, an HMAC of the session id with the site secret: bound
to the session, needing no storage, and worthless to another browser.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from listserv import db, signin
from listserv.actors import Actor, Auth
from listserv.config import Settings
from listserv.models import Channel, utcnow
from listserv.web.pages import Web, text_field

PLAIN_COOKIE = "listserv-session"
HOST_COOKIE = "__Host-listserv-session"
CSRF_FIELD = "csrf"


def secure(settings: Settings) -> bool:
    return settings.web.base_url.startswith("https://")


def cookie_name(settings: Settings) -> str:
    return HOST_COOKIE if secure(settings) else PLAIN_COOKIE


def csrf_token(secret: str, raw_session_id: str) -> str:
    return hmac.new(
        secret.encode(), b"web-csrf:" + raw_session_id.encode(), hashlib.sha256
    ).hexdigest()[:32]


@dataclass(frozen=True)
class Visitor:
    """A browser with a live session; `auth` is NONE while a second factor is owed."""

    raw_session_id: str
    session_row_id: int
    address: str
    auth: Auth
    site_admin: bool
    csrf: str
    #: Signed in by the link alone but now an owner, moderator or site admin
    #: (given the role since): the console needs the second factor first.
    owes_second_factor: bool = False

    @property
    def signed_in(self) -> bool:
        return self.auth != Auth.NONE

    def actor(self) -> Actor:
        return Actor(self.address, Channel.WEB, self.auth, site_admin=self.site_admin)


def session_cookie(request: Request, settings: Settings) -> str:
    return request.cookies.get(cookie_name(settings), "")


def load_visitor(web: Web, raw: str, now: datetime | None = None) -> Visitor | None:
    """The visitor a cookie names (worker thread); moves the session's idle clock on."""
    if not raw:
        return None
    now = now or utcnow()
    with db.session_scope(web.factory) as session:
        row = signin.live_session(session, web.settings, raw, now)
        if row is None:
            return None
        signin.touch(session, row, now)
        link_only = row.auth == Auth.LINK
        return Visitor(
            raw_session_id=raw,
            session_row_id=row.id,
            address=row.address_key,
            auth=Auth(row.auth),
            site_admin=signin.is_site_admin(web.settings, row.address_key),
            csrf=csrf_token(web.secret, raw),
            owes_second_factor=link_only
            and signin.is_staff(session, web.settings, row.address_key),
        )


def csrf_ok(visitor: Visitor | None, form: FormData) -> bool:
    if visitor is None:
        return False
    return hmac.compare_digest(visitor.csrf, text_field(form, CSRF_FIELD).strip())


def set_session_cookie(response: Response, settings: Settings, raw: str) -> None:
    response.set_cookie(
        cookie_name(settings),
        raw,
        max_age=settings.web.session_hours * 3600,
        path="/",
        secure=secure(settings),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings),
        path="/",
        secure=secure(settings),
        httponly=True,
        samesite="strict",
    )
