# SPDX-License-Identifier: Apache-2.0
"""Webhooks as the API shows them: the subscriptions a token may manage, and their deliveries.

Adding and removing webhooks is on the host (`listserv webhooks`), where the
signing secret can be shown once; here a system sees what was sent to it,
each delivery with its attempts, last answer and state.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from listserv.acts.errors import ActError
from listserv.acts.permissions import Need, require
from listserv.acts.webhooks import all_webhooks, find_webhook
from listserv.acts.webhooks import view as webhook_view
from listserv.api import pagination
from listserv.api.spec import (
    INTEGER,
    STRING,
    TEXT_OR_NULL,
    TIMESTAMP,
    TIMESTAMP_OR_NULL,
    Call,
    Reply,
    obj,
)
from listserv.lists import get_list
from listserv.models import WebhookDelivery

WEBHOOK = obj(
    {
        "id": INTEGER,
        "url": STRING,
        "list": TEXT_OR_NULL,
        "events": {"type": "array", "items": STRING},
        "created_at": TIMESTAMP,
    }
)
DELIVERY = obj(
    {
        "id": INTEGER,
        "event": STRING,
        "event_id": STRING,
        "state": STRING,
        "attempts": INTEGER,
        "created_at": TIMESTAMP,
        "last_attempt_at": TIMESTAMP_OR_NULL,
        "last_status": {"type": ["integer", "null"]},
        "last_error": STRING,
        "next_attempt_at": TIMESTAMP,
        "delivered_at": TIMESTAMP_OR_NULL,
    }
)


def _may_manage(call: Call, list_name: str | None) -> bool:
    mlist = get_list(call.ctx.session, list_name) if list_name else None
    try:
        require(call.ctx.session, call.actor, mlist, Need.MANAGE if mlist else Need.ADMINISTER)
    except ActError:
        return False
    return True


def get_webhooks(call: Call) -> Reply:
    """The webhooks this token may manage: its lists' (owners) or all (site admins)."""
    limit = pagination.limit_of(dict(call.query))
    after = pagination.decode(call.query.get("cursor"), [int])
    hooks = [
        (hook, name)
        for hook, name in all_webhooks(call.ctx.session)
        if (after is None or hook.id > after[0]) and _may_manage(call, name)
    ]
    return Reply(
        pagination.page(
            hooks[: limit + 1], limit, lambda h: [h[0].id], lambda h: webhook_view(h[0], h[1])
        )
    )


def _delivery(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "event": row.event,
        "event_id": row.event_id,
        "state": row.state.value,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "last_attempt_at": row.last_attempt_at,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at,
        "delivered_at": row.delivered_at,
    }


def get_deliveries(call: Call) -> Reply:
    """A webhook's deliveries, newest first, with their attempts and last answer."""
    hook, mlist = find_webhook(call.ctx.session, int(call.path["id"]))
    require(call.ctx.session, call.actor, mlist, Need.MANAGE if mlist else Need.ADMINISTER)
    limit = pagination.limit_of(dict(call.query))
    after = pagination.decode(call.query.get("cursor"), [int])
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    if after is not None:
        stmt = stmt.where(WebhookDelivery.id < after[0])
    rows = list(call.ctx.session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    return Reply(pagination.page(rows, limit, lambda r: [r.id], _delivery))
