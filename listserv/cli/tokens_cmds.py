# SPDX-License-Identifier: Apache-2.0
"""`listserv tokens create|list|revoke` and `listserv webhooks add|list|remove`.

A token is printed once, when it is created, and never again: only its
keyed hash is kept. Revoking takes effect at the API's next request. A
webhook's signing secret is likewise printed once, when it is added.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from listserv.acts import tokens as token_acts
from listserv.acts import webhooks as webhook_acts
from listserv.cli.common import actor, console, emit, open_context, require_list
from listserv.cli.options import JsonOption, parse_when
from listserv.webhooks.events import EVENTS

app = typer.Typer(help="API tokens for scripts and other systems.", no_args_is_help=True)
webhooks_app = typer.Typer(help="URLs told of list events, signed.", no_args_is_help=True)

_SPAN = re.compile(r"^(\d+)\s*([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_expiry(text: str, now: datetime) -> datetime:
    """`90d`, `12h`, `30m`, or a date: when the token stops working."""
    match = _SPAN.match(text.strip().lower())
    if match:
        return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return parse_when(text, option="--expires")


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. hr-offboarding.")],
    role: Annotated[str, typer.Option("--role", help="site-admin, owner, moderator or reader.")],
    list_names: Annotated[
        list[str] | None,
        typer.Option("--list", metavar="LIST", help="A list it may act on (repeatable)."),
    ] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="90d, 12h, or a date (default: never).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a token (printed once: store it now)."""
    with open_context() as ctx:
        when = parse_expiry(expires, ctx.now) if expires else None
        issued = token_acts.create_token(
            ctx, actor(), name, role, list_names=list_names or (), expires_at=when
        )
        row = issued.row
        shown = {
            "id": row.id,
            "name": row.name,
            "token": issued.token,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        }
    if as_json:
        sys.stdout.write(json.dumps({**shown, "role": role, "lists": row.lists}) + "\n")
        return
    scope = ", ".join(row.lists) or "every list"
    console.print(
        f"token {row.id} ({row.name}): {row.role} on {scope}; "
        f"expires {shown['expires_at'] or 'never'}",
        highlight=False,
    )
    console.print(issued.token, highlight=False, soft_wrap=True)
    console.print("Store it now: it is not shown again.", highlight=False)


@app.command("list")
def list_tokens(as_json: JsonOption = False) -> None:
    """Every token: name, role, lists, expiry, revocation, last use (never the token)."""
    with open_context() as ctx:
        rows = [token_acts.view(t) for t in token_acts.all_tokens(ctx.session)]
    emit(
        [_plain(r) if as_json else r for r in rows],
        ["id", "name", "role", "lists", "expires_at", "revoked_at", "last_used_at"],
        as_json=as_json,
    )


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    with open_context() as ctx:
        row = token_acts.revoke_token(ctx, actor(), token_id)
        console.print(f"token {row.id} ({row.name}) revoked", highlight=False)


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="https URL (http only to 127.0.0.1 or localhost).")],
    events: Annotated[
        str, typer.Option("--events", help=f"Comma-separated: {','.join(EVENTS)}.")
    ] = ",".join(EVENTS),
    list_name: Annotated[
        str | None, typer.Option("--list", metavar="LIST", help="Only this list's events.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send events to a URL, signed with a secret printed once."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, list_name) if list_name else None
        hook = webhook_acts.add_webhook(ctx, actor(), url, events.split(","), mlist)
        shown = {**_plain(webhook_acts.view(hook, list_name)), "secret": hook.secret}
    if as_json:
        sys.stdout.write(json.dumps(shown) + "\n")
        return
    console.print(
        f"webhook {hook.id}: {', '.join(hook.events)} → {hook.url}"
        f" ({'list ' + list_name if list_name else 'every list'})",
        highlight=False,
    )
    console.print(f"signing secret: {hook.secret}", highlight=False, soft_wrap=True)


@webhooks_app.command("list")
def list_webhooks(as_json: JsonOption = False) -> None:
    """Every webhook (never its secret)."""
    with open_context() as ctx:
        rows = [webhook_acts.view(h, n) for h, n in webhook_acts.all_webhooks(ctx.session)]
    emit(
        [_plain(r) if as_json else r for r in rows],
        ["id", "url", "list", "events", "created_at"],
        as_json=as_json,
    )


@webhooks_app.command("remove")
def remove(hook_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Stop a webhook; deliveries not yet made are dropped."""
    with open_context() as ctx:
        hook = webhook_acts.remove_webhook(ctx, actor(), hook_id)
        console.print(f"webhook {hook_id} ({hook.url}) removed", highlight=False)
