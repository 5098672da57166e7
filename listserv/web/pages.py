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

    @property
    def secret(self) -> str:
        return self.settings.site.secret.get()

    @property
    def origin(self) -> str:
        return origin_of(self.settings.web.base_url)

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
        site={"domain": site.domain, "postmaster": site.postmaster},
        **page.context,
    )
    return HTMLResponse(html, status_code=page.status, headers=page.headers)


async def read_form(request: Request) -> FormData:
    """The posted form (urlencoded or multipart, as RFC 8058 allows), size-capped.

    The body is read with a cap before parsing, so a client cannot make us
    buffer megabytes; files are refused.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > FORM_LIMIT:
        raise HTTPException(413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise HTTPException(413)

    async def replay() -> Message:
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    return await Request(request.scope, replay).form(max_files=0, max_fields=20)


def text_field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def client_host(request: Request) -> str:
    return request.client.host if request.client else ""
