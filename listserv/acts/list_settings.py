# SPDX-License-Identifier: Apache-2.0
"""List settings as people type them: which keys may change, and each value checked.

`lists set KEY=VALUE`, the console's settings form and the API's PATCH all
send words; this turns them into column values with the same choices and
ranges as the configuration file, and refuses a bad one with the sentence
every channel shows (naming the key), before anything is changed.
"""

from __future__ import annotations

import json
from typing import Any

from listserv.acts.errors import Invalid
from listserv.config import (
    ARCHIVE_ACCESS,
    DELIVERY_STYLES,
    DIGEST_SCHEDULES,
    DMARC_MITIGATIONS,
    INELIGIBLE_POLICIES,
    NON_MEMBER_ACTIONS,
    NOTIFY_OWNERS,
    ORIGINAL_SENDER_HEADERS,
    REVIEW_POLICIES,
    ListSettings,
)
from listserv.lists import SYNCED_FIELDS

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
    "notify_owners": NOTIFY_OWNERS,
    "archive_access": ARCHIVE_ACCESS,
    "digest_schedule": DIGEST_SCHEDULES,
}
POSITIVE = frozenset({"confirm_expiry_hours"})
LOWER_CASE_LISTS = frozenset({"eligible_domains", "allowed_addresses", "allowed_domains"})
MANAGED_ELSEWHERE = {
    "owners": "owners are managed with `listserv owners add|remove`",
    "moderators": "moderators are managed with `listserv owners add --moderator`",
    "name": "a list cannot be renamed",
}


def parse_bool(text: str, key: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Invalid(f"{key} must be true or false, not {text!r}", field=key)


def settable_fields() -> tuple[str, ...]:
    return (*SYNCED_FIELDS, *STATE_FIELDS)


def kind_of(key: str) -> type:
    """The Python type of a setting's value (bool, int, float, tuple or str)."""
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
        raise Invalid(f"{key} may not contain line breaks", field=key)
    return text


def parse_setting(key: str, text: str) -> Any:
    """A `key=value` from the command line as the list column's value, validated."""
    if key in MANAGED_ELSEWHERE:
        raise Invalid(f"{key}: {MANAGED_ELSEWHERE[key]}", field=key)
    if key not in settable_fields():
        raise Invalid(
            f"{key} is not a list setting (one of: {', '.join(settable_fields())})", field=key
        )
    kind = kind_of(key)
    if kind is bool:
        return parse_bool(text, key)
    if kind is int:
        try:
            number = int(text.strip())
        except ValueError:
            raise Invalid(f"{key} must be a whole number, not {text!r}", field=key) from None
        if key == "digest_hour" and number > 23:
            raise Invalid("digest_hour must be an hour from 0 to 23 (UTC)", field=key)
        if number < 0 or (key in POSITIVE and number == 0):
            raise Invalid(
                f"{key} must be {'greater than zero' if key in POSITIVE else '0 or more'}",
                field=key,
            )
        return number
    if kind is float:
        try:
            real = float(text.strip())
        except ValueError:
            raise Invalid(f"{key} must be a number, not {text!r}", field=key) from None
        if real < 0:
            raise Invalid(f"{key} must be 0 or more", field=key)
        return real
    if kind is tuple:
        raw = text.strip()
        if raw.startswith("["):
            try:
                items = json.loads(raw)
            except json.JSONDecodeError:
                raise Invalid(
                    f"{key}: {text!r} is not a JSON array of strings", field=key
                ) from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise Invalid(f"{key}: {text!r} is not a JSON array of strings", field=key)
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
            raise Invalid(
                f"{key} must be one of {', '.join(CHOICES[key])}; got {value!r}", field=key
            )
    if key == "display_name" and not value:
        raise Invalid("display_name may not be empty", field=key)
    return value


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`key=value` words (all validated before anything is changed)."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not eq or not key:
            raise Invalid(f"{pair!r} is not key=value (e.g. retention_days=365)")
        changes[key] = parse_setting(key, value)
    return changes
