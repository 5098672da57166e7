# SPDX-License-Identifier: Apache-2.0
"""The console's routes for running a list: settings and holds, bans, bounces, audit log.

Owners only (moderators and everyone else get 404). Like `routes`, each
handler reads the request and hands `handlers.show`, `handlers.act` or
`handlers.download_csv` the page to build, the act to call or the file to write.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from listserv.actors import Actor
from listserv.acts.list_settings import parse_bool
from listserv.acts.permissions import Need
from listserv.context import Context
from listserv.web.console import records, settings
from listserv.web.console.access import ListAccess
from listserv.web.console.handlers import Result, act, download_csv, form_dict, show
from listserv.web.pages import Page, text_field
from listserv.web.signin.visitor import Visitor


async def settings_get(request: Request) -> Response:
    return await show(request, Need.MANAGE, lambda c, v, f: settings.settings_page(v, f))


async def settings_post(request: Request) -> Response:
    typed: dict[str, str] = {}

    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        typed.update(form_dict(form))
        return Result(settings.save(ctx, actor, found.mlist, typed))

    def then(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
        return settings.settings_page(
            v,
            f,
            notice=r.notice,
            errors=r.errors,
            typed=typed if r.errors else {},
            status=status,
        )

    return await act(request, Need.MANAGE, do, then)


async def hold_post(request: Request) -> Response:
    """Legal or emergency hold: the first POST asks to confirm, the second switches."""
    asked: list[str] = []

    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        key = text_field(form, "hold")
        if text_field(form, "confirmed") != "yes":
            asked.append(key)
            return Result()
        on = parse_bool(text_field(form, "on") or "false", "on")
        return Result(settings.switch_hold(ctx, actor, found.mlist, key, on))

    def then(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
        confirm = asked[0] if asked else ""
        return settings.settings_page(
            v, f, notice=r.notice, errors=r.errors, confirm=confirm, status=status
        )

    return await act(request, Need.MANAGE, do, then)


def _bans(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
    return records.bans_page(c.session, v, f, notice=r.notice, errors=r.errors, status=status)


async def bans_get(request: Request) -> Response:
    return await show(request, Need.MANAGE, lambda c, v, f: records.bans_page(c.session, v, f))


async def bans_post(request: Request) -> Response:
    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        return Result(records.change_ban(ctx, actor, found.mlist, form_dict(form)))

    return await act(request, Need.MANAGE, do, _bans)


def _bounces(c: Context, v: Visitor, f: ListAccess, r: Result, status: int) -> Page:
    return records.bounces_page(c.session, v, f, notice=r.notice, errors=r.errors, status=status)


async def bounces_get(request: Request) -> Response:
    return await show(request, Need.MANAGE, lambda c, v, f: records.bounces_page(c.session, v, f))


async def bounces_post(request: Request) -> Response:
    def do(ctx: Context, actor: Actor, found: ListAccess, form: FormData) -> Result:
        return Result(records.enable(ctx, actor, found.mlist, text_field(form, "address")))

    return await act(request, Need.MANAGE, do, _bounces)


def _audit_filter(request: Request) -> records.AuditFilter:
    return records.AuditFilter.from_query(dict(request.query_params))


async def audit_get(request: Request) -> Response:
    chosen = _audit_filter(request)
    return await show(
        request, Need.MANAGE, lambda c, v, f: records.audit_page(c.session, v, f, chosen)
    )


async def audit_export(request: Request) -> Response:
    chosen = _audit_filter(request)
    return await download_csv(
        request, Need.MANAGE, lambda s, m: records.audit_csv(s, m, chosen), "audit"
    )


ROUTES: list[BaseRoute] = [
    Route("/admin/lists/{list}/settings", settings_get, methods=["GET"]),
    Route("/admin/lists/{list}/settings", settings_post, methods=["POST"]),
    Route("/admin/lists/{list}/settings/hold", hold_post, methods=["POST"]),
    Route("/admin/lists/{list}/bans", bans_get, methods=["GET"]),
    Route("/admin/lists/{list}/bans", bans_post, methods=["POST"]),
    Route("/admin/lists/{list}/bounces", bounces_get, methods=["GET"]),
    Route("/admin/lists/{list}/bounces", bounces_post, methods=["POST"]),
    Route("/admin/lists/{list}/audit", audit_get, methods=["GET"]),
    Route("/admin/lists/{list}/audit.csv", audit_export, methods=["GET"]),
]
