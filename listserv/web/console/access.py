# SPDX-License-Identifier: Apache-2.0
"""Who sees which console page: enforced on the server for every request.

The level a person holds on a list comes from `acts.permissions.level_on`,
the same rule the acts apply. A page they may not see answers 404, as if the
list were not there: a member learns nothing of the console, and the owner
of one list nothing of another. Moderators see held posts and requests only.
The acts check again when anything is changed. `list_page` gives every page
of one list the list and the level, so each shows the tabs that level may use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from listserv.acts.permissions import Need, level_on
from listserv.lists import all_lists, get_list
from listserv.models import MailingList
from listserv.web.pages import Page
from listserv.web.signin.pages import console_page
from listserv.web.signin.visitor import Visitor


class NotVisible(Exception):
    """The page does not exist for this person (answered with 404)."""


@dataclass(frozen=True)
class ListAccess:
    mlist: MailingList
    level: Need

    @property
    def manages(self) -> bool:
        return self.level >= Need.MANAGE


def access(session: Session, visitor: Visitor, name: str, need: Need) -> ListAccess:
    """The list and the visitor's level on it, or NotVisible."""
    mlist = get_list(session, name.lower()) if len(name) <= 64 else None
    if mlist is None:
        raise NotVisible(name)
    level = level_on(session, visitor.actor(), mlist)
    if level is None or level < need:
        raise NotVisible(name)
    return ListAccess(mlist, level)


def visible_lists(session: Session, visitor: Visitor) -> list[ListAccess]:
    """Every list the visitor moderates or manages, by name."""
    found = []
    actor = visitor.actor()
    for mlist in all_lists(session):
        level = level_on(session, actor, mlist)
        if level is not None and level >= Need.MODERATE:
            found.append(ListAccess(mlist, level))
    return found


def list_page(
    template: str,
    visitor: Visitor,
    found: ListAccess,
    title: str,
    *,
    status: int = 200,
    notice: str = "",
    errors: dict[str, str] | None = None,
    **context: Any,
) -> Page:
    """A console page of one list, titled "`title` – the list's name"."""
    return console_page(
        template,
        visitor,
        status,
        title=f"{title} – {found.mlist.display_name}",
        list=found.mlist,
        access=found,
        notice=notice,
        errors=errors or {},
        **context,
    )
