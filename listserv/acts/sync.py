# SPDX-License-Identifier: Apache-2.0
"""Bringing a roster in line with a file: remove many at once, or sync to the file.

`remove_members` removes every address of a file that is a member (Mailman's
`delmembers`); `sync_members` makes the members exactly the file's addresses
(Mailman's `syncmembers`): the missing are added as an import adds them, with
eligibility, bans and duplicates judged, and the extra removed. Each removal is
the same act as `members remove` (permission, history, audit); the additions are
one bulk import. Owners and moderators are never touched: only role member.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from listserv.actors import Actor
from listserv.acts.errors import Invalid
from listserv.acts.imports import ImportOptions, import_members
from listserv.acts.members import remove_member
from listserv.acts.permissions import Need, require
from listserv.context import Context
from listserv.eligibility import InvalidAddress, normalise_address
from listserv.models import MailingList, Member, Role
from listserv.roster.files import RosterFile
from listserv.roster.plan import ImportPlan


@dataclass
class Removal:
    """What a bulk removal did: removed addresses, and lines that named no member."""

    removed: list[str] = field(default_factory=list)
    not_members: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    plan: ImportPlan
    removal: Removal


def _file_keys(source: RosterFile) -> tuple[dict[str, str], list[str]]:
    """Normalised key → address as written, for every record; and the unreadable ones."""
    keys: dict[str, str] = {}
    invalid: list[str] = []
    for entry in source.entries():
        try:
            keys.setdefault(normalise_address(entry.address), entry.address)
        except InvalidAddress:
            invalid.append(entry.text)
    return keys, invalid


def _member_addresses(ctx: Context, mlist: MailingList) -> dict[str, str]:
    rows = ctx.session.execute(
        select(Member.address_key, Member.address).where(
            Member.list_id == mlist.id, Member.role == Role.MEMBER
        )
    )
    return {key: address for key, address in rows}


def _remove(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    addresses: list[str],
    *,
    reason: str,
    dry_run: bool,
) -> list[str]:
    if dry_run:
        return addresses
    return [
        remove_member(ctx, actor, mlist, address, role=Role.MEMBER, reason=reason)
        for address in addresses
    ]


def remove_members(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    source: RosterFile,
    *,
    reason: str = "",
    dry_run: bool = False,
) -> Removal:
    """Remove every member the file names; others are reported, not an error."""
    require(ctx.session, actor, mlist, Need.MANAGE)
    wanted, invalid = _file_keys(source)
    current = _member_addresses(ctx, mlist)
    present = [current[key] for key in wanted if key in current]
    missing = [address for key, address in wanted.items() if key not in current]
    removed = _remove(ctx, actor, mlist, present, reason=reason, dry_run=dry_run)
    return Removal(removed=removed, not_members=missing, invalid=invalid)


def sync_members(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    text: str,
    fmt: str,
    options: ImportOptions,
    *,
    reason: str = "",
) -> SyncReport:
    """Add the file's addresses that are missing and remove the members it lacks.

    A member whose address is in the file stays, even if the file's line for them
    would now be refused (a tightened eligibility rule is not a reason to remove
    anyone silently); a line that is not an address at all removes nobody.
    """
    require(ctx.session, actor, mlist, Need.MANAGE)
    wanted, _ = _file_keys(RosterFile(text, fmt))
    if not wanted:
        raise Invalid(
            "the file names no address; syncing to it would remove every member", field="file"
        )
    extra = [address for key, address in _member_addresses(ctx, mlist).items() if key not in wanted]
    plan = import_members(ctx, actor, mlist, RosterFile(text, fmt), options)
    removed = _remove(
        ctx, actor, mlist, sorted(extra), reason=reason or "sync", dry_run=options.dry_run
    )
    return SyncReport(plan=plan, removal=Removal(removed=removed))
