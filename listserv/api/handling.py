# SPDX-License-Identifier: Apache-2.0
"""One API request, from its parts to its reply: no HTTP, no Starlette (that is `api.app`).

`handle` runs one `routes.ENDPOINTS` row in one transaction: authenticate the
token, spend from its rate bucket, cast and check the query and body against
the row's schemas, replay a remembered `Idempotency-Key` answer, run the
handler (which calls an act), remember the answer, commit. An act's refusal
(`ActError`) rolls everything back and becomes a problem with the act's own
words. Nothing here decides what may be done: that is the acts'.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from listserv import db
from listserv.acts import tokens
from listserv.acts.errors import ActError
from listserv.api import idempotency
from listserv.api.auth import Caller, RateLimiter, TokenCache, authenticate
from listserv.api.problems import Problem, from_act_error
from listserv.api.routes import SCHEMAS
from listserv.api.spec import Call, Endpoint, Reply, Schema, rfc3339
from listserv.api.validate import cast_query, check
from listserv.config import Settings
from listserv.context import Context
from listserv.models import utcnow
from listserv.prepared import HeldReader
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
    return 1 if on_sqlite(factory) else 4


def on_sqlite(factory: sessionmaker[Session]) -> bool:
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
    #: The event loop's own reader connection for those reads (`prepared.HeldReader`).
    held: HeldReader | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.inline_reads and self.held is None:
            self.held = HeldReader(self.reader.kw["bind"])


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
    are already text). Keys that are not strings (`OPT_NON_STR_KEYS`, which
    nearly doubles the time of a roster page) are taken in that second pass too.
    """
    try:
        return orjson.dumps(body, option=orjson.OPT_PASSTHROUGH_DATETIME, default=_json_default)
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
    api: Api, endpoint: Endpoint, incoming: Incoming, *, inline: bool = False, again: bool = True
) -> tuple[Reply, int | None]:
    """One request in one transaction, and the token whose use is still to be noted.

    A GET runs in a reader session (on SQLite a deferred BEGIN that waits for no
    writer; `inline`, on the event loop, the loop's held reader connection);
    the once-a-minute note of the token's use (`note_use`) is then a write of
    its own, which the caller runs in a worker thread. A session that never
    began a transaction of its own (a read made only of `Prepared` reads) has
    nothing to commit.
    """
    reading = endpoint.method == "GET"
    opened: AbstractContextManager[Session] = (
        api.held if inline and api.held is not None else (api.reader if reading else api.factory)()
    )
    with opened as session:
        try:
            reply, caller = _handle(api, endpoint, incoming, session)
            if caller.stale and not reading:
                tokens.touch(session, caller.token_id, utcnow())
            if session.in_transaction():
                session.commit()
        except ActError as exc:
            session.rollback()
            raise from_act_error(exc) from None
        except IntegrityError:
            # The same Idempotency-Key raced in from another connection: answer as it did.
            session.rollback()
            if not again or incoming.headers.get(idempotency.HEADER) is None:
                raise
            return handle(api, endpoint, incoming, inline=inline, again=False)
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
