# SPDX-License-Identifier: Apache-2.0
"""`listserv audit`: the audit log, filtered by list, actor, action, target and time."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from listserv.cli.common import emit, open_context
from listserv.cli.options import JsonOption, parse_when
from listserv.models import AuditEvent


def show_audit(
    list_name: Annotated[str | None, typer.Option("--list", help="Only this list.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only this actor (address or user@host).")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. member-add, ban-add, list-change.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only this target (an address, a pattern).")
    ] = None,
    channel: Annotated[str | None, typer.Option(help="email, cli, web or system.")] = None,
    since: Annotated[str | None, typer.Option(help="At or after this date/time (UTC).")] = None,
    until: Annotated[
        str | None, typer.Option(help="Before this time; a date includes that day.")
    ] = None,
    limit: Annotated[int, typer.Option(help="The most recent N matching entries.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """Who changed what, when and through which channel (oldest first)."""
    start = parse_when(since, option="--since") if since else None
    end = parse_when(until, end_of_day=True, option="--until") if until else None
    stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if list_name:
        stmt = stmt.where(AuditEvent.list_name == list_name.strip().lower())
    if actor:
        stmt = stmt.where(func.lower(AuditEvent.actor) == actor.strip().lower())
    if action:
        stmt = stmt.where(AuditEvent.action == action.strip().lower())
    if target:
        stmt = stmt.where(func.lower(AuditEvent.target) == target.strip().lower())
    if channel:
        stmt = stmt.where(AuditEvent.channel == channel.strip().lower())
    if start:
        stmt = stmt.where(AuditEvent.at >= start)
    if end:
        stmt = stmt.where(AuditEvent.at < end)
    with open_context() as ctx:
        events = list(reversed(ctx.session.scalars(stmt.limit(max(limit, 1))).all()))
        rows: list[dict[str, Any]] = [
            {
                "id": e.id,
                "at": e.at,
                "list": e.list_name,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "channel": e.channel,
                "auth": e.auth,
                "outcome": e.outcome,
                "source": e.source,
                "detail": e.detail or {},
            }
            for e in events
        ]
    if not as_json:
        for row in rows:
            row["change"] = _change(row["detail"])
    emit(
        rows,
        ["at", "list", "actor", "action", "target", "channel", "outcome", "change"],
        as_json=as_json,
    )


def _change(detail: dict[str, Any]) -> str:
    """`key: before → after` for the keys that differ, for the table view."""
    before, after = detail.get("before") or {}, detail.get("after") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""
    keys = [
        k
        for k in (*before, *(k for k in after if k not in before))
        if before.get(k) != after.get(k)
    ]
    parts = [f"{k}: {before.get(k, '-')} → {after.get(k, '-')}" for k in keys[:4]]
    return "; ".join(parts)[:200]
