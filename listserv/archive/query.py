# SPDX-License-Identifier: Apache-2.0
"""The archive's search syntax, read once into a `Query` both databases run alike.

    records schedule          both words (in subject, sender or body)
    "records schedule"        the phrase
    -instagram  -"old news"   without the word or phrase
    tiktok OR instagram       either (OR binds the terms either side of it)
    from:jane@agency.gov      posts from that address (from:agency.gov: from that domain)
    since:2026-03  until:2026-04-15   received in that period (until includes the day)

Words are the letters and digits of what was typed (`records-schedule` is the
phrase "records schedule"), so nothing typed reaches a database's own query
syntax. Pure: no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)
_DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")

#: Terms more than this are ignored (a query is typed by a person).
MAX_TERMS = 16


class QueryError(ValueError):
    """A search that cannot be run, with the sentence to show."""


@dataclass(frozen=True)
class Term:
    """A word or phrase: its words, lower-cased, in order."""

    words: tuple[str, ...]

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1


@dataclass
class Query:
    """All of `groups` (each group: any of its terms), none of `excluded`, and the filters."""

    groups: list[list[Term]] = field(default_factory=list)
    excluded: list[Term] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None  # exclusive

    @property
    def has_words(self) -> bool:
        return bool(self.groups)

    def words(self) -> list[str]:
        return [w for group in self.groups for term in group for w in term.words]


def _term(text: str) -> Term | None:
    words = tuple(w.casefold() for w in _WORD.findall(text))
    return Term(words[:8]) if words else None


def _date(value: str, key: str, *, end: bool) -> datetime:
    found = _DATE.match(value)
    if not found:
        raise QueryError(f"{key}: takes a date such as 2026-03 or 2026-03-15, not {value!r}")
    year, month, day = int(found[1]), int(found[2]), int(found[3] or 1)
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        raise QueryError(f"{key}:{value} is not a date") from None
    if not end:
        return start
    if found[3]:
        return start + timedelta(days=1)
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def parse_query(text: str) -> Query:
    """Read what a person typed; raises QueryError with the sentence to show."""
    query = Query()
    pending_or = False
    count = 0
    for match in _TOKEN.finditer(text[:1000]):
        negated, phrase, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None:
            if bare == "OR":
                pending_or = bool(query.groups)
                continue
            key, colon, value = bare.partition(":")
            key = key.lower()
            if colon and key == "from" and value:
                query.senders.append(value.casefold())
                continue
            if colon and key in ("since", "until") and value:
                when = _date(value, key, end=key == "until")
                if key == "since":
                    query.since = when
                else:
                    query.until = when
                continue
            negated = "-" if bare.startswith("-") and len(bare) > 1 else ""
            phrase = bare[1:] if negated else bare
        term = _term(phrase or "")
        if term is None or count >= MAX_TERMS:
            pending_or = False
            continue
        count += 1
        if negated:
            query.excluded.append(term)
        elif pending_or:
            query.groups[-1].append(term)
        else:
            query.groups.append([term])
        pending_or = False
    if not query.groups and (query.excluded or not query.senders):
        if query.excluded:
            raise QueryError("Add a word to search for, not only words to leave out.")
        raise QueryError("Type a word or a phrase to search for.")
    return query
