# SPDX-License-Identifier: Apache-2.0
"""The /api/v1 application: each `routes.ENDPOINTS` row served the same careful way.

A request goes: read the body (at most 1 MiB) on the event loop, then in one
worker thread and one transaction — authenticate the token, spend from its
rate bucket, cast and check the query and body against the row's schemas,
replay a remembered `Idempotency-Key` answer, run the handler (which calls
an act), remember the answer, commit — and present the reply. An act's
refusal (`ActError`) rolls everything back and becomes a problem with the
act's own words. Nothing here decides what may be done: that is the acts'.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from listserv import db
from listserv.acts import tokens
from listserv.acts.errors import ActError
from listserv.api import docs, idempotency, openapi
from listserv.api.auth import Caller, RateLimiter, TokenCache, authenticate
from listserv.api.problems import Problem, from_act_error
from listserv.api.routes import ENDPOINTS, SCHEMAS
from listserv.api.spec import Call, Endpoint, Reply, Schema, rfc3339
from listserv.api.validate import cast_query, check
from listserv.config import Settings
from listserv.context import Context
from listserv.limits import per_process
from listserv.models import utcnow
from listserv.templates import Templates

MAX_BODY = 1 << 20


def threads_for(factory: sessionmaker[Session]) -> int:
    """One thread on SQLite, four on PostgreSQL.

    On SQLite a request is Python under the GIL nearly all the way (the
    database is a library call in this process, and writers queue on one lock),
    so more threads only fight over the GIL: measured, four threads cost a
    quarter more CPU a roster page than one. PostgreSQL's answers take network
    round trips, so several threads overlap their waits.
    """
    return 1 if _on_sqlite(factory) else 4


def _on_sqlite(factory: sessionmaker[Session]) -> bool:
    bind = factory.kw.get("bind")
    return bind is not None and bind.dialect.name == "sqlite"


@dataclass
class Api:
    """What every request shares: the site, the database, the rate buckets."""

    settings: Settings
    factory: sessionmaker[Session]
    #: Sessions that only read, for GET (`db.reader_of`).
    reader: sessionmaker[Session]
    templates: Templates
    limiter: RateLimiter
    on_outbox: Callable[[], None]
    #: Worker threads for requests (see `threads_for`), used through the loop's
    #: `run_in_executor`, which costs less a call than anyio's thread pool.
    threads: ThreadPoolExecutor
    tokens: TokenCache
    #: Quick reads on the event loop, with no hop to a thread (SQLite only: a page
    #: read is a sub-millisecond library call that holds the GIL either way and
    #: waits for no lock). A quarter less CPU a request; writes and
    #: `Endpoint.slow` reads still go to a thread.
    inline_reads: bool = False


@dataclass(frozen=True)
class Incoming:
    """The parts of an HTTP request the worker thread needs (no Starlette objects)."""

    method: str
    path: str
    path_params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    peer: str


def _json_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _stamps(value: Any) -> Any:
    """The body with every datetime as the API writes it (`rfc3339`), for orjson."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {k: _stamps(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stamps(v) for v in value]
    return value


def encode(body: Any) -> bytes:
    """JSON by orjson, ~10x the standard library's speed on a roster page.

    orjson writes datetimes itself (`+00:00`, not `Z`), so a body that holds
    any is first rewritten with `rfc3339`; a roster page holds none (its rows
    are already text).
    """
    try:
        return orjson.dumps(
            body,
            option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS,
            default=_json_default,
        )
    except TypeError:
        return orjson.dumps(_stamps(body), option=orjson.OPT_NON_STR_KEYS, default=_json_default)


def _resolve(schema: Schema) -> Schema:
    target = schema.get("$ref", "")
    return SCHEMAS[target.rsplit("/", 1)[-1]] if target else schema


def _path_params(endpoint: Endpoint, given: Mapping[str, str]) -> dict[str, str]:
    """Path values checked against their schemas; a value that cannot name anything is a 404."""
    for param in endpoint.params:
        if param.where != "path":
            continue
        value: Any = given[param.name]
        if param.schema.get("type") == "integer":
            value = int(value) if value.isascii() and value.isdigit() else -1
        try:
            check(value, param.schema, param.name)
        except Problem:
            raise Problem(404, f"There is no {param.name} {given[param.name]!r} here.") from None
    return dict(given)


def _not_json(word: str) -> Any:
    """NaN and Infinity, which Python's parser takes but JSON (RFC 8259) has not."""
    raise ValueError(f"{word} is not JSON")


def _body(endpoint: Endpoint, incoming: Incoming) -> Any:
    if endpoint.body is None:
        return None
    schema = _resolve(endpoint.body)
    if not incoming.body.strip():
        value: Any = {}
    else:
        kind = incoming.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            raise Problem(415, "Send the body as application/json.")
        try:
            value = json.loads(incoming.body, parse_constant=_not_json)
        except (ValueError, UnicodeDecodeError):
            raise Problem(400, "The body is not valid JSON.") from None
    check(value, schema, "")
    return value


def handle(
    api: Api, endpoint: Endpoint, incoming: Incoming, *, again: bool = True
) -> tuple[Reply, int | None]:
    """One request in one transaction, and the token whose use is still to be noted.

    A GET runs in a reader session (on SQLite a deferred BEGIN that waits for no
    writer); the once-a-minute note of the token's use (`note_use`) is then a
    write of its own, which the caller runs in a worker thread.
    """
    reading = endpoint.method == "GET"
    with (api.reader if reading else api.factory)() as session:
        try:
            reply, caller = _handle(api, endpoint, incoming, session)
            if caller.stale and not reading:
                tokens.touch(session, caller.token_id, utcnow())
            session.commit()
        except ActError as exc:
            session.rollback()
            raise from_act_error(exc) from None
        except IntegrityError:
            # The same Idempotency-Key raced in from another connection: answer as it did.
            session.rollback()
            if not again or incoming.headers.get(idempotency.HEADER) is None:
                raise
            return handle(api, endpoint, incoming, again=False)
        except BaseException:
            session.rollback()
            raise
    # Encoded after the commit, so SQLite's one writer is not held for it.
    if reply.raw is None and reply.status != 204:
        reply.raw = encode(reply.body)
    return reply, caller.token_id if caller.stale and reading else None


def note_use(api: Api, token_id: int) -> None:
    """Note that a token was used (at most once a minute a token, see `TokenCache`)."""
    with db.session_scope(api.factory) as writer:
        tokens.touch(writer, token_id, utcnow())


def _handle(
    api: Api, endpoint: Endpoint, incoming: Incoming, session: Session
) -> tuple[Reply, Caller]:
    now = utcnow()
    secret = api.settings.site.secret.get()
    caller = authenticate(session, secret, incoming.headers.get("authorization"), now, api.tokens)
    api.limiter.take(caller.token_id)
    path = _path_params(endpoint, incoming.path_params)
    query = cast_query(endpoint.params, incoming.query)
    body = _body(endpoint, incoming)
    key = incoming.headers.get(idempotency.HEADER) if endpoint.method == "POST" else None
    digest = ""
    if key is not None:
        key = idempotency.check_key(key)
        digest = idempotency.request_hash(incoming.method, incoming.path, incoming.body)
        replayed = idempotency.replay(session, caller.token_id, key, digest)
        if replayed is not None:
            return replayed, caller
    ctx = Context(session, api.settings, api.templates, now=now, source=f"api {incoming.peer}")
    reply = endpoint.handler(Call(ctx, caller.actor, path, query, body, incoming.headers))
    if key is not None and 200 <= reply.status < 300:
        if reply.raw is None and reply.status != 204:
            reply.raw = encode(reply.body)
        session.flush()
        idempotency.remember(
            session,
            caller.token_id,
            key,
            digest,
            reply.status,
            reply.raw or b"",
            reply.headers,
            now,
        )
    return reply, caller


def _present(reply: Reply) -> Response:
    if reply.status == 204:
        return Response(status_code=204, headers=reply.headers)
    return Response(
        reply.raw or b"",
        status_code=reply.status,
        media_type=reply.media_type,
        headers=reply.headers,
    )


def serve(endpoints: dict[str, Endpoint]) -> Callable[[Request], Any]:
    """The Starlette endpoint for one path: picks the row by method."""

    async def endpoint(request: Request) -> Response:
        api: Api = request.app.state.api
        method = "GET" if request.method == "HEAD" else request.method
        row = endpoints[method]
        try:
            body = await _read_body(request)
        except Problem as problem:
            return problem.response()
        incoming = Incoming(
            method=method,
            path=request.url.path,
            path_params=request.path_params,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            peer=request.client.host if request.client else "",
        )
        loop = asyncio.get_running_loop()
        try:
            if method == "GET" and api.inline_reads and not row.slow:
                reply, unnoted = handle(api, row, incoming)
            else:
                reply, unnoted = await loop.run_in_executor(api.threads, handle, api, row, incoming)
        except Problem as problem:
            return problem.response()
        if unnoted is not None:
            await loop.run_in_executor(api.threads, note_use, api, unnoted)
        if method != "GET":
            api.on_outbox()
        return _present(reply)

    return endpoint


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Problem(413, f"The body may be at most {MAX_BODY} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise Problem(413, f"The body may be at most {MAX_BODY} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Problem(400, "The client went away before sending the whole body.") from None
    return b"".join(chunks)


def build_routes() -> list[BaseRoute]:
    """One Starlette route per path (so a wrong method is a 405 listing the right ones)."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for row in ENDPOINTS:
        by_path.setdefault(row.path, {})[row.method] = row
    routes: list[BaseRoute] = [
        Route(path, serve(rows), methods=list(rows)) for path, rows in by_path.items()
    ]
    routes.extend(
        [
            Route("/openapi.json", openapi.serve_document, methods=["GET"]),
            Route("/docs", docs.serve_page, methods=["GET"]),
            Route("/docs.css", docs.serve_css, methods=["GET"]),
        ]
    )
    return routes


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = {404: "There is no such resource in this API.", 405: "Not allowed on this path."}
    problem = Problem(
        exc.status_code,
        detail.get(exc.status_code, str(exc.detail)),
        headers=dict(exc.headers or {}),
    )
    return problem.response()


async def _server_error(request: Request, exc: Exception) -> Response:
    return Problem(500, "Something went wrong; nothing was changed.").response()


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
) -> Starlette:
    """The API application, mounted by the web app at /api/v1."""
    app = Starlette(
        routes=build_routes(),
        exception_handlers={HTTPException: _http_error, 500: _server_error},
    )
    limits = settings.limits
    app.state.api = Api(
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
        inline_reads=_on_sqlite(factory),
    )
    return app
