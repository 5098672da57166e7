# SPDX-License-Identifier: Apache-2.0
"""Acts on a whole list: create, change settings, emergency hold, delete.

Site administrators create and delete lists; owners change their list's
settings (validated by `list_settings`, the same words everywhere), hold
every post in an emergency, and set a legal hold. Each change is audited
with the values before and after. Lists in the configuration file are
created at start instead, and cannot be deleted here while the file names
them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from listserv import audit, lists, roster
from listserv.actors import Actor
from listserv.acts.errors import Conflict, Invalid
from listserv.acts.permissions import Need, require
from listserv.addresses import RESERVED_SUFFIXES
from listserv.config import ListSettings
from listserv.context import Context
from listserv.eligibility import InvalidAddress, normalise_address
from listserv.lists import SYNCED_FIELDS
from listserv.models import MailingList, Role
from listserv.records import retention


def check_name(name: str, command_address: str) -> str:
    """The stored form of a new list's name, or Invalid with the rule it breaks."""
    clean = name.strip().lower()
    if not clean or not clean[0].isalnum() or not all(c.isalnum() or c in "-_." for c in clean):
        raise Invalid(
            f"{name!r} is not a list name: use letters, digits, '-', '_' and '.', "
            "starting with a letter or digit",
            field="name",
        )
    if len(clean) > 64:
        raise Invalid("a list name may be at most 64 characters", field="name")
    if any(clean.endswith(suffix) for suffix in RESERVED_SUFFIXES):
        raise Invalid(
            f"{clean!r} ends with a reserved suffix such as -request or -owner", field="name"
        )
    if clean == command_address:
        raise Invalid(f"{clean!r} is the site command address", field="name")
    return clean


def _check_address(address: str, what: str) -> str:
    try:
        normalise_address(address)
    except InvalidAddress as exc:
        raise Invalid(f"{what} {address!r} is not an email address: {exc}", field=what) from None
    return address.strip()


@dataclasses.dataclass(frozen=True)
class NewList:
    """What a new list starts with; `settings` are further `key=value` changes, validated."""

    name: str
    owners: Sequence[str]
    moderators: Sequence[str] = ()
    display_name: str = ""
    description: str = ""
    eligible_domains: Sequence[str] = ()
    join_phrases: Sequence[str] = ()
    leave_phrases: Sequence[str] = ()
    subject_prefix: str = ""
    settings: Mapping[str, object] = dataclasses.field(default_factory=dict)


def create_list(ctx: Context, actor: Actor, new: NewList) -> MailingList:
    """A list in the database, with its owners and moderators (site administrators only)."""
    require(ctx.session, actor, None, Need.ADMINISTER)
    clean = check_name(new.name, ctx.settings.site.command_address)
    if lists.get_list(ctx.session, clean) is not None:
        raise Conflict(f"a list named {clean!r} already exists", field="name")
    owners = [_check_address(a, "owner") for a in new.owners]
    if not owners:
        raise Invalid("a list needs at least one owner", field="owner")
    moderators = [_check_address(a, "moderator") for a in new.moderators]
    base = ListSettings(
        name=clean,
        display_name=new.display_name.strip() or clean.upper(),
        description=new.description.strip(),
        join_phrases=tuple(p.strip() for p in new.join_phrases if p.strip()),
        leave_phrases=tuple(p.strip() for p in new.leave_phrases if p.strip()),
        subject_prefix=new.subject_prefix,
    )
    if new.eligible_domains:
        suffixes = tuple(d.strip().lower().strip(".") for d in new.eligible_domains if d.strip())
        base = dataclasses.replace(base, eligible_domains=suffixes)
    mlist = MailingList(name=clean, domain=ctx.settings.site.domain, from_config=False)
    lists.apply_settings(mlist, base)
    for key, value in new.settings.items():
        setattr(mlist, key, value)
    mlist.created_at = ctx.now
    ctx.session.add(mlist)
    ctx.session.flush()
    audit.record_act(
        ctx.session,
        actor,
        "list-create",
        list_name=clean,
        target=clean,
        source=ctx.source,
        detail={
            "after": {key: getattr(mlist, key) for key in (*SYNCED_FIELDS, "legal_hold", "domain")}
        },
        at=ctx.now,
    )
    for role, addresses in ((Role.OWNER, owners), (Role.MODERATOR, moderators)):
        for address in addresses:
            roster.add_member(
                ctx.session,
                mlist,
                address,
                role=role,
                actor=actor,
                source=ctx.source,
                now=ctx.now,
            )
    return mlist


#: Keys no settings change may touch.
_FIXED = frozenset({"id", "name", "created_at", "domain", "from_config", "config_synced"})


def change_settings(
    ctx: Context, actor: Actor, mlist: MailingList, changes: Mapping[str, object]
) -> dict[str, object]:
    """Change validated settings (owners); returns the old values of those that changed."""
    require(ctx.session, actor, mlist, Need.MANAGE)
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    for key, value in changes.items():
        if not hasattr(mlist, key) or key in _FIXED:
            raise Invalid(f"{key} is not a list setting", field=key)
        current = getattr(mlist, key)
        if current != value:
            before[key] = current
            after[key] = value
            setattr(mlist, key, value)
    if after:
        audit.record_act(
            ctx.session,
            actor,
            "list-change",
            list_name=mlist.name,
            target=mlist.name,
            source=ctx.source,
            detail={"before": before, "after": after},
            at=ctx.now,
        )
    return before


def set_emergency_hold(ctx: Context, actor: Actor, mlist: MailingList, on: bool) -> bool:
    """HOLD / FREE: every post held for the moderators, or no longer; False if unchanged."""
    return bool(change_settings(ctx, actor, mlist, {"emergency_hold": on}))


def delete_list(ctx: Context, actor: Actor, mlist: MailingList) -> dict[str, int]:
    """Delete a list with its roster, history and archive; what went with it is returned.

    Refused under legal hold, and for a list the configuration file defines
    (it would be created again at the next start).
    """
    require(ctx.session, actor, None, Need.ADMINISTER)
    check_deletable(ctx, mlist)
    return retention.delete_list(ctx, actor, mlist)


def check_deletable(ctx: Context, mlist: MailingList) -> None:
    """Refuse deleting a list under legal hold, or one the configuration file defines.

    Separate so a channel can ask before it asks "are you sure?".
    """
    retention.check_no_hold(mlist, "deleting the list")
    if ctx.settings.list_named(mlist.name) is not None:
        raise Conflict(
            f"{mlist.name} is defined in {ctx.settings.source or 'the configuration file'}; "
            "remove it there first, or it is created again at the next start",
            code="configured",
        )
