# SPDX-License-Identifier: Apache-2.0
"""Subscription requests waiting for an owner: approve, reject with a reason, discard.

The decisions are `acts.requests.decide_request`; the requester is told by
the act (welcome, or the refusal with the reason).
"""

from __future__ import annotations

from listserv.actors import Actor
from listserv.acts import requests
from listserv.acts.held import Ruling
from listserv.context import Context
from listserv.lists import eligibility_text
from listserv.models import MailingList, PendingRequest
from listserv.web.console.access import ListAccess, list_page
from listserv.web.pages import Page
from listserv.web.signin.visitor import Visitor


def describe(request: PendingRequest, mlist: MailingList) -> dict[str, str]:
    payload = request.payload or {}
    return {
        "name": str(payload.get("name", "")),
        "title": str(payload.get("title", "")),
        "why": f"The address is outside who may join: {eligibility_text(mlist)}.",
    }


def requests_page(
    ctx: Context,
    visitor: Visitor,
    found: ListAccess,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Page:
    waiting = requests.awaiting(ctx, found.mlist)
    return list_page(
        "web/requests.html",
        visitor,
        found,
        "Requests",
        status=status,
        notice=notice,
        errors=errors,
        waiting=[(r, describe(r, found.mlist)) for r in waiting],
    )


def decide(
    ctx: Context, actor: Actor, mlist: MailingList, request_id: int, action: str, reason: str
) -> str:
    return requests.decide_request(
        ctx, actor, mlist, request_id, Ruling(action), reason=reason
    ).text
