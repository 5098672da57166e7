# SPDX-License-Identifier: Apache-2.0
"""The archive's pages: months, a month's threads, a post, search, mbox, Atom, attachments.

Every page asks `archive.access` first with who is viewing (the app's
`viewer`, a function of the request: nobody is signed in until the sign-in
pages give it a session). A members-only archive sends a signed-out visitor
to `/login?next=…`; anyone else it is not for gets the same 404 as a list
that does not exist. Pages are rendered, then answered 304 when the
browser's ETag (a digest of the page) still matches; they may be kept by
the browser only (`private`) unless the archive is public. Attachments are
only ever downloads, under a sandboxing CSP. Database work runs in a worker
thread and never commits.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from listserv.archive import browse, feed, parts, render, search
from listserv.archive.access import Access, archive_access
from listserv.archive.headers import parse_raw
from listserv.archive.query import QueryError, parse_query
from listserv.lists import get_list
from listserv.models import ArchiveAccess
from listserv.web.pages import Link, Page, Web, message
from listserv.web.pages import render as render_page

#: Who is viewing: their proved address, or None when nobody is signed in.
Viewer = Callable[[Request], str | None]

#: The CSP of a downloaded attachment: a sandbox that runs and loads nothing.
ATTACHMENT_CSP = "sandbox; default-src 'none'"
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_LIST_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$", re.IGNORECASE)


def nobody(request: Request) -> str | None:
    """Until the sign-in pages exist, nobody is signed in."""
    return None


@dataclass(frozen=True)
class Reader:
    """The list being read and how to show it to this viewer."""

    list_id: int
    name: str
    display_name: str
    public: bool
    masked: bool  # addresses without their domain (nobody signed in)


#: An archive page, given the list opened for this viewer.
ReaderPage = Callable[[Request, Web, Reader], Awaitable[Response]]
#: What the route table calls.
Endpoint = Callable[[Request], Awaitable[Response]]


def _web(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def _viewer(request: Request) -> str | None:
    viewer: Viewer = getattr(request.app.state, "viewer", nobody)
    return viewer(request)


def not_found() -> Page:
    return message(
        404,
        "Page not found",
        "There is no page at this address.",
        next_steps=[Link("See all mailing lists", "/lists")],
    )


def open_reader(web: Web, name: str, viewer: str | None) -> Reader | Access:
    """The reader, or why not: SIGN_IN or HIDDEN."""
    if not _LIST_NAME.match(name):
        return Access.HIDDEN
    with web.factory() as session:
        mlist = get_list(session, name)
        if mlist is None:
            return Access.HIDDEN
        access = archive_access(session, mlist, viewer)
        if access is not Access.READ:
            return access
        return Reader(
            mlist.id,
            mlist.name,
            mlist.display_name,
            mlist.archive_access == ArchiveAccess.PUBLIC,
            viewer is None,
        )


def _missing(request: Request, web: Web) -> Response:
    return render_page(request, web, not_found())


def _cache_control(reader: Reader) -> str:
    """Only a public archive's pages may be kept by shared caches; every copy is revalidated."""
    return ("public" if reader.public else "private") + ", no-cache"


def _month(request: Request) -> str | None:
    """The path's YYYY-MM, or None when it is not a month (the page is then a 404)."""
    month = str(request.path_params["month"])
    return month if _MONTH.match(month) else None


def _refused(request: Request, web: Web, access: Access) -> Response:
    if access is Access.SIGN_IN:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(web.url("/login?" + urlencode({"next": target})), 303)
    return _missing(request, web)


def _conditional(
    request: Request, response: Response, reader: Reader, modified: datetime | None
) -> Response:
    """ETag (the page's digest) and Last-Modified; 304 when the browser's copy is current."""
    etag = 'W/"' + hashlib.sha256(bytes(response.body)).hexdigest()[:32] + '"'
    headers = {
        "etag": etag,
        "cache-control": _cache_control(reader),
        "vary": "Cookie",
    }
    if modified is not None:
        headers["last-modified"] = format_datetime(modified.astimezone(UTC), usegmt=True)
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response


def _list_view(reader: Reader) -> dict[str, Any]:
    return {"name": reader.name, "display_name": reader.display_name}


def _foia(web: Web, reader: Reader) -> list[str]:
    text = web.templates.render("_foia.txt.j2", list=_list_view(reader))
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def _page_number(request: Request) -> int:
    value = request.query_params.get("page", "1")
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else 1


def for_readers(page: ReaderPage) -> Endpoint:
    """`page` behind the one refusal every archive page gives (sign in, or 404): it sees a reader."""

    @functools.wraps(page)
    async def endpoint(request: Request) -> Response:
        web = _web(request)
        found = await run_in_threadpool(
            open_reader, web, str(request.path_params["name"]), _viewer(request)
        )
        if isinstance(found, Access):
            return _refused(request, web, found)
        return await page(request, web, found)

    return endpoint


@for_readers
async def months_page(request: Request, web: Web, reader: Reader) -> Response:
    def make() -> tuple[Page, datetime | None]:
        with web.factory() as session:
            found = browse.months(session, reader.list_id)
            latest = browse.latest_date(session, reader.list_id)
        context = {"title": f"{reader.display_name} archive", "list": _list_view(reader)}
        return Page("web/archive_months.html", 200, {**context, "months": found}), latest

    page, latest = await run_in_threadpool(make)
    return _conditional(request, render_page(request, web, page), reader, latest)


@for_readers
async def month_page(request: Request, web: Web, reader: Reader) -> Response:
    month = _month(request)
    if month is None:
        return _missing(request, web)
    number = _page_number(request)

    def make() -> browse.MonthPage:
        with web.factory() as session:
            return browse.month_page(session, reader.list_id, month, number)

    found = await run_in_threadpool(make)
    if not found.posts:
        return _missing(request, web)
    label = browse.Month(month, found.posts).label
    page = Page(
        "web/archive_month.html",
        200,
        {
            "title": f"{reader.display_name} archive, {label}",
            "list": _list_view(reader),
            "label": label,
            "month": found,
            "masked": reader.masked,
        },
    )
    return _conditional(request, render_page(request, web, page), reader, found.latest)


@for_readers
async def post_page(request: Request, web: Web, reader: Reader) -> Response:
    post_id = int(request.path_params["post_id"])

    def make() -> Page | None:
        with web.factory() as session:
            view = browse.post_view(session, reader.list_id, post_id)
        if view is None:
            return None
        shown = render.show_parts(parts.parts_of(parse_raw(view.raw)), masked=reader.masked)
        entry = view.entry
        return Page(
            "web/archive_post.html",
            200,
            {
                "title": f"{entry.subject or '(no subject)'} – {reader.display_name} archive",
                "list": _list_view(reader),
                "entry": entry,
                "sender": render.sender_label(
                    entry.sender_name, entry.sender, masked=reader.masked
                ),
                "parts": shown,
                "thread": view.thread,
                "previous": view.previous,
                "next": view.next,
                "foia": _foia(web, reader),
                "masked": reader.masked,
            },
        )

    page = await run_in_threadpool(make)
    if page is None:
        return _missing(request, web)
    modified = page.context["entry"].date
    return _conditional(request, render_page(request, web, page), reader, modified)


@for_readers
async def attachment(request: Request, web: Web, reader: Reader) -> Response:
    post_id, number = int(request.path_params["post_id"]), int(request.path_params["number"])

    def load() -> tuple[bytes, str] | None:
        with web.factory() as session:
            view = browse.post_view(session, reader.list_id, post_id)
        found = parts.leaf(view.raw, number) if view is not None else None
        if found is None:
            return None
        part, filename = found
        payload = part.get_payload(decode=True)
        if part.get_content_type() == "message/rfc822" or not isinstance(payload, bytes):
            payload = part.as_bytes() if not isinstance(payload, bytes) else payload
        return payload, filename or f"part-{number + 1}"

    found = await run_in_threadpool(load)
    if found is None:
        return _missing(request, web)
    payload, filename = found
    return Response(
        payload,
        media_type="application/octet-stream",
        headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "content-security-policy": ATTACHMENT_CSP,
            "x-content-type-options": "nosniff",
            "cache-control": _cache_control(reader),
        },
    )


@for_readers
async def mbox(request: Request, web: Web, reader: Reader) -> Response:
    month = _month(request)
    if month is None:
        return _missing(request, web)

    def exists() -> bool:
        with web.factory() as session:
            return browse.has_month(session, reader.list_id, month)

    if not await run_in_threadpool(exists):
        return _missing(request, web)

    def chunks() -> Any:
        with web.factory() as session:
            yield from browse.month_mbox(session, reader.list_id, month)

    return StreamingResponse(
        iterate_in_threadpool(chunks()),
        media_type="application/mbox",
        headers={
            "content-disposition": f'attachment; filename="{reader.name}-{month}.mbox"',
            "cache-control": _cache_control(reader),
        },
    )


@for_readers
async def search_page(request: Request, web: Web, reader: Reader) -> Response:
    text = request.query_params.get("q", "")[:500]
    number = _page_number(request)
    context: dict[str, Any] = {
        "title": f"Search the {reader.display_name} archive",
        "list": _list_view(reader),
        "q": text,
        "results": None,
        "error": "",
        "masked": reader.masked,
    }
    status = 200
    if text.strip():
        try:
            query = parse_query(text)
        except QueryError as exc:
            context["error"], status = str(exc), 400
        else:

            def run() -> search.Results:
                with web.factory() as session:
                    return search.search(session, reader.list_id, query, page=number)

            results = await run_in_threadpool(run)
            context["results"] = results
            context["hits"] = [
                {
                    "hit": hit,
                    "subject": render.marked_html(hit.subject, masked=reader.masked),
                    "snippet": render.marked_html(hit.snippet, masked=reader.masked),
                    "sender": render.sender_label(
                        hit.sender_name, hit.sender, masked=reader.masked
                    ),
                }
                for hit in results.hits
            ]
            context["page_link"] = lambda n: "?" + urlencode({"q": text, "page": n})
    page = Page("web/archive_search.html", status, context)
    return _conditional(request, render_page(request, web, page), reader, None)


@for_readers
async def atom(request: Request, web: Web, reader: Reader) -> Response:
    if not reader.public:  # a feed is for public archives only
        return _missing(request, web)

    def make() -> bytes:
        with web.factory() as session:
            entries = browse.recent(session, reader.list_id)
        archive_url = web.url(f"/lists/{reader.name}/archive")
        return feed.atom_feed(
            title=f"{reader.display_name} archive",
            archive_url=archive_url,
            feed_url=archive_url + "/feed.atom",
            entries=entries,
        )

    body = await run_in_threadpool(make)
    response = Response(body, media_type="application/atom+xml")
    return _conditional(request, response, reader, None)


ROUTES: list[BaseRoute] = [
    Route("/lists/{name}/archive", months_page, methods=["GET"]),
    Route("/lists/{name}/archive/search", search_page, methods=["GET"]),
    Route("/lists/{name}/archive/feed.atom", atom, methods=["GET"]),
    Route("/lists/{name}/archive/msg/{post_id:int}", post_page, methods=["GET"]),
    Route("/lists/{name}/archive/msg/{post_id:int}/part/{number:int}", attachment, methods=["GET"]),
    Route("/lists/{name}/archive/{month}.mbox", mbox, methods=["GET"]),
    Route("/lists/{name}/archive/{month}", month_page, methods=["GET"]),
]
