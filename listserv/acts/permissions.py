# SPDX-License-Identifier: Apache-2.0
"""What an actor may do on a list: checked once, by the act, whatever the channel.

Three levels, as Mailman and LISTSERV have them: moderators decide held posts
and subscription requests; owners also run the roster, bans and settings;
site administrators also create and delete lists and set site-wide bans.
A member may always act on their own membership (leave, delivery), because
the channel has proved they hold the address.

Where the role comes from: a site administrator (the host operator, the
service, `[site] admins`, a site-admin token) may do everything; an API token
is limited to its own role and lists; anyone else has the roles of their
address on the list's roster.
"""

from __future__ import annotations

import enum

from sqlalchemy.orm import Session

from listserv import roster
from listserv.actors import Actor
from listserv.acts.errors import Forbidden, NotFound
from listserv.models import MailingList, Role


class Need(enum.IntEnum):
    """The least role an act needs, in increasing order."""

    READ = 0  # see the roster, the queue, the audit log (API reader tokens)
    MODERATE = 1  # decide held posts and subscription requests
    MANAGE = 2  # the roster, bans, conduct measures, settings
    ADMINISTER = 3  # create or delete lists, site-wide bans


_LEVEL = {Role.MODERATOR: Need.MODERATE, Role.OWNER: Need.MANAGE}


def level_on(session: Session, actor: Actor, mlist: MailingList | None) -> Need | None:
    """The highest level the actor holds on a list (None: not even READ)."""
    if actor.site_admin:
        return Need.ADMINISTER
    if mlist is None:
        return None
    if actor.scope is not None:
        if not actor.scope.covers(mlist.name):
            return None
        return _LEVEL.get(actor.scope.role, Need.READ) if actor.scope.role else Need.READ
    roles = roster.roles_of(session, mlist, actor.address)
    levels = [_LEVEL[role] for role in roles if role in _LEVEL]
    return max(levels) if levels else None


def require(session: Session, actor: Actor, mlist: MailingList | None, need: Need) -> None:
    """Raise unless the actor holds `need` on the list (None: a site-wide act).

    A token whose scope leaves the list out is told the list is not there, as
    if it did not exist; anyone else who falls short is told what is missing.
    """
    level = level_on(session, actor, mlist)
    if level is not None and level >= need:
        return
    if mlist is not None and actor.scope is not None and not actor.scope.covers(mlist.name):
        raise NotFound(f"There is no list named {mlist.name} here.")
    where = mlist.display_name if mlist is not None else "this site"
    who = {
        Need.READ: "its owners, moderators and readers",
        Need.MODERATE: "its owners and moderators",
        Need.MANAGE: "its owners",
        Need.ADMINISTER: "the site administrators",
    }[need]
    raise Forbidden(f"Only {who} may do that on {where}.")


def require_self_or(
    session: Session, actor: Actor, mlist: MailingList, address: str, need: Need
) -> None:
    """A member acting on their own membership, or someone holding `need` on the list."""
    if actor.scope is None and roster.address_key(actor.address) == roster.address_key(address):
        return
    require(session, actor, mlist, need)
