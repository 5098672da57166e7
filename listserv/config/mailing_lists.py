# SPDX-License-Identifier: Apache-2.0
"""One `[[lists]]` table: a mailing list's name, people, phrases and policies.

The name becomes the list's addresses (`NAME@`, `NAME-request@`...), so it is
checked against the characters and suffixes that address parsing reserves;
owners and moderators must be plain addresses because they receive mail.
"""

from __future__ import annotations

from typing import Any

from listserv.addresses import RESERVED_SUFFIXES
from listserv.config.settings import (
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
from listserv.config.values import ConfigError, check_unknown, choice, get, positive, strings

_LIST_KEYS = set(ListSettings.__dataclass_fields__)


def _hour(value: int, key: str) -> int:
    if not 0 <= value <= 23:
        raise ConfigError(key, "must be an hour from 0 to 23 (UTC)")
    return value


def list_settings(raw: Any, index: int) -> ListSettings:
    """The `index`-th `[[lists]]` table, validated; errors name `lists[index].key`."""
    where = f"lists[{index}]."
    if not isinstance(raw, dict):
        raise ConfigError(f"lists[{index}]", "must be a table")
    check_unknown(raw, _LIST_KEYS, where)
    name = get(raw, "name", where, str, "").strip().lower()
    if not name:
        raise ConfigError(f"{where}name", "is required")
    if not all(c.isalnum() or c in "-_." for c in name) or not name[0].isalnum():
        raise ConfigError(f"{where}name", "may hold only letters, digits, '-', '_' and '.'")
    if any(name.endswith(suffix) for suffix in RESERVED_SUFFIXES):
        raise ConfigError(f"{where}name", "must not end with a reserved suffix such as -request")
    suffixes = tuple(s.lower().lstrip(".") for s in strings(raw, "eligible_domains", where))
    settings = ListSettings(
        name=name,
        display_name=get(raw, "display_name", where, str, name.upper()).strip() or name.upper(),
        description=get(raw, "description", where, str, ""),
        owners=tuple(a.lower() for a in strings(raw, "owners", where)),
        moderators=tuple(a.lower() for a in strings(raw, "moderators", where)),
        join_phrases=strings(raw, "join_phrases", where),
        leave_phrases=strings(raw, "leave_phrases", where),
        eligible_domains=suffixes if "eligible_domains" in raw else ("gov", "mil"),
        allowed_addresses=tuple(a.lower() for a in strings(raw, "allowed_addresses", where)),
        allowed_domains=tuple(
            d.lower().lstrip(".") for d in strings(raw, "allowed_domains", where)
        ),
        ineligible_policy=choice(raw, "ineligible_policy", where, INELIGIBLE_POLICIES),
        confirm_expiry_hours=positive(
            get(raw, "confirm_expiry_hours", where, int, 72), f"{where}confirm_expiry_hours"
        ),
        subject_prefix=get(raw, "subject_prefix", where, str, ""),
        non_member_action=choice(raw, "non_member_action", where, NON_MEMBER_ACTIONS),
        moderated=get(raw, "moderated", where, bool, False),
        announce_only=get(raw, "announce_only", where, bool, False),
        max_message_size=get(raw, "max_message_size", where, int, 0),
        dmarc_mitigation=choice(raw, "dmarc_mitigation", where, DMARC_MITIGATIONS),
        original_sender_header=choice(
            raw, "original_sender_header", where, ORIGINAL_SENDER_HEADERS
        ),
        delivery_style=choice(raw, "delivery_style", where, DELIVERY_STYLES),
        review_policy=choice(raw, "review_policy", where, REVIEW_POLICIES),
        notify_owners=choice(raw, "notify_owners", where, NOTIFY_OWNERS),
        archive_access=choice(raw, "archive_access", where, ARCHIVE_ACCESS),
        digest_schedule=choice(raw, "digest_schedule", where, DIGEST_SCHEDULES),
        digest_hour=_hour(get(raw, "digest_hour", where, int, 0), f"{where}digest_hour"),
        digest_size_kb=get(raw, "digest_size_kb", where, int, 0),
        public=get(raw, "public", where, bool, True),
        retention_days=get(raw, "retention_days", where, int, 0),
        bounce_score_threshold=get(raw, "bounce_score_threshold", where, float, 5.0),
        bounce_stale_after_days=get(raw, "bounce_stale_after_days", where, int, 7),
        bounce_warnings=get(raw, "bounce_warnings", where, int, 3),
        bounce_warning_interval_days=get(raw, "bounce_warning_interval_days", where, int, 7),
        bounce_temporary_score=get(raw, "bounce_temporary_score", where, float, 0.5),
        bounce_probe=get(raw, "bounce_probe", where, bool, False),
        bounce_forward_unrecognised=get(raw, "bounce_forward_unrecognised", where, bool, True),
    )
    for key, addresses in (("owners", settings.owners), ("moderators", settings.moderators)):
        for address in addresses:
            if "@" not in address or any(c in address for c in "\r\n <>"):
                raise ConfigError(f"{where}{key}", f"{address!r} is not an email address")
    return settings
