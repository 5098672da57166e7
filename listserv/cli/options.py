# SPDX-License-Identifier: Apache-2.0
"""Option types the administration commands share: dates, list settings, flags.

Dates on the command line are ISO 8601 (`2025-03-01`, `2025-03-01T14:30`,
`2025-03-01T14:30:00-05:00`, a trailing `Z`); without an offset they are
UTC, because the database and the audit log are. A date alone means its
midnight — or, for the end of a period (`--until 2025-03-31`), the end of
that day, so a records officer's "through March 31" includes March 31.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import typer

from listserv.cli.common import CLIError
from listserv.config import (
    DELIVERY_STYLES,
    DMARC_MITIGATIONS,
    INELIGIBLE_POLICIES,
    NON_MEMBER_ACTIONS,
    ORIGINAL_SENDER_HEADERS,
    REVIEW_POLICIES,
    ListSettings,
)
from listserv.lists import SYNCED_FIELDS

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (an array of objects).")]
ListArgument = Annotated[str, typer.Argument(metavar="LIST", help="The list's name.")]

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})

#: Settings `lists set` accepts beyond those the configuration file has.
STATE_FIELDS = ("legal_hold", "emergency_hold")

#: Settings whose value is one of a few words, as the configuration checks them.
CHOICES: dict[str, tuple[str, ...]] = {
    "non_member_action": NON_MEMBER_ACTIONS,
    "ineligible_policy": INELIGIBLE_POLICIES,
    "dmarc_mitigation": DMARC_MITIGATIONS,
    "original_sender_header": ORIGINAL_SENDER_HEADERS,
    "delivery_style": DELIVERY_STYLES,
    "review_policy": REVIEW_POLICIES,
}
POSITIVE = frozenset({"confirm_expiry_hours"})
LOWER_CASE_LISTS = frozenset({"eligible_domains", "allowed_addresses", "allowed_domains"})
MANAGED_ELSEWHERE = {
    "owners": "owners are managed with `listserv owners add|remove`",
    "moderators": "moderators are managed with `listserv owners add --moderator`",
    "name": "a list cannot be renamed",
}


def parse_when(text: str, *, end_of_day: bool = False, option: str = "date") -> datetime:
    """An ISO date or date-time as an aware UTC datetime (see the module docstring)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time(0), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise CLIError(
            f"{option}: {text!r} is not a date (use 2025-03-01 or 2025-03-01T14:30:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_bool(text: str, key: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CLIError(f"{key} must be true or false, not {text!r}")


def settable_fields() -> tuple[str, ...]:
    return (*SYNCED_FIELDS, *STATE_FIELDS)


def _kind(key: str) -> type:
    if key in STATE_FIELDS:
        return bool
    spec = ListSettings.__dataclass_fields__[key]
    default = spec.default
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, tuple):
        return tuple
    return str


def _no_controls(text: str, key: str) -> str:
    if any(c in text for c in "\r\n\x00"):
        raise CLIError(f"{key} may not contain line breaks")
    return text


def parse_setting(key: str, text: str) -> Any:
    """A `key=value` from the command line as the list column's value, validated."""
    if key in MANAGED_ELSEWHERE:
        raise CLIError(f"{key}: {MANAGED_ELSEWHERE[key]}")
    if key not in settable_fields():
        raise CLIError(f"{key} is not a list setting (one of: {', '.join(settable_fields())})")
    kind = _kind(key)
    if kind is bool:
        return parse_bool(text, key)
    if kind is int:
        try:
            number = int(text.strip())
        except ValueError:
            raise CLIError(f"{key} must be a whole number, not {text!r}") from None
        if number < 0 or (key in POSITIVE and number == 0):
            raise CLIError(
                f"{key} must be {'greater than zero' if key in POSITIVE else '0 or more'}"
            )
        return number
    if kind is float:
        try:
            real = float(text.strip())
        except ValueError:
            raise CLIError(f"{key} must be a number, not {text!r}") from None
        if real < 0:
            raise CLIError(f"{key} must be 0 or more")
        return real
    if kind is tuple:
        raw = text.strip()
        if raw.startswith("["):
            try:
                items = json.loads(raw)
            except json.JSONDecodeError:
                raise CLIError(f"{key}: {text!r} is not a JSON array of strings") from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise CLIError(f"{key}: {text!r} is not a JSON array of strings")
        else:
            items = raw.split(",") if raw else []
        values = [_no_controls(i.strip(), key) for i in items if i.strip()]
        if key in LOWER_CASE_LISTS:
            values = [
                v.lower().strip(".") if key != "allowed_addresses" else v.lower() for v in values
            ]
        return values
    value = _no_controls(text.strip(), key)
    if key in CHOICES:
        value = value.lower()
        if value not in CHOICES[key]:
            raise CLIError(f"{key} must be one of {', '.join(CHOICES[key])}; got {value!r}")
    if key == "display_name" and not value:
        raise CLIError("display_name may not be empty")
    return value


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`key=value` words (all validated before anything is changed)."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not eq or not key:
            raise CLIError(f"{pair!r} is not key=value (e.g. retention_days=365)")
        changes[key] = parse_setting(key, value)
    return changes
