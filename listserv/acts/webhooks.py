# SPDX-License-Identifier: Apache-2.0
"""Webhooks: an owner has a list's events sent to a URL; a site admin every list's.

The URL must be https, or plain http to the loopback host for testing: a
signed body still tells an eavesdropper on the way who joined which list.
Each webhook gets its own signing secret, shown once when it is added.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv import audit
from listserv.actors import Actor
from listserv.acts.errors import Invalid, NotFound
from listserv.acts.permissions import Need, require
from listserv.context import Context
from listserv.models import MailingList, Webhook
from listserv.webhooks.events import EVENTS

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def check_url(url: str) -> str:
    """An https URL, or http to the loopback host; Invalid naming the rule otherwise."""
    clean = url.strip()
    try:
        parts = urlsplit(clean)
    except ValueError:
        parts = urlsplit("")
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("https", "http") or len(clean) > 2000:
        raise Invalid(f"{url!r} is not an http(s) URL", field="url")
    if parts.scheme == "http" and host not in LOOPBACK:
        raise Invalid(
            "a webhook URL must be https (plain http only to 127.0.0.1 or localhost)",
            field="url",
        )
    return clean


def check_events(events: Sequence[str]) -> list[str]:
    chosen = sorted({e.strip() for e in events if e.strip()})
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown or not chosen:
        raise Invalid(
            f"events must be some of {', '.join(EVENTS)}"
            + (f"; not {', '.join(unknown)}" if unknown else ""),
            field="events",
        )
    return chosen


def view(hook: Webhook, list_name: str | None) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "list": list_name,
        "events": list(hook.events or []),
        "created_at": hook.created_at,
    }


def add_webhook(
    ctx: Context, actor: Actor, url: str, events: Sequence[str], mlist: MailingList | None
) -> Webhook:
    """Subscribe a URL to events of one list (owners) or of every list (site admins)."""
    require(ctx.session, actor, mlist, Need.MANAGE if mlist is not None else Need.ADMINISTER)
    hook = Webhook(
        url=check_url(url),
        list_id=mlist.id if mlist is not None else None,
        events=check_events(events),
        secret="whsec_" + secrets.token_urlsafe(32),
        created_at=ctx.now,
        created_by=actor.address[:320],
    )
    ctx.session.add(hook)
    ctx.session.flush()
    name = mlist.name if mlist is not None else None
    audit.record_act(
        ctx.session,
        actor,
        "webhook-add",
        list_name=name or "",
        target=f"webhook:{hook.id}",
        source=ctx.source,
        detail={"after": {**view(hook, name), "created_at": hook.created_at.isoformat()}},
        at=ctx.now,
    )
    return hook


def find_webhook(session: Session, hook_id: int) -> tuple[Webhook, MailingList | None]:
    hook = session.get(Webhook, hook_id)
    if hook is None:
        raise NotFound(f"There is no webhook {hook_id}.", field="id")
    mlist = session.get(MailingList, hook.list_id) if hook.list_id is not None else None
    return hook, mlist


def remove_webhook(ctx: Context, actor: Actor, hook_id: int) -> Webhook:
    """Stop a webhook; its queued deliveries go with it."""
    hook, mlist = find_webhook(ctx.session, hook_id)
    require(ctx.session, actor, mlist, Need.MANAGE if mlist is not None else Need.ADMINISTER)
    name = mlist.name if mlist is not None else None
    before = {**view(hook, name), "created_at": hook.created_at.isoformat()}
    ctx.session.delete(hook)
    ctx.session.flush()
    audit.record_act(
        ctx.session,
        actor,
        "webhook-remove",
        list_name=name or "",
        target=f"webhook:{hook_id}",
        source=ctx.source,
        detail={"before": before},
        at=ctx.now,
    )
    return hook


def all_webhooks(session: Session) -> list[tuple[Webhook, str | None]]:
    rows = session.execute(
        select(Webhook, MailingList.name)
        .outerjoin(MailingList, MailingList.id == Webhook.list_id)
        .order_by(Webhook.id)
    ).all()
    return [(hook, name) for hook, name in rows]
