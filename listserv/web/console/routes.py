# SPDX-License-Identifier: Apache-2.0
"""The console's routes: /admin, the dashboard, held posts, requests and the roster.

Each handler reads its path and form and hands `handlers.show`,
`handlers.act` or `handlers.download_csv` the page to build, the act to call
or the file to write; the list's settings, bans, bounces and audit log are in
`list_routes`. GETs never change state.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from listserv.actors import Actor
from listserv.acts.errors import NotFound
from listserv.acts.permissions import Need
from listserv.context import Context
from listserv.web.console import held, list_routes, members, overview, requests, roster_files
from listserv.web.console.access import ListAccess
from listserv.web.console.handlers import (
    Result,
    act,
    download_csv,
    form_dict,
    not_found,
    number,
    show,
)
from listserv.web.pages import Page, render, text_field
from listserv.web.signin.routes import signed_in, web_of
from listserv.web.signin.visitor import Visitor


async def admin_index(request: Request) -> Response:
    visitor = await signed_in(request)
    if isinstance(visitor, Response):
        return visitor
    web = web_of(request)

    def work() -> Page:
        with web.factory() as session:
            page = overview.admin_page(session, web.memo, visitor)
            return page if page.context["rows"] or visitor.site_admin else not_found()

    return render(request, web, await run_in_threadpool(work))


async def dashboard(request: Request) -> Response:
    period, memo = request.query_params.get("period", "week"), web_of(request).memo
    return await show(
        request, Need.MANAGE, lambda c, v, f: overview.dashboard_page(c.session, memo, v, f, period)
    )


def _page_param(request: Request) -> int:
    return number(request.query_params.get("page", "1")) or 1


def _queue(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
    return held.queue_page(c.session, v, f, 1, notice=r.notice, errors=r.errors, status=status)


def _decide_posts(
    ctx: Context, actor: Actor, found: ListAccess, ids: list[int], form: FormData
) -> Result:
    action = text_field(form, "action")
    if action not in held.ACTIONS:
        return Result(errors={"main": "Choose Approve, Reject or Discard."})
    if not ids:
        return Result(errors={"main": "Select at least one post."})
    decided = held.decide(ctx, actor, found.mlist, ids, action, text_field(form, "reason"))
    refused = {"main": " ".join(e.message for e in decided.refused)} if decided.refused else {}
    return Result(" ".join(decided.done), refused)


async def held_queue(request: Request) -> Response:
    page = _page_param(request)
    return await show(
        request, Need.MODERATE, lambda c, v, f: held.queue_page(c.session, v, f, page)
    )


async def held_decide(request: Request) -> Response:
    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        ids = [n for n in (number(str(v)) for v in form.getlist("post")) if n is not None]
        return _decide_posts(ctx, actor, found, ids[:500], form)

    return await act(request, Need.MODERATE, do, _queue)


async def held_post(request: Request) -> Response:
    post_id = number(request.path_params["post_id"])

    def build(c: Context, v: Visitor, f: ListAccess) -> Page:
        post = held.find_post(c.session, f.mlist, post_id) if post_id is not None else None
        return held.post_page(c.session, v, f, post) if post is not None else not_found()

    return await show(request, Need.MODERATE, build)


async def held_post_decide(request: Request) -> Response:
    post_id = number(request.path_params["post_id"]) or 0

    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        return _decide_posts(ctx, actor, found, [post_id], form)

    def then(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
        post = held.find_post(c.session, f.mlist, post_id)
        if r.errors and post is not None:
            return held.post_page(c.session, v, f, post, errors=r.errors, status=status)
        return _queue(c, v, f, r, status)

    return await act(request, Need.MODERATE, do, then)


def _requests(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
    return requests.requests_page(c, v, f, notice=r.notice, errors=r.errors, status=status)


async def requests_list(request: Request) -> Response:
    return await show(request, Need.MODERATE, lambda c, v, f: requests.requests_page(c, v, f))


async def request_decide(request: Request) -> Response:
    request_id = number(request.path_params["request_id"]) or 0

    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        action = text_field(form, "action")
        if action not in ("approve", "reject", "discard"):
            return Result(errors={"main": "Choose Approve, Reject or Discard."})
        reason = text_field(form, "reason")
        return Result(requests.decide(ctx, actor, found.mlist, request_id, action, reason))

    return await act(request, Need.MODERATE, do, _requests)


def _search(request: Request) -> members.Search:
    return members.Search.from_query(dict(request.query_params))


async def members_list(request: Request) -> Response:
    memo = web_of(request).memo
    search = _search(request)
    return await show(
        request, Need.MANAGE, lambda c, v, f: members.members_page(c.session, memo, v, f, search)
    )


async def member_add(request: Request) -> Response:
    memo = web_of(request).memo
    sent: dict[str, str] = {}

    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        sent.update(form_dict(form))
        return Result(members.add(ctx, actor, found.mlist, sent))

    def then(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
        keep = sent if r.errors else {}
        return members.members_page(
            c.session,
            memo,
            v,
            f,
            members.Search(),
            notice=r.notice,
            errors=r.errors,
            form=keep,
            status=status,
        )

    return await act(request, Need.MANAGE, do, then)


async def member_show(request: Request) -> Response:
    member_id = number(request.path_params["member_id"]) or 0

    def build(c: Context, v: Visitor, f: ListAccess) -> Page:
        member = members.find_member(c.session, f.mlist, member_id)
        return members.member_page(c.session, v, f, member) if member else not_found()

    return await show(request, Need.MANAGE, build)


async def member_change(request: Request) -> Response:
    memo = web_of(request).memo
    member_id = number(request.path_params["member_id"]) or 0

    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        member = members.find_member(ctx.session, found.mlist, member_id)
        if member is None:
            raise NotFound("There is no such member on this list.")
        return Result(members.change(ctx, actor, found.mlist, member, form_dict(form)))

    def then(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
        member = members.find_member(c.session, f.mlist, member_id)
        if member is None:  # removed
            return members.members_page(c.session, memo, v, f, members.Search(), notice=r.notice)
        return members.member_page(
            c.session, v, f, member, notice=r.notice, errors=r.errors, status=status
        )

    return await act(request, Need.MANAGE, do, then)


async def members_import(request: Request) -> Response:
    memo = web_of(request).memo
    report: list[object] = []

    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return Result(errors={"file": "Choose a file to import."})
        data = upload.file.read()
        plan = roster_files.import_file(
            ctx,
            actor,
            found.mlist,
            upload.filename or "upload",
            data,
            force=text_field(form, "force") == "yes",
        )
        report.append(plan)
        return Result(f"Imported {len(plan.to_add)} new member(s).")

    def then(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
        return members.members_page(
            c.session,
            memo,
            v,
            f,
            members.Search(),
            notice=r.notice,
            errors=r.errors,
            report=report[0] if report else None,
            status=status,
        )

    web = web_of(request)
    limit = web.settings.smtp.max_message_size
    return await act(request, Need.MANAGE, do, then, limit=limit, max_files=1)


async def members_export(request: Request) -> Response:
    return await download_csv(request, Need.MANAGE, roster_files.export_csv, "members")


ROUTES: list[BaseRoute] = [
    Route("/admin", admin_index, methods=["GET"]),
    Route("/admin/lists/{list}", dashboard, methods=["GET"]),
    Route("/admin/lists/{list}/held", held_queue, methods=["GET"]),
    Route("/admin/lists/{list}/held", held_decide, methods=["POST"]),
    Route("/admin/lists/{list}/held/{post_id}", held_post, methods=["GET"]),
    Route("/admin/lists/{list}/held/{post_id}", held_post_decide, methods=["POST"]),
    Route("/admin/lists/{list}/requests", requests_list, methods=["GET"]),
    Route("/admin/lists/{list}/requests/{request_id}", request_decide, methods=["POST"]),
    Route("/admin/lists/{list}/members", members_list, methods=["GET"]),
    Route("/admin/lists/{list}/members", member_add, methods=["POST"]),
    Route("/admin/lists/{list}/members.csv", members_export, methods=["GET"]),
    Route("/admin/lists/{list}/members/import", members_import, methods=["POST"]),
    Route("/admin/lists/{list}/members/{member_id}", member_show, methods=["GET"]),
    Route("/admin/lists/{list}/members/{member_id}", member_change, methods=["POST"]),
    *list_routes.ROUTES,
]
