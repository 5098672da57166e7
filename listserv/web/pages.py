# SPDX-License-Identifier: Apache-2.0
"""What the page modules share: the web's view of the service, pages, forms.

A page function does its database work in a worker thread and returns a
`Page` (template, status, variables); `render` turns it into a response on
the event loop. Page functions take plain values, not requests, so they are
tested without HTTP as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import Message

from listserv.config import Settings
from listserv.context import Context
from listserv.limits import Trips, Window
from listserv.templates import Templates
from listserv.web.security import origin_of

#: The largest form body read; the join form is a few hundred bytes.
FORM_LIMIT = 16 * 1024


class PageCache:
    """Rendered pages every visitor sees alike (the list index, list pages), for seconds.

    The list page is what a community links to and what gets busy; its only
    changing part is the member count, which may be a few seconds old. Used
    from the event loop only, so a hit costs no thread and no database round
    trip. Web changes to membership clear it at once; changes by mail show
    within `seconds`. Only successful pages of existing lists are kept, so the
    cache cannot be filled with made-up names.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._pages: dict[str, tuple[float, bytes]] = {}

    def get(self, key: str) -> bytes | None:
        entry = self._pages.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, body: bytes) -> None:
        if self.seconds > 0:
            self._pages[key] = (time.monotonic() + self.seconds, body)

    def clear(self) -> None:
        self._pages.clear()


class Memo:
    """Results worth keeping while the database says nothing they depend on changed.

    Each entry is stored with a version (e.g. the newest history row's id,
    one primary-key lookup); a reader that finds another version rebuilds.
    Entries also expire after `max_age` seconds, because on PostgreSQL a
    transaction holding a lower id may commit after a higher one was seen.
    Used from worker threads: a lost race only builds a value twice. Bounded,
    oldest entries dropped first.
    """

    def __init__(self, size: int = 64, max_age: float = 60.0) -> None:
        self.size = size
        self.max_age = max_age
        self._entries: dict[Any, tuple[Any, float, Any]] = {}

    def get(self, key: Any, version: Any) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or entry[1] <= time.monotonic():
            return None
        return entry[2]

    def put(self, key: Any, version: Any, value: Any) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self.size:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (version, time.monotonic() + self.max_age, value)


@dataclass(frozen=True)
class Web:
    """What the pages need from the service: settings, sessions, templates."""

    settings: Settings
    factory: sessionmaker[Session]
    templates: Templates
    #: Called on the event loop after a request may have queued mail, so an
    #: embedded delivery worker sends it at once (a no-op when running alone).
    on_outbox: Callable[[], None]
    #: Join-form posts one client address (IPv6: one /64) may make per hour.
    joins_per_client_per_hour: int
    cache: PageCache = field(default_factory=lambda: PageCache(0))
    #: The console's roster search index and chart figures, kept per version.
    memo: Memo = field(default_factory=Memo)
    #: Confirm and one-click requests (GET and POST) per client a minute.
    token_pages: Window = field(default_factory=lambda: Window(0, 60.0))
    trips: Trips = field(default_factory=lambda: Trips(None))

    @property
    def secret(self) -> str:
        return self.settings.site.secret.get()

    @property
    def origin(self) -> str:
        return origin_of(self.settings.web.base_url)

    def url(self, path: str) -> str:
        """An absolute URL on this site: always `base_url`, never the request's Host."""
        return self.settings.web.base_url + path

    def context(self, session: Session, *, now: datetime, source: str) -> Context:
        return Context(
            session=session,
            settings=self.settings,
            templates=self.templates,
            now=now,
            source=source,
        )


@dataclass(frozen=True)
class Link:
    text: str
    href: str = ""


@dataclass
class Page:
    template: str
    status: int = 200
    context: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def message(
    status: int,
    heading: str,
    *paragraphs: str,
    next_steps: Sequence[Link] = (),
    headers: dict[str, str] | None = None,
) -> Page:
    """A page that says one thing: a result, a refusal or an error, and what to do next."""
    return Page(
        "web/message.html",
        status,
        {"title": heading, "heading": heading, "paragraphs": paragraphs, "next_steps": next_steps},
        headers or {},
    )


def render(request: Request, web: Web, page: Page) -> HTMLResponse:
    site = web.settings.site
    html = web.templates.render(
        page.template,
        root=request.scope.get("root_path", ""),
        site={
            "domain": site.domain,
            "postmaster": site.postmaster,
            "gov_banner": web.settings.web.gov_banner,
        },
        **page.context,
    )
    return HTMLResponse(html, status_code=page.status, headers=page.headers)


async def read_form(
    request: Request, *, limit: int = FORM_LIMIT, max_fields: int = 20, max_files: int = 0
) -> FormData:
    """The posted form (urlencoded or multipart, as RFC 8058 allows), size-capped.

    The body is read with a cap before parsing, so a client cannot make us
    buffer megabytes; files are refused unless `max_files` allows them.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413)

    async def replay() -> Message:
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    return await Request(request.scope, replay).form(max_files=max_files, max_fields=max_fields)


def text_field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def client_host(request: Request) -> str:
    return request.client.host if request.client else ""
