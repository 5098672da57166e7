# SPDX-License-Identifier: Apache-2.0
"""The roster: members by page, filters, history at a moment; adding, changing, removing one.

Pages follow the roster's unique index (list, address key, role), so any
page is one range read. `?at=` answers from the membership history instead
of today's roster, as `members list --at` does. Adding checks eligibility
and bans in the act: an ineligible address is a 422 naming the reason (its
`code`), an existing member a 409.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, bindparam, func, or_, select, tuple_, type_coerce

from listserv import roster
from listserv.acts import members as member_acts
from listserv.acts.errors import Invalid
from listserv.api import pagination
from listserv.api.lists import find_list, list_to_read
from listserv.api.spec import (
    BOOLEAN,
    STRING,
    TIMESTAMP,
    Call,
    Param,
    Reply,
    Schema,
    obj,
    rfc3339,
)
from listserv.models import DeliveryMode, Member, MembershipEvent, Role
from listserv.prepared import Prepared

ROLES = [r.value for r in Role]
DELIVERY_WORDS = {m.word: m for m in DeliveryMode}
DELIVERY: Schema = {"type": "string", "enum": list(DELIVERY_WORDS)}

MEMBER = obj(
    {
        "address": STRING,
        "name": STRING,
        "title": STRING,
        "role": {"type": "string", "enum": ROLES},
        "delivery": {"type": "string", "enum": ["", *DELIVERY_WORDS]},
        "status": STRING,
        "joined_at": TIMESTAMP,
    }
)
HISTORIC_MEMBER = obj(
    {"address": STRING, "delivery": DELIVERY, "status": STRING, "since": TIMESTAMP}
)
NEW_MEMBER = obj(
    {
        "address": {"type": "string", "minLength": 3, "maxLength": 320},
        "name": {"type": "string", "maxLength": 200},
        "title": {"type": "string", "maxLength": 200},
        "role": {"type": "string", "enum": ROLES},
        "welcome": BOOLEAN,
    },
    required=("address",),
)
MEMBER_PATCH: Schema = {
    **obj(
        {
            "delivery": DELIVERY,
            "name": {"type": "string", "maxLength": 200},
            "title": {"type": "string", "maxLength": 200},
        },
        required=(),
    ),
    "minProperties": 1,
}

ADDRESS_PARAM = Param("address", "path", {"type": "string", "maxLength": 320}, "", True)
ROLE_PARAM = Param(
    "role", "query", {"type": "string", "enum": ROLES}, "member (default), owner or moderator"
)
LIST_QUERY = (
    Param("role", "query", {"type": "string", "enum": ROLES}, "only this role"),
    Param("delivery", "query", DELIVERY, "only members with this delivery"),
    Param("q", "query", {"type": "string", "maxLength": 320}, "address or name contains"),
    Param("at", "query", TIMESTAMP, "who was a member at this moment (from the history)"),
    *pagination.PARAMS,
)


#: The roster columns a page reads: plain rows, not ORM objects, and the closed sets
#: as their stored words, because a page of 100 is read on every call and building
#: objects and enums costs more than the query.
COLUMNS = (
    Member.address,
    Member.display_name,
    Member.job_title,
    type_coerce(Member.role, String),
    type_coerce(Member.delivery_mode, String),
    type_coerce(Member.delivery_status, String),
    type_coerce(Member.joined_at, String),
    Member.address_key,
)
_WORDS = {mode.value: mode.word for mode in DeliveryMode}


def _view(
    address: str, name: str, title: str, role: str, mode: str, status: str, joined_at: str
) -> dict[str, Any]:
    receiving = role == Role.MEMBER.value
    return {
        "address": address,
        "name": name,
        "title": title,
        "role": role,
        "delivery": _WORDS[mode] if receiving else "",
        "status": status if receiving else "",
        "joined_at": joined_at,
    }


def view(member: Member) -> dict[str, Any]:
    return _view(
        member.address,
        member.display_name,
        member.job_title,
        member.role.value,
        member.delivery_mode.value,
        member.delivery_status.value,
        rfc3339(member.joined_at),
    )


def _stamp(value: str | datetime) -> str:
    """`joined_at` as read without its type: SQLite's stored UTC text, or a driver's datetime.

    Parsing SQLite's text into a datetime only to print it again was a fifth
    of a page's cost; the text is already UTC (`UTCDateTime` stores it so).
    """
    if isinstance(value, datetime):
        return rfc3339(value.astimezone(UTC))
    return value.replace(" ", "T", 1) + "Z"


_RECEIVING = Role.MEMBER.value


def _row_views(rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """`_view` of each roster row, written out in one comprehension: a page runs it 100 times."""
    words, receiving = _WORDS, _RECEIVING
    return [
        {
            "address": address,
            "name": name,
            "title": title,
            "role": role,
            "delivery": words[mode] if role == receiving else "",
            "status": status if role == receiving else "",
            "joined_at": (
                joined.replace(" ", "T", 1) + "Z" if type(joined) is str else _stamp(joined)
            ),
        }
        for address, name, title, role, mode, status, joined, _ in rows
    ]


def _historic(event: MembershipEvent) -> dict[str, Any]:
    return {
        "address": event.address,
        "delivery": DeliveryMode(event.delivery_mode).word,
        "status": event.delivery_status.value,
        "since": event.at,
    }


def _page_read(role: bool, delivery: bool, words: bool, after: bool) -> Prepared:
    """The roster page read for one combination of filters, with named parameters."""
    stmt = select(*COLUMNS).where(Member.list_id == bindparam("list_id"))
    if role:
        stmt = stmt.where(Member.role == bindparam("role", type_=String))
    if delivery:
        stmt = stmt.where(Member.delivery_mode == bindparam("delivery", type_=String))
    if words:
        pattern = bindparam("pattern", type_=String)
        stmt = stmt.where(
            or_(
                Member.address_key.like(pattern, escape="/"),
                func.lower(Member.display_name).like(pattern, escape="/"),
            )
        )
    if after:
        # A row-value comparison, which SQLite and PostgreSQL both answer from the index.
        stmt = stmt.where(
            tuple_(Member.address_key, Member.role)
            > tuple_(bindparam("after_key", type_=String), bindparam("after_role", type_=String))
        )
    stmt = stmt.order_by(Member.address_key, Member.role).limit(bindparam("limit"))
    return Prepared(stmt)


#: Every filter combination's read, made once (see `listserv.prepared`).
_PAGE_READS = {flags: _page_read(*flags) for flags in itertools.product((False, True), repeat=4)}


def _like(words: str) -> str:
    """`%words%` with LIKE's own characters escaped (the reads say `ESCAPE '/'`)."""
    escaped = words.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def get_members(call: Call) -> Reply:
    """The roster by page (filters `role`, `delivery`, `q`), or who was a member `at` a moment."""
    mlist = list_to_read(call)
    query = dict(call.query)
    limit = pagination.limit_of(query)
    if "at" in query:
        return _members_at(call, query, limit)
    after = pagination.decode(query.get("cursor"), [str, str])
    params: dict[str, Any] = {"list_id": mlist.id, "limit": limit + 1}
    if "role" in query:
        params["role"] = Role(query["role"]).value
    if "delivery" in query:
        params["delivery"] = DELIVERY_WORDS[query["delivery"]].value
    words = str(query.get("q") or "").lower()
    if words:
        params["pattern"] = _like(words)
    if after is not None:
        params["after_key"], params["after_role"] = after
    read = _PAGE_READS["role" in params, "delivery" in params, bool(words), after is not None]
    rows = read.rows(call.ctx.session, params)
    return Reply(pagination.page_by(rows, limit, lambda r: [r[7], r[3]], _row_views))


def _members_at(call: Call, query: dict[str, Any], limit: int) -> Reply:
    mlist = list_to_read(call)
    for name in ("role", "delivery", "q"):
        if name in query:
            raise Invalid(f"{name} cannot be combined with at", field=name)
    after = pagination.decode(query.get("cursor"), [str])
    events = roster.members_at(call.ctx.session, mlist, query["at"], receiving_only=False)
    if after is not None:
        events = [e for e in events if e.address_key > after[0]]
    return Reply(pagination.page(events[: limit + 1], limit, lambda e: [e.address_key], _historic))


def _address(call: Call) -> str:
    return call.path["address"]


def _role(call: Call) -> Role:
    return Role(call.query.get("role", Role.MEMBER.value))


def get_member(call: Call) -> Reply:
    """One roster row (`?role=` for an owner's or moderator's)."""
    mlist = find_list(call)
    return Reply(view(member_acts.find(call.ctx, mlist, _address(call), _role(call))))


def post_member(call: Call) -> Reply:
    """Add an address at once (owners); eligibility and bans as for every channel."""
    mlist = find_list(call)
    body = call.body
    member = member_acts.add_member(
        call.ctx,
        call.actor,
        mlist,
        body["address"],
        name=body.get("name", ""),
        title=body.get("title", ""),
        role=Role(body.get("role", Role.MEMBER.value)),
        welcome=bool(body.get("welcome", True)),
    )
    call.ctx.session.flush()
    location = f"/api/v1/lists/{mlist.name}/members/{member.address}"
    return Reply(view(member), status=201, headers={"location": location})


def patch_member(call: Call) -> Reply:
    """Change delivery, name or title in one step (owners, one audit row)."""
    mlist = find_list(call)
    member = member_acts.find(call.ctx, mlist, _address(call))
    fields: dict[str, Any] = {}
    if "delivery" in call.body:
        fields["delivery_mode"] = DELIVERY_WORDS[call.body["delivery"]]
    if "name" in call.body:
        fields["display_name"] = member_acts.clean_text(call.body["name"])
    if "title" in call.body:
        fields["job_title"] = member_acts.clean_text(call.body["title"])
    member_acts.change_fields(call.ctx, call.actor, mlist, member, fields)
    return Reply(view(member))


def delete_member(call: Call) -> Reply:
    """Remove a roster row (owners); the last owner and configured staff stay."""
    mlist = find_list(call)
    member_acts.remove_member(call.ctx, call.actor, mlist, _address(call), role=_role(call))
    return Reply(status=204)
