# SPDX-License-Identifier: Apache-2.0
"""What every response and every form post goes through: headers, logging, origin checks.

Input is the raw ASGI traffic and the site secret; output is responses carrying
the security headers, an access log whose token paths are redacted, and the
checks the confirmation form relies on. Nothing here keeps state between
requests: the confirmation form key is derived from the token and the secret,
so no server-side session is needed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterable, Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("listserv.web.access")

#: `default-src 'self'` with nothing inline: no script at all, styles only from /static/.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    # Confirmation and unsubscribe URLs carry tokens: never send them to another
    # site. `same-origin` (not `no-referrer`) so our own form posts carry our
    # Origin, and an `Origin: null` can be refused.
    ("referrer-policy", "same-origin"),
    ("x-content-type-options", "nosniff"),
    ("cross-origin-opener-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """Adds the security headers to every response, error pages included.

    Wraps the whole Starlette application (outside its ServerErrorMiddleware),
    so a 500 page carries them too. Responses default to `Cache-Control:
    no-store` (token pages must not sit in shared caches); static files say
    how long they may be kept.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        headers = list(SECURITY_HEADERS)
        if hsts:
            headers.append(("strict-transport-security", "max-age=31536000"))
        self.headers = tuple(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    # A response may only tighten the CSP (an attachment's sandbox).
                    if name != "content-security-policy" or name not in headers:
                        headers[name] = value
                if "cache-control" not in headers:
                    headers["cache-control"] = "public, max-age=86400" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


_TOKEN_PATHS = (
    re.compile(r"^(/confirm/)[^/]+"),
    re.compile(r"^(/unsubscribe/[^/]+/)[^/]+"),
    re.compile(r"^(/login/)(?!second-factor$)[^/]+"),
)


def redact_path(path: str) -> str:
    """The path with any token replaced, fit for a log line."""
    for pattern in _TOKEN_PATHS:
        path = pattern.sub(r"\1[token]", path)
    return path


class AccessLog:
    """One INFO line per request on `listserv.web.access`, tokens redacted.

    uvicorn's own access log is off (it would write every confirmation and
    unsubscribe token into the log); this one never logs a query string, a
    client address or a token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                redact_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )


def confirm_form_key(secret: str, token: str) -> str:
    """The hidden field the confirmation page carries: HMAC(site secret, token).

    Only a POST carrying it acts, so a POST needs the page to have been
    rendered by us for this very token; no cookie or session is involved.
    """
    mac = hmac.new(
        secret.encode(), b"web-confirm-form:" + token.encode("ascii", "replace"), hashlib.sha256
    ).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def check_confirm_form_key(secret: str, token: str, value: str) -> bool:
    return hmac.compare_digest(confirm_form_key(secret, token), value.strip())


def origin_of(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()


def is_cross_site(headers: Mapping[str, str], our_origins: Iterable[str]) -> bool:
    """True when a browser tells us a form post did not come from our own page.

    `Sec-Fetch-Site` is what modern browsers send; a post from our own page
    says `same-origin`. `Origin` must then be one of ours: our pages send
    `Referrer-Policy: same-origin`, so a browser posting our own form names
    our origin, and `Origin: null` (a sandboxed frame, a `data:` page, a
    privacy redirect) is refused. Clients that send neither header (curl,
    mail providers' one-click posts) are not browsers a third-party page
    could drive.
    """
    site = headers.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        return True
    origin = headers.get("origin", "").strip().lower()
    if origin:
        return origin not in set(our_origins)
    return False
