# SPDX-License-Identifier: Apache-2.0
"""Judging an import: every record sorted into added, already, duplicate or refused.

Nothing in the file is trusted: every address goes through the list's
eligibility rule and the bans. `plan_import` sorts each record into exactly
one of added / already a member / duplicate in the file / refused (with its
reason), so the counts always add up to the records read; the import act
then writes the plan with `add_members_bulk` in one transaction.
"""

from __future__ import annotations

import pickle
import re
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from listserv.bans import Matcher
from listserv.eligibility import (
    EligibilityRule,
    Eligible,
    Ineligible,
    InvalidAddress,
    check_address,
    normalise_address,
)
from listserv.roster.bulk import NewMember
from listserv.roster.files import Entry

# An ASCII dot-atom address whose validity depends only on its domain (see AddressChecker).
_SIMPLE = re.compile(
    r"^(?P<local>[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)$"
)


@dataclass(slots=True)
class Problem:
    line: int
    text: str
    reason: str
    address: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "text": self.text,
            "address": self.address,
            "reason": self.reason,
        }


class NewMembers:
    """The members an import will add, kept in a temporary file, not in memory.

    A 1,000,000-line import would otherwise hold a million records until they
    are written; here they go to disk in pickled batches as they are judged and
    are read back, in order, as many times as needed.
    """

    _BATCH = 5000

    def __init__(self, members: Iterable[NewMember] = ()) -> None:
        self._file: IO[bytes] | None = None
        self._pending: list[tuple[str, str, str, str]] = []
        self._count = 0
        for member in members:
            self.append(member)

    def append(self, member: NewMember) -> None:
        key = "" if member.key == member.address else member.key
        self._pending.append((member.address, key, member.name, member.title))
        self._count += 1
        if len(self._pending) >= self._BATCH:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the plan)
        self._file.seek(0, 2)
        pickle.dump(self._pending, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._pending = []

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[NewMember]:
        if self._file is not None:
            self._file.seek(0)
            end = self._file.seek(0, 2)
            self._file.seek(0)
            position = 0
            while position < end:
                batch = pickle.load(self._file)
                position = self._file.tell()
                yield from (NewMember(a, k or a, n, t) for a, k, n, t in batch)
                self._file.seek(position)
        yield from (NewMember(a, k or a, n, t) for a, k, n, t in list(self._pending))

    def without(self, keys: set[str]) -> tuple[NewMembers, list[NewMember]]:
        """(these members less those whose key is in `keys`, the ones left out)."""
        kept, left = NewMembers(), []
        for member in self:
            if member.key in keys:
                left.append(member)
            else:
                kept.append(member)
        return kept, left

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class LineProblems:
    """Problems that share one reason, kept as line numbers (4 bytes each).

    Re-importing a 1,000,000-line roster finds a million "already a member"
    lines; their count is reported, never their text, so only the line is kept.
    Problems with their own text (`append`) are kept whole.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._lines = array("L")
        self._others: list[Problem] = []

    def add_line(self, line: int) -> None:
        self._lines.append(line)

    def append(self, problem: Problem) -> None:
        self._others.append(problem)

    def extend(self, problems: Iterable[Problem]) -> None:
        self._others.extend(problems)

    def __len__(self) -> int:
        return len(self._lines) + len(self._others)

    def __iter__(self) -> Iterator[Problem]:
        yield from (Problem(line, "", self.reason) for line in self._lines)
        yield from self._others


@dataclass
class ImportPlan:
    format: str
    records: int = 0
    ignored: int = 0  # the framing lines of a LISTSERV REVIEW
    to_add: NewMembers = field(default_factory=NewMembers)
    already: LineProblems = field(default_factory=lambda: LineProblems("already a member"))
    duplicates: list[Problem] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "records": self.records,
            "added": len(self.to_add),
            "already_members": len(self.already),
            "duplicates": len(self.duplicates),
            "refused": len(self.refused),
            "ignored_lines": self.ignored,
        }


class AddressChecker:
    """`check_address` with the domain verdict cached, for 100,000-line imports.

    email-validator costs ~150 µs an address, nearly all of it on the domain.
    For a plain ASCII dot-atom address (the regex above) validity and
    eligibility depend only on the domain once length limits hold, so a
    domain found eligible — under the rule without its per-address
    exceptions — is remembered; every other address (Unicode, quoted, odd,
    or at a domain not eligible) takes the full `check_address` path, which
    also gives the exact refusal reason.
    """

    def __init__(self, rule: EligibilityRule, label: str) -> None:
        self.rule = rule
        self.label = label
        self._domain_rule = EligibilityRule(
            suffixes=rule.suffixes, allowed_domains=rule.allowed_domains
        )
        self._domains: dict[str, bool] = {}

    def check(self, address: str) -> Eligible | Ineligible:
        match = _SIMPLE.match(address)
        if match is not None and len(address) <= 254 and len(match["local"]) <= 64:
            domain = match["domain"].lower()
            eligible = self._domains.get(domain)
            if eligible is None:
                verdict = check_address(f"x@{domain}", self._domain_rule, self.label)
                eligible = isinstance(verdict, Eligible) and verdict.domain == domain
                self._domains[domain] = eligible
            if eligible:
                return Eligible(address=f"{match['local'].lower()}@{domain}", domain=domain)
        return check_address(address, self.rule, self.label)


def _key_of(address: str) -> str | None:
    try:
        return normalise_address(address)
    except InvalidAddress:
        return None


def _stored_address(address: str) -> str:
    """The address as given, with the domain lower-cased (LISTSERV upper-cases it)."""
    local, at, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if at else address.strip()


def plan_import(
    entries: Iterable[Entry],
    *,
    fmt: str,
    rule: EligibilityRule,
    label: str,
    existing: Iterable[str],
    bans: Sequence[Matcher] = (),
    force: bool = False,
    ignored: int = 0,
    progress: Callable[[int], None] | None = None,
) -> ImportPlan:
    """Sort every record into added / already / duplicate / refused.

    `existing` yields the lookup keys of the list's current members (read once,
    into the same table as the file's own keys, so a million of each cost one
    table; a `dict.fromkeys(keys, 0)` is taken as that table). With `force`, addresses outside the eligibility rule are added
    anyway (as `members add --force` does); invalid and banned addresses never
    are. `progress` is told the line reached, every 1000 records.
    """
    plan = ImportPlan(format=fmt, ignored=ignored)
    checker = AddressChecker(rule, label)
    # key → first line in the file; 0: a member; a dict given is used (and changed) in place
    seen: dict[str, int] = existing if isinstance(existing, dict) else dict.fromkeys(existing, 0)
    for count, entry in enumerate(entries, start=1):
        if progress is not None and count % 1000 == 0:
            progress(entry.line)
        plan.records += 1
        shown = entry.text if len(entry.text) <= 200 else entry.text[:199] + "…"

        def refuse(reason: str, entry: Entry = entry, shown: str = shown) -> None:
            plan.refused.append(Problem(entry.line, shown, reason, entry.address))

        if entry.role and entry.role != "member":
            refuse(f"role {entry.role}: owners and moderators are added with `listserv owners`")
            continue
        if not entry.address:
            refuse("no address on this line")
            continue
        verdict = checker.check(entry.address)
        if isinstance(verdict, Eligible):
            key = verdict.address
        elif verdict.code in ("domain-not-eligible", "non-ascii-domain"):
            key = _key_of(entry.address) or entry.address.lower()
        else:
            refuse(verdict.reason)
            continue
        first = seen.get(key)
        if first == 0:
            seen[key] = -entry.line  # a member: later lines with it are duplicates
        elif first is not None:
            plan.duplicates.append(
                Problem(entry.line, shown, f"same address as line {abs(first)}", entry.address)
            )
            continue
        else:
            seen[key] = entry.line
        if isinstance(verdict, Ineligible):
            if not force or verdict.code != "domain-not-eligible":
                hint = " (--force adds it anyway)" if verdict.code == "domain-not-eligible" else ""
                refuse(verdict.reason + hint)
                continue
        banned = next((m.pattern for m in bans if m.matches(key)), None)
        if banned is not None:
            refuse(f"banned ({banned})")
            continue
        if first == 0:
            plan.already.add_line(entry.line)
            continue
        stored = _stored_address(entry.address)
        plan.to_add.append(
            NewMember(stored, stored if stored == key else key, entry.name[:200], entry.title[:200])
        )
    return plan
