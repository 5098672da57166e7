# SPDX-License-Identifier: Apache-2.0
"""Adding members from a roster file: every line judged, the good ones added at once.

The file is judged line by line (`roster.plan`) without holding the
database's write lock, since 1,000,000 lines take a while; anyone who joined
meanwhile counts as already a member; then the plan is written in one
transaction with batched inserts (`roster.add_members_bulk`) and one
summary audit record. Memory stays flat: the file is read as it is judged,
the members to add wait in a temporary file, and the roster's keys are read
once into the plan's own table. A database failure adds nobody. The CLI and the
console both import through here and report the same plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from listserv import bans, notices, roster
from listserv.actors import Actor
from listserv.acts.errors import Conflict
from listserv.acts.permissions import Need, require
from listserv.context import Context
from listserv.lists import eligibility_rule
from listserv.models import MailingList, Member, Role, utcnow
from listserv.roster.files import RosterFile
from listserv.roster.plan import ImportPlan, Problem, plan_import


class ImportProgress(Protocol):
    """Where a long import reports how far it is (a progress bar, or nothing)."""

    def checked(self, lines: int) -> None:
        """The file has been judged up to line `lines` (the last call: its every line)."""
        ...

    def adding(self, total: int) -> None: ...

    def added(self, done: int) -> None: ...


class NoProgress:
    def checked(self, lines: int) -> None:
        pass

    def adding(self, total: int) -> None:
        pass

    def added(self, done: int) -> None:
        pass


@dataclass(frozen=True)
class ImportOptions:
    force: bool = False  # add addresses outside the eligibility rule too
    welcome: bool = False  # mail the welcome message to each new member
    dry_run: bool = False  # judge and count; change nothing
    audit_each: bool = True  # an audit row per member, beside the summary
    label: str = ""  # the file's name, for the audit record


def member_keys(session: Session, list_id: int) -> Iterator[str]:
    """The lookup keys of the list's members, streamed (a million of them fit in no list)."""
    return iter(
        session.scalars(
            select(Member.address_key)
            .where(Member.list_id == list_id, Member.role == Role.MEMBER)
            .execution_options(yield_per=10_000)
        )
    )


def _high_water(session: Session, list_id: int) -> int:
    return session.scalar(select(func.max(Member.id)).where(Member.list_id == list_id)) or 0


def _joined_since(session: Session, list_id: int, high_water: int, since: datetime) -> set[str]:
    """Keys of the members who joined while the file was being judged."""
    return set(
        session.scalars(
            select(Member.address_key).where(
                Member.list_id == list_id,
                Member.role == Role.MEMBER,
                or_(Member.id > high_water, Member.joined_at >= since),
            )
        )
    )


def import_members(
    ctx: Context,
    actor: Actor,
    mlist: MailingList,
    source: RosterFile,
    options: ImportOptions,
    progress: ImportProgress | None = None,
) -> ImportPlan:
    """Judge every record of the file and add the good ones; the plan says what became of each."""
    require(ctx.session, actor, mlist, Need.MANAGE)
    progress = progress or NoProgress()
    started = utcnow()
    high_water = _high_water(ctx.session, mlist.id)
    matchers = bans.matchers(ctx.session, mlist)
    known = dict.fromkeys(member_keys(ctx.session, mlist.id), 0)
    ctx.session.commit()  # judging takes a while: hold no lock meanwhile
    plan = plan_import(
        source.entries(),
        fmt=source.format,
        rule=eligibility_rule(mlist),
        label=mlist.display_name,
        existing=known,
        bans=matchers,
        force=options.force,
        progress=progress.checked,
    )
    del known
    progress.checked(source.size)
    plan.ignored = source.ignored
    if options.dry_run or not plan.to_add:
        return plan
    joined_meanwhile = _joined_since(ctx.session, mlist.id, high_water, started)
    if joined_meanwhile:
        plan.to_add, late = plan.to_add.without(joined_meanwhile)
        plan.already.extend(
            Problem(0, m.address, "joined during the import", m.address) for m in late
        )
    progress.adding(len(plan.to_add))
    summary = {
        **plan.summary(),
        "file": options.label,
        "force": options.force,
        "welcome": options.welcome,
    }
    try:
        roster.add_members_bulk(
            ctx.session,
            mlist,
            plan.to_add,
            actor=actor,
            source=ctx.source,
            now=ctx.now,
            audit_each=options.audit_each,
            summary=summary,
            on_batch=progress.added,
        )
        if options.welcome:
            for new in plan.to_add:
                notices.send_notice(
                    ctx, "welcome.txt.j2", new.address, mlist=mlist, member_name=new.name
                )
    except SQLAlchemyError as exc:
        ctx.session.rollback()
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise Conflict(f"import failed, nobody was added: {first}", code="import-failed") from None
    return plan
