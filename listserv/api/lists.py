# SPDX-License-Identifier: Apache-2.0
"""Lists: the collection a token may see, one list's settings, and changing them.

Settings come in as JSON values and are checked by the same function as
`lists set` (`acts.list_settings.parse_setting`), so the API refuses what the
CLI refuses, in the same words, naming the key. A list's settings carry an
ETag; a PATCH with a stale `If-Match` is refused with 412 instead of
silently undoing someone else's change.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from sqlalchemy import bindparam, func, select

from listserv.acts import list_settings
from listserv.acts import lists as list_acts
from listserv.acts.errors import NotFound
from listserv.acts.permissions import Need, require
from listserv.api import pagination
from listserv.api.problems import Problem
from listserv.api.spec import (
    INTEGER,
    STRING,
    Call,
    Param,
    Reply,
    Schema,
    obj,
)
from listserv.lists import get_list
from listserv.models import MailingList, Member, Role
from listserv.prepared import Prepared

LIST_PARAM = Param("list", "path", {"type": "string", "maxLength": 64}, "the list's name", True)


#: The largest whole number a setting may be (a 32-bit column on every database).
MAX_INT = 2**31 - 1


def _setting_schema(key: str) -> Schema:
    kind = list_settings.kind_of(key)
    if kind is bool:
        return {"type": "boolean"}
    if kind is int:
        return {"type": "integer", "minimum": 0, "maximum": MAX_INT}
    if kind is float:
        return {"type": "number", "minimum": 0, "maximum": 1e9}
    if kind is tuple:
        return {"type": "array", "items": {"type": "string", "maxLength": 320}, "maxItems": 1000}
    if key in list_settings.CHOICES:
        return {"type": "string", "enum": list(list_settings.CHOICES[key])}
    length = getattr(MailingList.__table__.columns[key].type, "length", None)
    return {"type": "string", "maxLength": length or 10_000}


SETTINGS = obj({key: _setting_schema(key) for key in list_settings.settable_fields()})
SETTINGS_PATCH: Schema = {**SETTINGS, "required": [], "minProperties": 1}
SUMMARY = obj(
    {
        "name": STRING,
        "display_name": STRING,
        "address": {"type": "string", "format": "email"},
        "description": STRING,
        "members": INTEGER,
    }
)
LIST = obj({**SUMMARY["properties"], "settings": SETTINGS})


def find_list(call: Call, need: Need = Need.READ) -> MailingList:
    """The list in the path, if the token may see it (404 as if absent otherwise)."""
    name = call.path["list"]
    mlist = get_list(call.ctx.session, name)
    if mlist is None:
        raise NotFound(f"There is no list named {name} here.", field="list")
    require(call.ctx.session, call.actor, mlist, need)
    return mlist


_BRIEF = Prepared(
    select(MailingList.id, MailingList.name, MailingList.display_name).where(
        MailingList.name == bindparam("name")
    )
)


def list_to_read(call: Call, need: Need = Need.READ) -> MailingList:
    """`find_list` for read-only handlers: the list's id and names only, not a loaded row.

    The returned list is not in the session and carries nothing else, which is
    all a page read needs (and a third of a roster page's cost when loaded whole).
    """
    name = call.path["list"]
    row = _BRIEF.first(call.ctx.session, {"name": name.strip().lower()})
    if row is None:
        raise NotFound(f"There is no list named {name} here.", field="list")
    mlist = _brief(row[0], row[1], row[2])
    require(call.ctx.session, call.actor, mlist, need)
    return mlist


@functools.lru_cache(maxsize=1024)
def _brief(list_id: int, name: str, display_name: str) -> MailingList:
    """A transient list carrying only these three values, made once for them.

    Keyed by every value it holds, so a renamed list gets a new one; read-only
    handlers share it (making an ORM object cost a roster page 2 % of its CPU).
    """
    return MailingList(id=list_id, name=name, display_name=display_name)


def _count(call: Call, mlist: MailingList) -> int:
    return int(
        call.ctx.session.scalar(
            select(func.count()).where(Member.list_id == mlist.id, Member.role == Role.MEMBER)
        )
        or 0
    )


def _summary(mlist: MailingList, members: int) -> dict[str, Any]:
    return {
        "name": mlist.name,
        "display_name": mlist.display_name,
        "address": mlist.posting_address,
        "description": mlist.description,
        "members": members,
    }


def settings_of(mlist: MailingList) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in list_settings.settable_fields():
        value = getattr(mlist, key)
        values[key] = list(value) if isinstance(value, list | tuple) else value
    return values


def etag(settings: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    return f'"{digest.hexdigest()[:32]}"'


def get_lists(call: Call) -> Reply:
    """The lists this token may see, by name."""
    session = call.ctx.session
    after = pagination.decode(call.query.get("cursor"), [str])
    limit = pagination.limit_of(dict(call.query))
    stmt = select(MailingList).order_by(MailingList.name)
    scope = call.actor.scope
    if scope is not None and scope.lists is not None:
        stmt = stmt.where(MailingList.name.in_(sorted(scope.lists)))
    if after is not None:
        stmt = stmt.where(MailingList.name > after[0])
    rows = list(session.scalars(stmt.limit(limit + 1)))
    counts = dict(
        session.execute(
            select(Member.list_id, func.count())
            .where(Member.role == Role.MEMBER, Member.list_id.in_([m.id for m in rows]))
            .group_by(Member.list_id)
        ).all()
    )
    return Reply(
        pagination.page(rows, limit, lambda m: [m.name], lambda m: _summary(m, counts.get(m.id, 0)))
    )


def _list_reply(call: Call, mlist: MailingList) -> Reply:
    settings = settings_of(mlist)
    body = {**_summary(mlist, _count(call, mlist)), "settings": settings}
    return Reply(body, headers={"etag": etag(settings)})


def get_list_settings(call: Call) -> Reply:
    """One list and its settings; the ETag is for `If-Match` on PATCH."""
    return _list_reply(call, find_list(call))


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def patch_list_settings(call: Call) -> Reply:
    """Change settings (owners), validated as `lists set`; a stale If-Match is 412."""
    mlist = find_list(call)
    wanted = call.headers.get("if-match")
    if wanted is not None and wanted.strip() not in ("*", etag(settings_of(mlist))):
        raise Problem(
            412,
            "The list's settings changed since that ETag; GET the list again and retry.",
            field="If-Match",
        )
    changes = {
        key: list_settings.parse_setting(key, _as_text(value)) for key, value in call.body.items()
    }
    list_acts.change_settings(call.ctx, call.actor, mlist, changes)
    call.ctx.session.flush()
    return _list_reply(call, mlist)
