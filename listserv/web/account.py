# SPDX-License-Identifier: Apache-2.0
"""The account page: a signed-in person's own lists, their settings, a new address, their data.

`GET /account` shows every list the person is on, each with a form for
delivery, name and title and a Leave button; a form to change address; the
download of what the service holds about them. Each POST carries the
session's CSRF token and calls an act in `acts/account.py` with the
person's web actor; a change answers 303 back to the page with a fixed
status word in the query (Post/Redirect/Get, so reloading repeats nothing and
no text from the query is shown), a refusal shows the page again with the
act's words beside the field. `GET /account/data.json` reads only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from listserv import db
from listserv.actors import Actor
from listserv.acts import account
from listserv.acts.errors import ActError
from listserv.context import Context
from listserv.lists import get_list
from listserv.models import WebSession, utcnow
from listserv.personal_data import personal_data
from listserv.web.console.handlers import number, status_of
from listserv.web.pages import Page, Web, client_host, render, text_field
from listserv.web.signin.pages import HOW, console_page
from listserv.web.signin.routes import checked_form, redirect, signed_in, web_of
from listserv.web.signin.visitor import Visitor

#: How the page names each delivery choice (`acts.account.DELIVERIES`).
DELIVERY_WORDS = {
    "mail": "Each post, as it is sent",
    "digest-mime": "A daily digest (MIME: each post as an attachment)",
    "digest-plain": "A daily digest in plain text",
    "nomail": "No mail (stay a member)",
}

#: What the page says after each kind of change; `{list}` is the list's display name.
DONE_WORDS = {
    "saved": "Your settings for {list} are saved.",
    "left": "You have left {list}. We have mailed you a goodbye message.",
    "address": "A confirmation link is on its way to your new address. Nothing changes "
    "until you open it and press the button on its page.",
}


@dataclass(frozen=True)
class Shown:
    """One membership as the page shows it."""

    id: int
    list_name: str
    list_title: str
    address: str
    name: str
    title: str
    delivery: str
    status: str


def account_page(
    web: Web,
    visitor: Visitor,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Page:
    """The page itself (worker thread, reads only)."""
    now = utcnow()
    with web.factory() as session:
        ctx = web.context(session, now=now, source="")
        open_sessions = session.scalar(
            select(func.count()).where(
                WebSession.address_key == visitor.address,
                WebSession.ended_at.is_(None),
                WebSession.expires_at > now,
            )
        )
        shown = [
            Shown(
                id=m.member.id,
                list_name=m.mlist.name,
                list_title=m.mlist.display_name,
                address=m.member.address,
                name=m.member.display_name,
                title=m.member.job_title,
                delivery=account.delivery_choice(m.member),
                status=str(m.member.delivery_status),
            )
            for m in account.memberships(ctx, visitor.actor())
        ]
    return console_page(
        "web/account.html",
        visitor,
        status,
        title="Your account",
        how=HOW.get(visitor.auth, str(visitor.auth)),
        sessions=open_sessions or 0,
        memberships=shown,
        deliveries=DELIVERY_WORDS,
        notice=notice,
        errors=errors or {},
        form=form or {},
    )


def done_notice(web: Web, done: str, list_name: str) -> str:
    """The status sentence for `?done=`; only known words, the list named from the database."""
    words = DONE_WORDS.get(done, "")
    if "{list}" not in words:
        return words
    with web.factory() as session:
        mlist = get_list(session, list_name) if list_name else None
        return words.format(list=mlist.display_name if mlist is not None else "the list")


async def account_get(request: Request) -> Response:
    visitor = await signed_in(request)
    if isinstance(visitor, Response):
        return visitor
    web = web_of(request)
    query = request.query_params
    notice = await run_in_threadpool(
        done_notice, web, query.get("done", "")[:16], query.get("list", "")[:64]
    )
    page = await run_in_threadpool(account_page, web, visitor, notice=notice)
    return render(request, web, page)


@dataclass(frozen=True)
class Done:
    """Where a successful POST sends the browser: `?done=<word>&list=<name>`."""

    word: str
    list_name: str = ""


#: A POST's act: (context, actor, form) -> where to go; may raise ActError.
Do = Callable[[Context, Actor, FormData], Done]
#: Which field of the page an act's refusal is shown beside.
FieldOf = Callable[[ActError], str]


async def _post(request: Request, do: Do, field_of: FieldOf) -> Response:
    """Guard, run `do(ctx, actor, form)` in one transaction, then redirect or show the refusal."""
    visitor = await signed_in(request)
    if isinstance(visitor, Response):
        return visitor
    web = web_of(request)
    form = await checked_form(request, visitor)
    if isinstance(form, Response):
        return form
    client = client_host(request)

    def work() -> Done | Page:
        try:
            with db.session_scope(web.factory) as session:
                ctx = web.context(session, now=utcnow(), source=client)
                done: Done = do(ctx, visitor.actor(), form)
                return done
        except ActError as error:
            field = field_of(error)
            typed = {"new_address": text_field(form, "new_address")}  # shown again to correct
            return account_page(
                web, visitor, errors={field: error.message}, form=typed, status=status_of(error)
            )

    result = await run_in_threadpool(work)
    web.on_outbox()
    web.cache.clear()  # member counts on the public pages may have changed
    if isinstance(result, Page):
        return render(request, web, result)
    query = {"done": result.word, **({"list": result.list_name} if result.list_name else {})}
    return redirect(request, f"/account?{urlencode(query)}")


def _member_id(request: Request) -> int:
    return number(request.path_params["member"]) or 0


async def membership_post(request: Request) -> Response:
    member_id = _member_id(request)

    def do(ctx: Context, actor: Actor, form: FormData) -> Done:
        mine = account.update_membership(
            ctx,
            actor,
            member_id,
            delivery=text_field(form, "delivery"),
            name=text_field(form, "name"),
            title=text_field(form, "title"),
        )
        return Done("saved", mine.mlist.name)

    def field_of(error: ActError) -> str:
        return f"{error.field}-{member_id}" if error.field == "delivery" else "main"

    return await _post(request, do, field_of)


async def leave_post(request: Request) -> Response:
    member_id = _member_id(request)

    def do(ctx: Context, actor: Actor, form: FormData) -> Done:
        return Done("left", account.leave(ctx, actor, member_id).mlist.name)

    return await _post(request, do, lambda error: "main")


async def address_post(request: Request) -> Response:
    def do(ctx: Context, actor: Actor, form: FormData) -> Done:
        account.request_address_change(ctx, actor, text_field(form, "new_address"))
        return Done("address")

    return await _post(request, do, lambda error: "new_address")


def data_document(web: Web, visitor: Visitor) -> bytes:
    now = utcnow()
    with web.factory() as session:
        document = personal_data(session, visitor.address, now)
    return json.dumps(document, indent=2, ensure_ascii=False, default=str).encode("utf-8")


async def data_get(request: Request) -> Response:
    """The download: GET reads only; `attachment` so the browser saves it."""
    visitor = await signed_in(request)
    if isinstance(visitor, Response):
        return visitor
    web = web_of(request)
    body = await run_in_threadpool(data_document, web, visitor)
    filename = f"listserv-data-{utcnow():%Y-%m-%d}.json"
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


ROUTES: list[BaseRoute] = [
    Route("/account", account_get, methods=["GET"]),
    Route("/account/data.json", data_get, methods=["GET"]),
    Route("/account/address", address_post, methods=["POST"]),
    Route("/account/memberships/{member}", membership_post, methods=["POST"]),
    Route("/account/memberships/{member}/leave", leave_post, methods=["POST"]),
]
