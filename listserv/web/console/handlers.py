# SPDX-License-Identifier: Apache-2.0
"""What every console handler does: guard, resolve the list, run the act, present.

`show` answers a GET: a signed-in visitor (else a redirect to sign in), the
list and their level on it (too little: 404), then a read-only page built in
a worker thread. `act` answers a POST the same way, after the CSRF check
(403 without the session's token): the act runs in one transaction, and an
`ActError` rolls it back and becomes the error of the page the form was on.
`download_csv` answers a GET with a list's CSV file behind the same guard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from listserv import db
from listserv.actors import Actor
from listserv.acts.errors import ActError, Conflict, Forbidden, Invalid, NotFound
from listserv.acts.permissions import Need
from listserv.context import Context
from listserv.models import MailingList, utcnow
from listserv.web.console.access import ListAccess, NotVisible, access
from listserv.web.pages import Link, Page, client_host, message, render, text_field
from listserv.web.signin.routes import checked_form, signed_in, web_of
from listserv.web.signin.visitor import Visitor


class FieldErrors(Invalid):
    """Several fields of one form refused at once; `errors` has each one's sentence."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


@dataclass
class Result:
    """What a POST's act said: a notice for the page, and errors by field."""

    notice: str = ""
    errors: dict[str, str] = field(default_factory=dict)


#: Builds a page (read only): (context, visitor, list).
Build = Callable[[Context, Visitor, ListAccess], Page]
#: Does a POST's act: (context, actor, list, form) -> Result; may raise ActError.
Do = Callable[[Context, Actor, ListAccess, FormData], Result]
#: Renders the page a form was on, after its act: (context, visitor, list, result, status).
Then = Callable[[Context, Visitor, ListAccess, Result, int], Page]
#: Writes a download's CSV text of one list (read only): (session, list).
Export = Callable[[Session, MailingList], str]


def not_found() -> Page:
    return message(
        404,
        "Page not found",
        "There is no page at this address, or it is not one you may see.",
        next_steps=[Link("Go to the lists you manage", "/admin")],
    )


def status_of(error: ActError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, Conflict):
        return 409
    return 400


def number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 12 else None


async def show(request: Request, need: Need, build: Build) -> Response:
    visitor = await signed_in(request)
    if isinstance(visitor, Response):
        return visitor
    web = web_of(request)
    name = request.path_params["list"]

    def work() -> Page:
        with web.factory() as session:
            ctx = web.context(session, now=utcnow(), source="")
            try:
                found = access(session, visitor, name, need)
            except NotVisible:
                return not_found()
            return build(ctx, visitor, found)

    return render(request, web, await run_in_threadpool(work))


async def act(
    request: Request,
    need: Need,
    do: Do,
    then: Then,
    *,
    limit: int = 64 * 1024,
    max_files: int = 0,
) -> Response:
    visitor = await signed_in(request)
    if isinstance(visitor, Response):
        return visitor
    web = web_of(request)
    form = await checked_form(request, visitor, limit=limit, max_files=max_files)
    if isinstance(form, Response):
        return form
    name, client = request.path_params["list"], client_host(request)

    def work() -> Page:
        status = 200
        try:
            with db.session_scope(web.factory) as session:
                found = access(session, visitor, name, need)
                ctx = web.context(session, now=utcnow(), source=client)
                result = do(ctx, visitor.actor(), found, form)
        except NotVisible:
            return not_found()
        except ActError as error:
            errors = error.errors if isinstance(error, FieldErrors) else {}
            result = Result(errors=errors or {error.field or "main": error.message})
            status = status_of(error)
        with web.factory() as session:
            ctx = web.context(session, now=utcnow(), source=client)
            try:
                return then(ctx, visitor, access(session, visitor, name, need), result, status)
            except NotVisible:
                return not_found()

    page = await run_in_threadpool(work)
    web.on_outbox()
    web.cache.clear()  # member counts on the public pages may have changed
    return render(request, web, page)


async def download_csv(request: Request, need: Need, export: Export, what: str) -> Response:
    """A GET answered with a file, not a page: guarded as `show` is, named `<list>-<what>.csv`."""
    visitor = await signed_in(request)
    if isinstance(visitor, Response):
        return visitor
    web, name = web_of(request), request.path_params["list"]

    def work() -> str | None:
        with web.factory() as session:
            try:
                found = access(session, visitor, name, need)
            except NotVisible:
                return None
            return export(session, found.mlist)

    text = await run_in_threadpool(work)
    if text is None:
        return render(request, web, not_found())
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name.lower()}-{what}.csv"'},
    )


def form_dict(form: FormData) -> dict[str, str]:
    return {key: text_field(form, key) for key in form}
