# SPDX-License-Identifier: Apache-2.0
"""Judging an import: every record sorted into added, already, duplicate or refused.

Nothing in the file is trusted: every address goes through the list's
eligibility rule and the bans. `plan_import` sorts each record into exactly
one of added / already a member / duplicate in the file / refused (with its
reason), so the counts always add up to the records read; the import act
then writes the plan with `add_members_bulk` in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class ImportPlan:
    format: str
    records: int = 0
    ignored: int = 0  # the framing lines of a LISTSERV REVIEW
    to_add: list[NewMember] = field(default_factory=list)
    already: list[Problem] = field(default_factory=list)
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
    existing: set[str],
    bans: Sequence[Matcher] = (),
    force: bool = False,
    ignored: int = 0,
    progress: Callable[[int], None] | None = None,
) -> ImportPlan:
    """Sort every record into added / already / duplicate / refused.

    `existing` holds the lookup keys of the list's current members. With
    `force`, addresses outside the eligibility rule are added anyway (as
    `members add --force` does); invalid and banned addresses never are.
    """
    plan = ImportPlan(format=fmt, ignored=ignored)
    checker = AddressChecker(rule, label)
    seen: dict[str, int] = {}
    for count, entry in enumerate(entries, start=1):
        if progress is not None and count % 1000 == 0:
            progress(1000)
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
        if first is not None:
            plan.duplicates.append(
                Problem(entry.line, shown, f"same address as line {first}", entry.address)
            )
            continue
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
        if key in existing:
            plan.already.append(Problem(entry.line, shown, "already a member", entry.address))
            continue
        stored = _stored_address(entry.address)
        plan.to_add.append(
            NewMember(stored, stored if stored == key else key, entry.name[:200], entry.title[:200])
        )
    if progress is not None:
        progress(plan.records % 1000)
    return plan
