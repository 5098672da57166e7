# SPDX-License-Identifier: Apache-2.0
"""`listserv lists list|show`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from listserv.cli.common import console, emit, open_context, require_list
from listserv.lists import SYNCED_FIELDS, all_lists, eligibility_text
from listserv.models import MailingList, Member, Role

app = typer.Typer(help="Mailing lists.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _summary(mlist: MailingList, members: int) -> dict[str, Any]:
    return {
        "name": mlist.name,
        "display_name": mlist.display_name,
        "address": mlist.posting_address,
        "members": members,
        "description": mlist.description,
    }


@app.command("list")
def list_lists(as_json: JsonOption = False) -> None:
    """Every list served here, with its member count."""
    with open_context() as ctx:
        counts = dict(
            ctx.session.execute(
                select(Member.list_id, func.count())
                .where(Member.role == Role.MEMBER)
                .group_by(Member.list_id)
            ).all()
        )
        rows = [_summary(m, counts.get(m.id, 0)) for m in all_lists(ctx.session)]
    emit(rows, ["name", "display_name", "address", "members", "description"], as_json=as_json)


@app.command("show")
def show(name: str, as_json: JsonOption = False) -> None:
    """A list's settings."""
    with open_context() as ctx:
        mlist = require_list(ctx.session, name)
        members = ctx.session.scalar(
            select(func.count()).where(Member.list_id == mlist.id, Member.role == Role.MEMBER)
        )
        row: dict[str, Any] = _summary(mlist, int(members or 0))
        row["domain"] = mlist.domain
        for key in SYNCED_FIELDS:
            row[key] = getattr(mlist, key)
        row["emergency_hold"] = mlist.emergency_hold
        row["legal_hold"] = mlist.legal_hold
        row["eligibility"] = eligibility_text(mlist)
        row["from_config"] = mlist.from_config
    if as_json:
        emit([row], list(row), as_json=True)
        return
    for key, value in row.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "-"
        console.print(f"[bold]{key.replace('_', ' ')}[/bold]: {value}", highlight=False)
