# SPDX-License-Identifier: Apache-2.0
"""The roster in the console: search, filters, pages; add, remove, change one member.

Search is a substring of the address or the name, case-folded, answered
from an in-memory index of the roster (`search`); filters by role and
delivery. Every change calls an act
(`acts.members`, `acts.conduct`) with the owner's web actor, and a refusal
is shown as the form's error in the act's own words, the same the CLI and
email commands give.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from listserv.actors import Actor
from listserv.acts import conduct, members
from listserv.acts.errors import Invalid
from listserv.context import Context
from listserv.models import DeliveryMode, DeliveryStatus, MailingList, Member, Role
from listserv.web.console.access import ListAccess, list_page
from listserv.web.console.held import PAGE_SIZE, filter_query, page_asked, paging
from listserv.web.console.search import roster_index
from listserv.web.pages import Memo, Page
from listserv.web.signin.visitor import Visitor

ROLES = tuple(r.value for r in Role)
DELIVERIES = tuple(d.value for d in DeliveryMode)


@dataclass(frozen=True)
class Search:
    q: str = ""
    role: str = ""
    delivery: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, params: dict[str, str]) -> Search:
        return cls(
            q=params.get("q", "").strip()[:200],
            role=params.get("role", "") if params.get("role", "") in ROLES else "",
            delivery=params.get("delivery", "") if params.get("delivery", "") in DELIVERIES else "",
            page=page_asked(params),
        )

    def query(self) -> str:
        """The filters as a query string prefix for the paging links."""
        return filter_query({"q": self.q, "role": self.role, "delivery": self.delivery})


def search_members(
    session: Session, memo: Memo, mlist: MailingList, search: Search
) -> tuple[int, list[Member]]:
    """The rows on the page asked for, and how many match in all (from the roster index)."""
    ids = roster_index(session, memo, mlist).matching(search.q, search.role, search.delivery)
    paged = paging(len(ids), search.page)
    offset = (paged.page - 1) * PAGE_SIZE
    shown = ids[offset : offset + PAGE_SIZE]
    by_id = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(shown)))}
    return len(ids), [by_id[i] for i in shown if i in by_id]


def members_page(
    session: Session,
    memo: Memo,
    visitor: Visitor,
    found: ListAccess,
    search: Search,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    report: Any = None,
    status: int = 200,
) -> Page:
    total, rows = search_members(session, memo, found.mlist, search)
    return list_page(
        "web/members.html",
        visitor,
        found,
        "Members",
        status=status,
        notice=notice,
        errors=errors,
        search=search,
        rows=rows,
        paging=paging(total, search.page),
        query=search.query(),
        roles=ROLES,
        deliveries=DELIVERIES,
        form=form or {},
        report=report,
    )


def member_page(
    session: Session,
    visitor: Visitor,
    found: ListAccess,
    member: Member,
    *,
    notice: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Page:
    return list_page(
        "web/member.html",
        visitor,
        found,
        member.address,
        status=status,
        notice=notice,
        errors=errors,
        member=member,
        deliveries=DELIVERIES,
        enableable=member.delivery_status
        in (DeliveryStatus.DISABLED_BOUNCING, DeliveryStatus.DISABLED_BY_OWNER),
    )


def find_member(session: Session, mlist: MailingList, member_id: int) -> Member | None:
    member = session.get(Member, member_id)
    return member if member is not None and member.list_id == mlist.id else None


def add(ctx: Context, actor: Actor, mlist: MailingList, form: dict[str, str]) -> str:
    role = Role(form.get("role", "member")) if form.get("role", "member") in ROLES else Role.MEMBER
    member = members.add_member(
        ctx,
        actor,
        mlist,
        form.get("address", ""),
        name=members.clean_text(form.get("name", "")),
        title=members.clean_text(form.get("title", "")),
        role=role,
        force=form.get("force") == "yes",
        welcome=form.get("welcome") == "yes",
    )
    return f"{member.address} is now {members.a_role(role)} of {mlist.display_name}."


def _until(text: str) -> datetime:
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        raise Invalid(
            "Enter the date as YYYY-MM-DD, for example 2027-01-31.", field="until"
        ) from None
    return day.replace(tzinfo=UTC)


def change(
    ctx: Context, actor: Actor, mlist: MailingList, member: Member, form: dict[str, str]
) -> str:
    """One change to one member, named by the button pressed."""
    action, address, note = form.get("action", ""), member.address, form.get("note", "")
    if action == "remove":
        members.remove_member(ctx, actor, mlist, address, role=member.role, reason=note)
        return f"{address} was removed from {mlist.display_name}."
    if action == "delivery":
        wanted = form.get("delivery", "")
        if wanted not in DELIVERIES:
            raise Invalid("Choose how the member gets the list.", field="delivery")
        members.set_delivery(ctx, actor, mlist, address, DeliveryMode(wanted))
        return f"{address} now gets {DeliveryMode(wanted).word.upper()}."
    if action == "moderate":
        until = _until(form["until"]) if form.get("until", "").strip() else None
        conduct.moderate(ctx, actor, mlist, address, until=until, note=note)
        return f"Posts from {address} are now held for the moderators."
    if action == "unmoderate":
        conduct.unmoderate(ctx, actor, mlist, address)
        return f"Posts from {address} are no longer held."
    if action == "suspend":
        conduct.suspend(ctx, actor, mlist, address, until=_until(form.get("until", "")), note=note)
        return f"{address} is suspended."
    if action == "lift":
        conduct.lift(ctx, actor, mlist, address)
        return f"Moderation and suspension of {address} are lifted."
    if action == "note":
        conduct.note(ctx, actor, mlist, address, text=note)
        return f"The note on {address} is saved."
    if action == "enable":
        members.enable_delivery(ctx, actor, mlist, address)
        return f"Delivery to {address} is on again."
    raise Invalid("Choose what to change.", field="action")
