# SPDX-License-Identifier: Apache-2.0
"""Who may read a list's archive: the one check every archive page and download makes.

Input: the list and who is viewing (their proved address, or None when
nobody is signed in). Output: `READ`, `SIGN_IN` (a members-only archive and
nobody signed in: send them to sign in) or `HIDDEN` (answer 404, as if the
list had no archive, so a non-member learns nothing of its posts). The web
channel decides who is viewing; this knows nothing of HTTP.
"""

from __future__ import annotations

import enum

from sqlalchemy.orm import Session

from listserv import roster
from listserv.models import ArchiveAccess, MailingList, Role


class Access(enum.StrEnum):
    READ = "read"
    SIGN_IN = "sign-in"
    HIDDEN = "hidden"


_STAFF = frozenset({Role.OWNER, Role.MODERATOR})


def archive_access(session: Session, mlist: MailingList, viewer: str | None) -> Access:
    """Whether `viewer` may read the archive of `mlist` (`archive_access` of the list)."""
    setting = ArchiveAccess(mlist.archive_access)
    if setting is ArchiveAccess.PUBLIC:
        return Access.READ
    if viewer is None:
        return Access.SIGN_IN
    roles = roster.roles_of(session, mlist, viewer)
    if setting is ArchiveAccess.OWNERS:
        return Access.READ if roles & _STAFF else Access.HIDDEN
    return Access.READ if roles else Access.HIDDEN
