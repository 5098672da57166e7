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
import ipaddress
import logging
import os
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


#: Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: uvicorn's rule
#: (`FORWARDED_ALLOW_IPS`, loopback by default; `*` for any).
FORWARDED_ALLOW_IPS = "127.0.0.1,::1"


def forwarded_allow_ips() -> str:
    return os.environ.get("FORWARDED_ALLOW_IPS", FORWARDED_ALLOW_IPS)


class TrustedProxies:
    """The addresses (or networks) whose forwarding headers are believed."""

    def __init__(self, allowed: str) -> None:
        entries = [item.strip() for item in allowed.split(",") if item.strip()]
        self.anyone = "*" in entries
        self.literals: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.literals.add(entry)
        self._known: dict[str, bool] = {}

    def __contains__(self, host: str | None) -> bool:
        if self.anyone:
            return True
        if not host:
            return False
        found = self._known.get(host)
        if found is None:
            found = self._check(host)
            if len(self._known) < 4096:
                self._known[host] = found
        return found

    def _check(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host in self.literals
        return any(address in network for network in self.networks)

    def client(self, forwarded_for: str) -> tuple[str, int]:
        """The first address in X-Forwarded-For, from the end, that is not a trusted proxy."""
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        if not self.anyone:
            for hop in reversed(hops):
                host, port = _host_port(hop)
                if host not in self:
                    return host, port
        return _host_port(hops[0])


def _host_port(value: str) -> tuple[str, int]:
    """`host`, `v4:port` or `[v6]:port` as (host, port); anything else whole, port 0."""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return value, 0
        return host, int(rest[1:]) if rest[1:].isdigit() else 0
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return (host, int(port)) if port.isdigit() else (value, 0)
    return value, 0


class Edge:
    """What every HTTP request passes first: forwarding headers, security headers, the log.

    One pure ASGI layer doing in one pass what three did (uvicorn's
    ProxyHeadersMiddleware, then an access log, then the security headers):

    - *Proxies*: from a trusted proxy (`TrustedProxies`), `X-Forwarded-For`
      names the client and `X-Forwarded-Proto` the scheme, as uvicorn does.
    - *Headers*: every response, error pages included (this wraps the whole
      application, outside Starlette's ServerErrorMiddleware), carries
      `SECURITY_HEADERS`; a response may only tighten the CSP (an
      attachment's sandbox). Responses default to `Cache-Control: no-store`
      (token pages must not sit in shared caches); static files say how long
      they may be kept.
    - *Log*: one INFO line per request on `listserv.web.access`, its path
      redacted. uvicorn's own access log is off (it would write every
      confirmation and unsubscribe token into the log); this one never logs
      a query string, a client address or a token.
    """

    def __init__(
        self, app: ASGIApp, *, hsts: bool = False, proxies: str = FORWARDED_ALLOW_IPS
    ) -> None:
        self.app = app
        headers = list(SECURITY_HEADERS)
        if hsts:
            headers.append(("strict-transport-security", "max-age=31536000"))
        self.headers = tuple(headers)
        self.names = frozenset(name.encode("latin-1") for name, _ in headers)
        self.names |= {b"cache-control"}
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        self.dynamic = [*raw, (b"cache-control", b"no-store")]
        self.static = [*raw, (b"cache-control", b"public, max-age=86400")]
        self.proxies = TrustedProxies(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if client and client[0] in self.proxies:
            self._forwarded(scope)
        static = scope["path"].startswith("/static/")
        logged = access_log.isEnabledFor(logging.INFO)
        started = time.perf_counter()
        status = 500

        async def edge_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self._secure(message, static)
            await send(message)

        try:
            await self.app(scope, receive, edge_send)
        finally:
            if logged:
                access_log.info(
                    "%s %s %d %.1fms",
                    scope["method"],
                    redact_path(scope["path"]),
                    status,
                    (time.perf_counter() - started) * 1000,
                )

    def _forwarded(self, scope: Scope) -> None:
        proto: bytes | None = None
        hops: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-for":
                hops.append(value)
        if proto is not None:
            scheme = proto.decode("latin-1").strip()
            if scheme in ("http", "https"):
                scope["scheme"] = scheme
        if hops:
            host, port = self.proxies.client(b", ".join(hops).decode("latin-1"))
            if host:
                scope["client"] = (host, port)

    def _secure(self, message: Message, static: bool) -> None:
        """The security headers into a response start (in place, as MutableHeaders would)."""
        raw = message.setdefault("headers", [])
        if not isinstance(raw, list):
            raw = message["headers"] = list(raw)
        names = self.names
        if not any(name.lower() in names for name, _ in raw):
            raw.extend(self.static if static else self.dynamic)
            return
        headers = MutableHeaders(raw=raw)
        for name, value in self.headers:
            # A response may only tighten the CSP (an attachment's sandbox).
            if name != "content-security-policy" or name not in headers:
                headers[name] = value
        if "cache-control" not in headers:
            headers["cache-control"] = "public, max-age=86400" if static else "no-store"


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
