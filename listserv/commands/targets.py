# SPDX-License-Identifier: Apache-2.0
"""What owner commands share: the list a command names, its words, dates, refusals.

At the site address the list is named first (LISTSERV syntax: `ADD SM-COP
jane@agency.gov Jane Doe`); at `LIST-request@` it is implied (`ADD
jane@agency.gov Jane Doe`). A refusal from an act becomes the reply's line
in the act's own words.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from listserv import lists
from listserv.acts.errors import ActError, Invalid
from listserv.commands.proof import hidden, no_such_list
from listserv.commands.request import CommandRequest
from listserv.models import MailingList
from listserv.outcomes import Outcome

_RELATIVE = re.compile(r"^(\d{1,4})([hdw])$", re.IGNORECASE)


def target(
    request: CommandRequest, args: list[str], word: str, usage: str
) -> tuple[MailingList, list[str]] | Outcome:
    """The list a command acts on and its remaining words, or the refusal to answer."""
    if request.site:
        if not args:
            return Outcome.error(f"Name the list: {usage}")
        name, rest = args[0], args[1:]
        mlist = lists.get_list(request.ctx.session, name)
    else:
        mlist, rest = request.mlist, args
        name = mlist.name if mlist is not None else ""
    if mlist is None or hidden(request, mlist):
        return no_such_list(word, name)
    return mlist, rest


def site_line(word: str, mlist: MailingList, rest: list[str]) -> str:
    """The command in site syntax, as stored for confirmation and replayed."""
    return " ".join([word.upper(), mlist.name.upper(), *rest])


def bare_address(text: str) -> str:
    return text.strip().strip("<>").strip()


def usage_error(usage: str) -> Outcome:
    return Outcome.error(f"Usage: {usage}")


def refusal(error: ActError) -> Outcome:
    """An act's refusal as a reply line: "already" is news, not a failure."""
    if error.code == "already-member":
        return Outcome.info(error.message)
    if isinstance(error, Invalid) and error.field == "until":
        return Outcome.error(f"{error.message}.")
    return Outcome.refused(error.message)


def parse_until(word: str, now: datetime) -> datetime | None:
    """An end date: `2025-07-01` (00:00 UTC that day), `2025-07-01T12:00`, or `14d`/`2w`/`12h`."""
    relative = _RELATIVE.match(word)
    if relative:
        count, unit = int(relative.group(1)), relative.group(2).lower()
        return now + {"h": timedelta(hours=count), "d": timedelta(days=count)}.get(
            unit, timedelta(weeks=count)
        )
    try:
        when = datetime.fromisoformat(word)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def until_and_note(
    words: list[str], now: datetime, *, required: bool
) -> tuple[datetime | None, str] | Outcome:
    """`[until] DATE [note…]` → (end, note); DATE may be left out when not required."""
    rest = list(words)
    if rest and rest[0].lower() == "until":
        rest = rest[1:]
        if not rest:
            return Outcome.error("UNTIL needs a date: 2025-07-01, 2025-07-01T12:00 or 14d.")
    until = parse_until(rest[0], now) if rest else None
    if until is not None:
        rest = rest[1:]
    elif required or (words and words[0].lower() == "until"):
        shown = rest[0] if rest else ""
        return Outcome.error(
            f"{shown!r} is not a date; write 2025-07-01, 2025-07-01T12:00 or 14d."
            if shown
            else "Give the end date: UNTIL 2025-07-01 (or 14d)."
        )
    return until, " ".join(rest)
