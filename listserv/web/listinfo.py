# SPDX-License-Identifier: Apache-2.0
"""The list pages and the join form (Mailman's "listinfo").

Input: a list name, and for the join form the posted name, job title and
address. Output: the public lists, one list's page (description, member count,
who may join, the FOIA notice, the form), or the outcome of a join request.
Joining starts the same double opt-in as email (`request_subscribe`), with the
same eligibility rule and per-address limit, plus a limit per client address.

What a join reveals: exactly what the email path reveals to someone who is
not the address's owner — nothing. A member and a stranger both get "check
your mail", and the member gets the already-a-member notice by mail, as a
join request by email would send it. The per-address limit is checked here
before anything else so that a member's address runs out of requests on the
same count as anyone else's and the refusal looks the same.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listserv import db, notices, ratelimit, roster
from listserv.actors import web_actor
from listserv.acts.subscriptions import Requester, request_join
from listserv.limits import client_key
from listserv.lists import get_list
from listserv.models import MailingList, Member, Role, utcnow
from listserv.outcomes import Status
from listserv.web.pages import Link, Page, Web, message

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class JoinForm:
    name: str = ""
    title: str = ""
    address: str = ""

    def cleaned(self) -> JoinForm:
        return JoinForm(self.name.strip(), self.title.strip(), self.address.strip())

    def errors(self) -> dict[str, str]:
        """Field errors, in the order the fields appear on the page."""
        errors: dict[str, str] = {}
        if not self.name:
            errors["name"] = "Enter your name"
        elif len(self.name) > 200:
            errors["name"] = "Your name must be 200 characters or fewer"
        elif _CONTROL.search(self.name):
            errors["name"] = "Enter your name without line breaks or control characters"
        if len(self.title) > 200:
            errors["title"] = "Your job title must be 200 characters or fewer"
        elif _CONTROL.search(self.title):
            errors["title"] = "Enter your job title without line breaks or control characters"
        if not self.address:
            errors["address"] = "Enter your email address"
        elif len(self.address) > 254:
            errors["address"] = "Enter an email address of 254 characters or fewer"
        return errors


def member_count(session: Session, mlist: MailingList) -> int:
    stmt = select(func.count()).where(Member.list_id == mlist.id, Member.role == Role.MEMBER)
    return int(session.scalar(stmt) or 0)


def count_phrase(count: int) -> str:
    """'Join 1,493 community members', as the community's own page puts it."""
    if count == 0:
        return "Be the first community member to join"
    return f"Join {count:,} community member{'' if count == 1 else 's'}"


def public_list(session: Session, name: str) -> MailingList | None:
    if not _LIST_NAME.match(name):
        return None
    mlist = get_list(session, name)
    return mlist if mlist is not None and mlist.public else None


def list_not_found(name: str) -> Page:
    return message(
        404,
        "List not found",
        f"There is no public mailing list named “{name[:64]}” on this site.",
        next_steps=[Link("See all mailing lists", "/lists")],
    )


def lists_page(web: Web) -> Page:
    with web.factory() as session:  # reads only: never committed
        counts = dict(
            session.execute(
                select(Member.list_id, func.count())
                .where(Member.role == Role.MEMBER)
                .group_by(Member.list_id)
            ).all()
        )
        rows = [
            {
                "name": mlist.name,
                "display_name": mlist.display_name,
                "description": mlist.description,
                "count_phrase": count_phrase(int(counts.get(mlist.id, 0))),
            }
            for mlist in session.scalars(
                select(MailingList).where(MailingList.public.is_(True)).order_by(MailingList.name)
            )
        ]
    return Page("web/lists.html", 200, {"title": "Mailing lists", "lists": rows})


def foia_paragraphs(web: Web, view: dict[str, str]) -> list[str]:
    """The FOIA notice from the same template as the mail footer, as paragraphs."""
    text = web.templates.render("_foia.txt.j2", list=view)
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def list_page(web: Web, name: str) -> Page:
    with web.factory() as session:  # reads only: never committed
        mlist = public_list(session, name)
        if mlist is None:
            return list_not_found(name)
        return _list_page(web, session, mlist, JoinForm(), {}, 200)


def _list_page(
    web: Web,
    session: Session,
    mlist: MailingList,
    form: JoinForm,
    errors: dict[str, str],
    status: int,
) -> Page:
    view = notices.list_view(web.context(session, now=utcnow(), source=""), mlist)
    return Page(
        "web/list.html",
        status,
        {
            "title": ("Error: " if errors else "") + f"{mlist.display_name} mailing list",
            "list": view,
            "count_phrase": count_phrase(member_count(session, mlist)),
            "eligibility": view["eligibility"],
            "foia": foia_paragraphs(web, view),
            "form": asdict(form),
            "errors": errors,
        },
    )


def _check_mail(mlist: MailingList, address: str) -> Page:
    return message(
        200,
        "Check your mail",
        f"We have sent a message to {address} about joining {mlist.display_name}.",
        "Follow the instructions in that message. The link to confirm that you want to "
        f"join works for {mlist.confirm_expiry_hours} hours; until you confirm, nothing "
        "changes.",
        "If nothing arrives within a few minutes, look in your junk or spam folder.",
        next_steps=[Link(f"Back to {mlist.display_name}", f"/lists/{mlist.name}")],
    )


def join(web: Web, name: str, form: JoinForm, client: str, now: datetime | None = None) -> Page:
    """Start a web join: validate, limit, then the same double opt-in as email."""
    now = now or utcnow()
    form = form.cleaned()
    errors = form.errors()
    with db.session_scope(web.factory) as session:
        mlist = public_list(session, name)
        if mlist is None:
            return list_not_found(name)
        if errors:
            return _list_page(web, session, mlist, form, errors, 400)
        if not ratelimit.allow(
            session,
            f"web-join-from:{client_key(client)}",
            web.joins_per_client_per_hour,
            timedelta(hours=1),
            now,
        ):
            return message(
                429,
                "Too many requests",
                "We have had too many join requests from your network in the last hour.",
                "Please try again later, or join by email: send a message to "
                f"{mlist.address('-join')}.",
                next_steps=[Link(f"Back to {mlist.display_name}", f"/lists/{mlist.name}")],
                headers={"Retry-After": "3600"},
            )
        limits = web.settings.limits
        budget_key = f"confirm-to:{roster.address_key(form.address)}"
        if (
            ratelimit.count(session, budget_key, timedelta(days=1), now)
            >= limits.confirmations_per_address_per_day
        ):
            text = (
                f"Too many confirmation requests for {form.address} today; "
                "please try again tomorrow."
            )
            return _list_page(web, session, mlist, form, {"address": text}, 429)
        ctx = web.context(session, now=now, source=client)
        requester = Requester(address=form.address, name=form.name, title=form.title)
        outcome = request_join(ctx, web_actor(), mlist, requester)
        if outcome.status == Status.PENDING:
            return _check_mail(mlist, form.address)
        if outcome.status == Status.INFO:
            # Already a member: tell the address itself, by mail, as the email path does.
            if ratelimit.allow(
                session,
                budget_key,
                limits.confirmations_per_address_per_day,
                timedelta(days=1),
                now,
            ):
                notices.send_notice(ctx, "already_member.txt.j2", form.address, mlist=mlist)
            return _check_mail(mlist, form.address)
        return _list_page(web, session, mlist, form, {"address": outcome.text}, 422)
