# SPDX-License-Identifier: Apache-2.0
"""The sign-in routes, and the two guards every console route goes through.

`signed_in` turns a request into a `Visitor` who has passed every factor
they owe, or a response that sends them to sign in; `checked_form` reads a
POST and refuses it with 403 unless it carries the session's CSRF token.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from listserv.web.pages import (
    FORM_LIMIT,
    Link,
    Web,
    client_host,
    message,
    read_form,
    render,
    text_field,
)
from listserv.web.security import is_cross_site
from listserv.web.signin import pages
from listserv.web.signin.visitor import (
    Visitor,
    clear_session_cookie,
    csrf_ok,
    load_visitor,
    session_cookie,
    set_session_cookie,
)


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def redirect(request: Request, path: str) -> Response:
    return RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)


async def visitor_of(request: Request) -> Visitor | None:
    web = web_of(request)
    raw = session_cookie(request, web.settings)
    if not raw:
        return None
    return await run_in_threadpool(load_visitor, web, raw)


async def signed_in(request: Request) -> Visitor | Response:
    """The visitor, or a redirect to sign in (again) or to the second factor still owed."""
    visitor = await visitor_of(request)
    if visitor is None:
        had = bool(session_cookie(request, web_of(request).settings))
        return redirect(request, "/login?ended=1" if had else "/login")
    if not visitor.signed_in:
        return redirect(request, "/login/second-factor")
    if visitor.owes_second_factor:
        return redirect(request, "/login?again=1")
    return visitor


def forbidden_form(request: Request) -> Response:
    page = message(
        403,
        "This form could not be accepted",
        "Nothing was changed. The form did not carry this session's security token: it "
        "was sent from another site, or from a page older than your session.",
        next_steps=[Link("Go back to the lists you manage", "/admin")],
    )
    return render(request, web_of(request), page)


async def checked_form(
    request: Request, visitor: Visitor | None, *, limit: int = FORM_LIMIT, max_files: int = 0
) -> FormData | Response:
    """The POSTed form, or 403 without the session's CSRF token."""
    form = await read_form(request, limit=limit, max_fields=500, max_files=max_files)
    if not csrf_ok(visitor, form):
        return forbidden_form(request)
    return form


async def login_get(request: Request) -> Response:
    web = web_of(request)
    visitor = await visitor_of(request)
    notice = ""
    if request.query_params.get("ended") and visitor is None:
        notice = "Your session has ended. Sign in again to carry on."
    elif request.query_params.get("again"):
        notice = (
            "You now own or moderate a list: sign in again with a new link, and set up "
            "the second factor owners and moderators need."
        )
    return render(request, web, pages.login_page(visitor, notice=notice))


def _cross_site(request: Request) -> bool:
    """A browser says the form came from another site (login CSRF, or a mail-bombing page)."""
    own = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    return is_cross_site(request.headers, (web_of(request).origin, own))


async def login_post(request: Request) -> Response:
    web = web_of(request)
    if _cross_site(request):
        return forbidden_form(request)
    form = await read_form(request)
    page = await run_in_threadpool(
        pages.ask_for_link, web, text_field(form, "address"), client_host(request)
    )
    web.on_outbox()
    return render(request, web, page)


async def link_get(request: Request) -> Response:
    web = web_of(request)
    page = await run_in_threadpool(pages.link_page, web, request.path_params["token"])
    return render(request, web, page)


async def link_post(request: Request) -> Response:
    web = web_of(request)
    if _cross_site(request):  # another site must not sign this browser in as someone
        return forbidden_form(request)
    form = await read_form(request)
    done = await run_in_threadpool(
        pages.redeem,
        web,
        request.path_params["token"],
        text_field(form, "form_key"),
        client_host(request),
    )
    if done.page is not None:
        return render(request, web, done.page)
    response = redirect(request, done.go_to)
    set_session_cookie(response, web.settings, done.raw_session_id)
    return response


async def second_factor_get(request: Request) -> Response:
    web = web_of(request)
    visitor = await visitor_of(request)
    if visitor is None:
        return redirect(request, "/login?ended=1")
    if visitor.signed_in:
        return redirect(request, "/admin")
    return render(request, web, await run_in_threadpool(pages.second_factor_page, web, visitor))


async def second_factor_post(request: Request) -> Response:
    web = web_of(request)
    visitor = await visitor_of(request)
    form = await checked_form(request, visitor)
    if isinstance(form, Response):
        return form
    assert visitor is not None
    if visitor.signed_in:
        return redirect(request, "/admin")
    page = await run_in_threadpool(
        pages.check_code, web, visitor, text_field(form, "code"), client_host(request)
    )
    if page is None:
        return redirect(request, "/admin")
    page.context["visitor"] = await visitor_of(request)
    return render(request, web, page)


async def _sign_out(request: Request, *, everywhere: bool) -> Response:
    web = web_of(request)
    visitor = await visitor_of(request)
    form = await checked_form(request, visitor)
    if isinstance(form, Response):
        return form
    assert visitor is not None
    page = await run_in_threadpool(
        pages.sign_out, web, visitor, client_host(request), everywhere=everywhere
    )
    response = render(request, web, page)
    clear_session_cookie(response, web.settings)
    return response


async def logout(request: Request) -> Response:
    return await _sign_out(request, everywhere=False)


async def sign_out_everywhere(request: Request) -> Response:
    return await _sign_out(request, everywhere=True)


ROUTES: list[BaseRoute] = [
    Route("/login", login_get, methods=["GET"]),
    Route("/login", login_post, methods=["POST"]),
    Route("/login/second-factor", second_factor_get, methods=["GET"]),
    Route("/login/second-factor", second_factor_post, methods=["POST"]),
    Route("/login/{token}", link_get, methods=["GET"]),
    Route("/login/{token}", link_post, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/account/sign-out-everywhere", sign_out_everywhere, methods=["POST"]),
]
