# SPDX-License-Identifier: Apache-2.0
"""Bans: addresses and patterns that may neither join nor post, per list or site-wide.

Input is a pattern typed by an owner (CLI, email command, web) and the list
it applies to (None: every list on the site). A pattern is one of

- an exact address (`jane@example.com`), stored as its lookup key, so case
  and Unicode forms of the same address all match;
- a shell glob (`*@spam.example`, `*.spam.example`), stored lower-cased and
  matched with `fnmatch` against the lookup key;
- a regular expression starting with `^` (`^spam[0-9]+@`), matched with
  `re.match`, ignoring case — the same three forms Mailman accepts.

Patterns are validated before they are stored, so a typo cannot become a ban
that silently matches everyone or nothing. Adding and lifting bans are acts
(`acts/bans.py`); this module is the matching every stage shares.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from listserv import roster
from listserv.context import Context
from listserv.eligibility import InvalidAddress, normalise_address
from listserv.models import Ban, MailingList, Member

GLOB_CHARACTERS = frozenset("*?[")
MAX_PATTERN = 320


class BanError(ValueError):
    """A pattern that cannot be stored (invalid, too broad, or already there)."""


@dataclass(frozen=True)
class Matcher:
    """One compiled pattern; `matches` takes an address's lookup key."""

    pattern: str
    regex: re.Pattern[str] | None

    def matches(self, key: str) -> bool:
        if self.regex is not None:
            return self.regex.match(key) is not None
        if self.pattern.startswith("^"):
            return False  # a stored regex that no longer compiles matches nobody
        return fnmatch.fnmatchcase(key, self.pattern)


def pattern_kind(pattern: str) -> str:
    """`regex`, `glob` or `address`: how a stored pattern is matched."""
    if pattern.startswith("^"):
        return "regex"
    if any(c in GLOB_CHARACTERS for c in pattern):
        return "glob"
    return "address"


def compile_pattern(pattern: str) -> Matcher:
    """A matcher for a stored pattern (never raises: bad stored regexes match nobody)."""
    if pattern.startswith("^"):
        try:
            return Matcher(pattern, re.compile(pattern, re.IGNORECASE))
        except re.error:
            return Matcher(pattern, None)
    return Matcher(pattern.strip().lower(), None)


def normalise_pattern(pattern: str) -> str:
    """The stored form of a typed pattern; raises BanError with the reason it is unusable."""
    text = pattern.strip()
    if not text:
        raise BanError("a ban needs an address or a pattern")
    if len(text) > MAX_PATTERN:
        raise BanError(f"a ban pattern may be at most {MAX_PATTERN} characters")
    if any(c in text for c in "\r\n\t\x00"):
        raise BanError("a ban pattern may not contain control characters")
    kind = pattern_kind(text)
    if kind == "regex":
        try:
            regex = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise BanError(f"{text!r} is not a valid regular expression: {exc}") from None
        if regex.match("") is not None:
            raise BanError(f"{text!r} matches an empty address, so it would ban everyone")
        return text
    if kind == "glob":
        glob = text.lower()
        if " " in glob:
            raise BanError(f"{text!r} contains a space; no address does")
        if not (set(glob) - set("*?@.")):
            raise BanError(f"{text!r} would ban everyone")
        return glob
    try:
        return normalise_address(text)
    except InvalidAddress as exc:
        hint = ""
        if "@" not in text:
            hint = f" (for a whole domain, ban *@{text.lstrip('@')})"
        raise BanError(f"{text!r} is not an address or a pattern: {exc}{hint}") from None


def _scope(mlist: MailingList | None) -> Any:
    return Ban.list_id.is_(None) if mlist is None else Ban.list_id == mlist.id


def find_ban(session: Session, mlist: MailingList | None, pattern: str) -> Ban | None:
    return session.scalar(select(Ban).where(_scope(mlist), Ban.pattern == pattern))


def list_bans(session: Session, mlist: MailingList | None) -> Sequence[Ban]:
    """The bans of one list (not the site's), or the site-wide bans for None."""
    return session.scalars(select(Ban).where(_scope(mlist)).order_by(Ban.pattern)).all()


def matchers(session: Session, mlist: MailingList | None) -> list[Matcher]:
    """Compiled bans that apply to a list: its own and the site's."""
    clause: ColumnElement[bool] = Ban.list_id.is_(None)
    if mlist is not None:
        clause = clause | (Ban.list_id == mlist.id)
    return [compile_pattern(p) for p in session.scalars(select(Ban.pattern).where(clause))]


def is_banned(ctx: Context, mlist: MailingList | None, address: str) -> bool:
    """Whether a list's or the site's bans cover an address (None: site bans only)."""
    key = roster.address_key(address)
    scope = None if mlist is None else mlist.id
    tests = ctx.memo.bans.get(scope)
    if tests is None:
        tests = ctx.memo.bans[scope] = [m.matches for m in matchers(ctx.session, mlist)]
    return any(test(key) for test in tests)


def members_matching(session: Session, mlist: MailingList | None, pattern: str) -> list[Member]:
    """Current roster rows a stored pattern covers (on one list, or on every list)."""
    matcher = compile_pattern(pattern)
    stmt = select(Member.id, Member.address_key)
    if mlist is not None:
        stmt = stmt.where(Member.list_id == mlist.id)
    if pattern_kind(pattern) == "address":
        stmt = stmt.where(Member.address_key == pattern)
    ids = [row.id for row in session.execute(stmt) if matcher.matches(row.address_key)]
    if not ids:
        return []
    return list(
        session.scalars(
            select(Member).where(Member.id.in_(ids)).order_by(Member.list_id, Member.address_key)
        )
    )
