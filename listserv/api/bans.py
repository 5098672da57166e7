# SPDX-License-Identifier: Apache-2.0
"""A list's bans: read them, add one, lift one (`DELETE …/bans?pattern=`).

The pattern is checked by the act, as for `BAN` by mail and `listserv bans
add`: an exact address, a glob (`*@spam.example`) or `^regex`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from listserv.acts import bans as ban_acts
from listserv.api import pagination
from listserv.api.lists import find_list
from listserv.api.spec import STRING, TIMESTAMP, Call, Param, Reply, obj
from listserv.bans import pattern_kind
from listserv.models import Ban

BAN = obj(
    {
        "pattern": STRING,
        "kind": STRING,
        "reason": STRING,
        "created_by": STRING,
        "created_at": TIMESTAMP,
    }
)
NEW_BAN = obj(
    {
        "pattern": {"type": "string", "minLength": 1, "maxLength": 320},
        "reason": {"type": "string", "maxLength": 2000},
    },
    required=("pattern",),
)
PATTERN_PARAM = Param(
    "pattern",
    "query",
    {"type": "string", "minLength": 1, "maxLength": 320},
    "the ban to lift",
    True,
)


def view(ban: Ban) -> dict[str, Any]:
    return {
        "pattern": ban.pattern,
        "kind": pattern_kind(ban.pattern),
        "reason": ban.reason,
        "created_by": ban.created_by,
        "created_at": ban.created_at,
    }


def get_bans(call: Call) -> Reply:
    """The list's bans, by pattern."""
    mlist = find_list(call)
    limit = pagination.limit_of(dict(call.query))
    after = pagination.decode(call.query.get("cursor"), [str])
    stmt = select(Ban).where(Ban.list_id == mlist.id)
    if after is not None:
        stmt = stmt.where(Ban.pattern > after[0])
    rows = list(call.ctx.session.scalars(stmt.order_by(Ban.pattern).limit(limit + 1)))
    return Reply(pagination.page(rows, limit, lambda b: [b.pattern], view))


def post_ban(call: Call) -> Reply:
    """Ban an address or pattern from the list (owners)."""
    mlist = find_list(call)
    stored = ban_acts.ban(
        call.ctx, call.actor, mlist, call.body["pattern"], reason=call.body.get("reason", "")
    )
    return Reply(view(stored), status=201)


def delete_ban(call: Call) -> Reply:
    """Lift a ban (owners); 404 if there is none."""
    mlist = find_list(call)
    ban_acts.unban(call.ctx, call.actor, mlist, str(call.query["pattern"]))
    return Reply(status=204)
