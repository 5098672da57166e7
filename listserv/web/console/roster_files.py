# SPDX-License-Identifier: Apache-2.0
"""Roster files in the console: a CSV import with the CLI's report, and the CSV export.

The import is `acts.imports.import_members`, the same act as `listserv
members import`, so good lines are added and every refused line comes back
with its number and reason. Uploads larger than the site's
`max_message_size` are refused with 413 before they are parsed.
"""

from __future__ import annotations

import io

from sqlalchemy.orm import Session

from listserv.actors import Actor
from listserv.acts import imports
from listserv.acts.errors import Invalid
from listserv.context import Context
from listserv.models import MailingList
from listserv.roster.export import roster_rows, write_export
from listserv.roster.files import RosterFile, RosterFileError, decode
from listserv.roster.plan import ImportPlan


def import_file(
    ctx: Context, actor: Actor, mlist: MailingList, name: str, data: bytes, *, force: bool
) -> ImportPlan:
    if not data.strip():
        raise Invalid("Choose a file with at least one address in it.", field="file")
    try:
        source = RosterFile(decode(data))
    except RosterFileError as exc:
        raise Invalid(str(exc), field="file") from None
    options = imports.ImportOptions(force=force, label=name[:200])
    return imports.import_members(ctx, actor, mlist, source, options)


def export_csv(session: Session, mlist: MailingList) -> str:
    """The roster as `listserv members export` writes it."""
    out = io.StringIO()
    write_export(roster_rows(session, mlist.id), out)
    return out.getvalue()
