# SPDX-License-Identifier: Apache-2.0
"""The /api/v1 application: each `routes.ENDPOINTS` path as a plain ASGI endpoint.

A request goes: read the body (at most 1 MiB) on the event loop, then run
`handling.handle` — on the loop itself for a quick read on SQLite, in a
worker thread otherwise — and send the reply. `PathEndpoint` reads what it
needs straight from the ASGI scope and sends the reply as two messages,
without Starlette's Request and Response objects (building them was about a
sixth of a roster page's time in the app); Starlette still routes, so a wrong
method is a 405 listing the right ones and every error is a problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from listserv import db
from listserv.api import docs, openapi
from listserv.api.auth import RateLimiter, TokenCache
from listserv.api.handling import (
    MAX_BODY,
    Api,
    Incoming,
    handle,
    note_use,
    on_sqlite,
    threads_for,
)
from listserv.api.problems import Problem
from listserv.api.routes import ENDPOINTS
from listserv.api.spec import Endpoint, Reply
from listserv.config import Settings
from listserv.limits import per_process
from listserv.templates import Templates

_TOO_BIG = f"The body may be at most {MAX_BODY} bytes."


class PathEndpoint:
    """The ASGI app of one API path: picks the row by method, handles it, sends the reply."""

    def __init__(self, api: Api, rows: Mapping[str, Endpoint]) -> None:
        self.api = api
        self.rows = dict(rows)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = self.api
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        row = self.rows[method]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await _read_body(headers, receive)
        except Problem as problem:
            await problem.response()(scope, receive, send)
            return
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        incoming = Incoming(
            method=method,
            # As Starlette's `request.url.path` gives it.
            path=scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C"),
            path_params=scope.get("path_params", {}),
            query=dict(parse_qsl(query, keep_blank_values=True)) if query else {},
            headers=headers,
            body=body,
            peer=client[0] if client else "",
        )
        loop = asyncio.get_running_loop()
        try:
            if method == "GET" and api.inline_reads and not row.slow:
                reply, unnoted = handle(api, row, incoming, inline=True)
            else:
                reply, unnoted = await loop.run_in_executor(api.threads, handle, api, row, incoming)
        except Problem as problem:
            await problem.response()(scope, receive, send)
            return
        if unnoted is not None:
            await loop.run_in_executor(api.threads, note_use, api, unnoted)
        if method != "GET":
            api.on_outbox()
        await _send_reply(reply, send)


async def _send_reply(reply: Reply, send: Send) -> None:
    """The reply as Starlette's `Response` would send it (the same headers, in order)."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    body = b"" if reply.status == 204 else reply.raw or b""
    names = {name for name, _ in raw}
    if reply.status != 204 and b"content-length" not in names:
        raw.append((b"content-length", str(len(body)).encode("latin-1")))
    if reply.status != 204 and b"content-type" not in names:
        kind = reply.media_type
        if kind.startswith("text/") and "charset=" not in kind.lower():
            kind += "; charset=utf-8"
        raw.append((b"content-type", kind.encode("latin-1")))
    await send({"type": "http.response.start", "status": reply.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _read_body(headers: Mapping[str, str], receive: Receive) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Problem(413, _TOO_BIG)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Problem(400, "The client went away before sending the whole body.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise Problem(413, _TOO_BIG)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def build_routes(api: Api) -> list[BaseRoute]:
    """One route per path (so a wrong method is a 405 listing the right ones)."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for row in ENDPOINTS:
        by_path.setdefault(row.path, {})[row.method] = row
    routes: list[BaseRoute] = [
        Route(path, PathEndpoint(api, rows), methods=list(rows)) for path, rows in by_path.items()
    ]
    routes.extend(
        [
            Route("/openapi.json", openapi.serve_document, methods=["GET"]),
            Route("/docs", docs.serve_page, methods=["GET"]),
            Route("/docs.css", docs.serve_css, methods=["GET"]),
        ]
    )
    return routes


def _http_problem(exc: HTTPException) -> Problem:
    detail = {404: "There is no such resource in this API.", 405: "Not allowed on this path."}
    return Problem(
        exc.status_code,
        detail.get(exc.status_code, str(exc.detail)),
        headers=dict(exc.headers or {}),
    )


class ApiApp:
    """The API's ASGI app: Starlette's router, and the API's own answer to every error.

    What a Starlette application would put around the router (a server-error
    layer, an exception layer, each wrapping `send`), in one: an HTTP error
    of the routing (404, 405) becomes a problem; anything else unexpected, a
    500 problem if nothing was sent yet, and is raised on so the server logs
    it.
    """

    def __init__(self, api: Api, routes: list[BaseRoute]) -> None:
        self.api = api
        # No slash redirects: Starlette's would build its Location from the Host
        # header, and a client of an API is told 404 rather than sent elsewhere.
        self.router = Router(routes=routes, redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        scope["app"] = self  # so the router raises its 404 and 405 instead of answering them
        started = False

        async def noting_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.router(scope, receive, noting_send)
        except HTTPException as exc:
            if started:
                raise
            await _http_problem(exc).response()(scope, receive, send)
        except Exception:
            if not started:
                problem = Problem(500, "Something went wrong; nothing was changed.")
                await problem.response()(scope, receive, send)
            raise


class ApiMount:
    """Sends every request under `/api/v1` to the API, whatever its path holds.

    Starlette's `Mount` matches the rest of the path with `.*`, which stops at a
    newline (`%0A`), so such a request would fall through to the web pages' HTML
    404; here the prefix alone decides, and the API answers with a problem.
    """

    def __init__(self, api: ASGIApp, pages: ASGIApp, prefix: str = "/api/v1") -> None:
        self.api, self.pages, self.prefix = api, pages, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            root = scope.get("root_path", "") + self.prefix
            await self.api({**scope, "root_path": root}, receive, send)
            return
        await self.pages(scope, receive, send)


def create_api(
    settings: Settings,
    factory: sessionmaker[Session],
    templates: Templates,
    *,
    on_outbox: Callable[[], None] | None = None,
) -> ApiApp:
    """The API application, mounted by the web app at /api/v1."""
    limits = settings.limits
    api = Api(
        settings=settings,
        factory=factory,
        reader=db.reader_of(factory),
        templates=templates,
        limiter=RateLimiter(
            per_process(limits.api_requests_per_second, settings.web.processes),
            per_process(limits.api_burst, settings.web.processes),
        ),
        on_outbox=on_outbox or (lambda: None),
        threads=ThreadPoolExecutor(threads_for(factory), thread_name_prefix="api"),
        tokens=TokenCache(),
        inline_reads=on_sqlite(factory),
    )
    return ApiApp(api, build_routes(api))
