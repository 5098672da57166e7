# SPDX-License-Identifier: Apache-2.0
"""The web application: every route and the middleware order, in one visible place.

Handlers are thin: read the request, run the page function (database work)
in a worker thread so the SMTP intake sharing this event loop never waits on
SQLite, render the page. The list index and list pages, which everyone sees
alike and which take the traffic, are served from a few-second page cache
(`pages.PageCache`) without a thread or a query. Form posts that browsers make (join, confirm) are
refused when the browser says they come from another site; the one-click
unsubscribe POST is not, because mail providers' servers send it.

Middleware, outermost first: `security.Edge` (forwarding headers from trusted
proxies, the security headers, the redacted access log, in one pass), then
Starlette's own (server errors, routing, HTTP errors) — so even a 500 page
carries the security headers and gets a log line.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from listserv import metrics
from listserv.api import ApiMount, create_api
from listserv.config import Settings
from listserv.limits import Trips, Window, client_key, per_process
from listserv.models import Channel
from listserv.templates import Templates
from listserv.web import account, archive_pages, confirm, leave, listinfo, unsubscribe
from listserv.web.console import routes as console_routes
from listserv.web.pages import (
    Link,
    Page,
    PageCache,
    Web,
    client_host,
    message,
    read_form,
    render,
    text_field,
)
from listserv.web.security import Edge, forwarded_allow_ips, is_cross_site
from listserv.web.signin import routes as signin_routes

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: How long the list index and list pages are served from memory.
PAGE_CACHE_SECONDS = 5.0


#: A check run before a handler: None to go on, else the refusal to send.
Check = Callable[[Request, Web], Response | None]


def _web(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def _cross_site_page() -> Page:
    return message(
        403,
        "This form could not be accepted",
        "Nothing was changed. The form was sent from another website; use the form on "
        "this site's own page.",
        next_steps=[Link("See all mailing lists", "/lists")],
    )


def _refuse_cross_site(request: Request, web: Web) -> Response | None:
    """Our own origin is the configured `base_url`'s, never what the Host header says."""
    if is_cross_site(request.headers, (web.origin,)):
        return render(request, web, _cross_site_page())
    return None


def _refuse_null_origin(request: Request, web: Web) -> Response | None:
    """One-click posts come from anywhere, but never from an opaque (`null`) origin."""
    if request.headers.get("origin", "").strip().lower() == "null":
        return render(request, web, _cross_site_page())
    return None


def _over_token_limit(request: Request, web: Web) -> Response | None:
    """429 with Retry-After for a client knocking at token pages too often."""
    client = client_key(client_host(request))
    wait = web.token_pages.hit(client)
    if not wait:
        return None
    if web.token_pages.first_refusal(client):
        web.trips.trip(
            "web-tokens",
            client,
            Channel.WEB,
            f"more than {web.token_pages.count} token pages a minute",
        )
    seconds = str(max(1, math.ceil(wait)))
    page = message(
        429,
        "Too many requests",
        "Nothing was changed. This address has asked for too many pages in a short "
        f"time; please try again in {seconds} seconds.",
        headers={"Retry-After": seconds},
    )
    return render(request, web, page)


def _refusal(request: Request, web: Web, *checks: Check) -> Response | None:
    for check in checks:
        refused = check(request, web)
        if refused is not None:
            return refused
    return None


async def index(request: Request) -> Response:
    return RedirectResponse(_web(request).url("/lists"), status_code=302)


async def trailing_slash(request: Request) -> Response:
    """`/lists/` → `/lists`, under `base_url` (Starlette's own would echo the Host header)."""
    path = "/" + str(request.path_params["path"]).strip("/")
    return RedirectResponse(_web(request).url(path), status_code=307)


async def _cached(request: Request, web: Web, make: Callable[[], Page]) -> Response:
    """A page from the cache, or made in a worker thread and kept if it is a 200."""
    key = request.scope.get("root_path", "") + request.url.path.lower()
    body = web.cache.get(key)
    if body is not None:
        return HTMLResponse(body)
    page = await run_in_threadpool(make)
    response = render(request, web, page)
    if page.status == 200:
        web.cache.put(key, bytes(response.body))
    return response


async def lists_index(request: Request) -> Response:
    web = _web(request)
    return await _cached(request, web, lambda: listinfo.lists_page(web))


async def list_page(request: Request) -> Response:
    web = _web(request)
    name = request.path_params["name"]
    return await _cached(request, web, lambda: listinfo.list_page(web, name))


async def join(request: Request) -> Response:
    web = _web(request)
    refused = _refusal(request, web, _refuse_cross_site)
    if refused is not None:
        return refused
    form = await read_form(request)
    fields = listinfo.JoinForm(
        name=text_field(form, "name"),
        title=text_field(form, "title"),
        address=text_field(form, "address"),
    )
    page = await run_in_threadpool(
        listinfo.join, web, request.path_params["name"], fields, client_host(request)
    )
    web.on_outbox()
    return render(request, web, page)


async def leave_form(request: Request) -> Response:
    web = _web(request)
    refused = _refuse_cross_site(request, web)
    if refused is not None:
        return refused
    form = await read_form(request)
    page = await run_in_threadpool(
        leave.leave,
        web,
        request.path_params["name"],
        text_field(form, "leave_address"),
        client_host(request),
    )
    web.on_outbox()
    return render(request, web, page)


async def confirm_get(request: Request) -> Response:
    web = _web(request)
    refused = _over_token_limit(request, web)
    if refused is not None:
        return refused
    token = request.path_params["token"]
    return render(request, web, await run_in_threadpool(confirm.confirm_page, web, token))


async def confirm_post(request: Request) -> Response:
    web = _web(request)
    refused = _refusal(request, web, _refuse_cross_site, _over_token_limit)
    if refused is not None:
        return refused
    form = await read_form(request)
    page = await run_in_threadpool(
        confirm.confirm_action,
        web,
        request.path_params["token"],
        text_field(form, "form_key"),
        client_host(request),
    )
    web.cache.clear()  # the member count may have changed
    web.on_outbox()
    return render(request, web, page)


async def unsubscribe_get(request: Request) -> Response:
    web = _web(request)
    refused = _over_token_limit(request, web)
    if refused is not None:
        return refused
    params = request.path_params
    page = await run_in_threadpool(
        unsubscribe.unsubscribe_page, web, params["list"], params["token"]
    )
    return render(request, web, page)


async def unsubscribe_post(request: Request) -> Response:
    web = _web(request)
    refused = _refusal(request, web, _refuse_null_origin, _over_token_limit)
    if refused is not None:
        return refused
    params = request.path_params
    form = await read_form(request)
    page = await run_in_threadpool(
        unsubscribe.one_click,
        web,
        params["list"],
        params["token"],
        text_field(form, "List-Unsubscribe"),
        client_host(request),
    )
    web.cache.clear()
    web.on_outbox()
    return render(request, web, page)


async def metrics_page(request: Request) -> Response:
    """Prometheus scrapes this from `web.metrics_from` (the host itself by default); 404 else."""
    try:
        client = ipaddress.ip_address(client_host(request))
    except ValueError:
        raise HTTPException(404) from None
    allowed = _web(request).settings.web.metrics_from
    if not any(client in ipaddress.ip_network(net, strict=False) for net in allowed):
        raise HTTPException(404)
    body = await run_in_threadpool(metrics.exposition, request.app.state.metrics)
    return Response(body, media_type=metrics.CONTENT_TYPE)


ROUTES: list[BaseRoute] = [
    Route("/", index, methods=["GET"]),
    Route("/lists", lists_index, methods=["GET"]),
    Route("/lists/{name}", list_page, methods=["GET"]),
    Route("/lists/{name}/join", join, methods=["POST"]),
    Route("/lists/{name}/leave", leave_form, methods=["POST"]),
    Route("/confirm/{token}", confirm_get, methods=["GET"]),
    Route("/confirm/{token}", confirm_post, methods=["POST"]),
    Route("/unsubscribe/{list}/{token}", unsubscribe_get, methods=["GET"]),
    Route("/unsubscribe/{list}/{token}", unsubscribe_post, methods=["POST"]),
    Route("/metrics", metrics_page, methods=["GET"]),
    *signin_routes.ROUTES,
    *account.ROUTES,
    *console_routes.ROUTES,
    *archive_pages.ROUTES,
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    Route("/{path:path}/", trailing_slash, methods=["GET", "HEAD"]),
]

_ERROR_PAGES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The request could not be understood."),
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too much data", "The form sent more data than this site accepts."),
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    heading, text = _ERROR_PAGES.get(exc.status_code, ("Error", "The request failed."))
    page = message(
        exc.status_code,
        heading,
        text,
        next_steps=[Link("See all mailing lists", "/lists")],
        headers=dict(exc.headers or {}),
    )
    return render(request, _web(request), page)


async def _server_error(request: Request, exc: Exception) -> Response:
    page = message(
        500,
        "Something went wrong",
        "Nothing was changed. Please try again in a few minutes.",
        next_steps=[Link("See all mailing lists", "/lists")],
    )
    return render(request, _web(request), page)


def create_app(
    settings: Settings,
    factory: sessionmaker[Session],
    templates: Templates,
    *,
    on_outbox: Callable[[], None] | None = None,
    joins_per_client_per_hour: int | None = None,
    page_cache_seconds: float = PAGE_CACHE_SECONDS,
    trips: Trips | None = None,
    viewer: archive_pages.Viewer = archive_pages.nobody,
) -> ASGIApp:
    """The ASGI application for one site; `on_outbox` wakes an embedded delivery worker.

    `viewer` says who is signed in on a request (the archive's access check asks it).
    """
    web = Web(
        settings=settings,
        factory=factory,
        templates=templates,
        on_outbox=on_outbox or (lambda: None),
        joins_per_client_per_hour=(
            joins_per_client_per_hour or settings.limits.requests_per_sender_per_hour
        ),
        cache=PageCache(page_cache_seconds),
        token_pages=Window(
            per_process(settings.limits.web_tokens_per_client_per_minute, settings.web.processes),
            60.0,
        ),
        trips=trips or Trips(factory),
    )
    api = create_api(settings, factory, templates, on_outbox=web.on_outbox)
    app = Starlette(
        routes=ROUTES,
        exception_handlers={HTTPException: _http_error, 500: _server_error},
    )
    app.router.redirect_slashes = False  # `trailing_slash` redirects under base_url instead
    app.state.web = web
    app.state.viewer = viewer
    app.state.metrics = metrics.make_registry(factory)
    both = ApiMount(api, app)  # /api/v1 is the REST API (listserv/api/)
    hsts = settings.web.base_url.startswith("https://")
    return Edge(both, hsts=hsts, proxies=forwarded_allow_ips())
