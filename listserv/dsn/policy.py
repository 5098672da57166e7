# SPDX-License-Identifier: Apache-2.0
"""Whose fault a failure is: the member's mailbox, or a refusal of our mail.

A refusal on policy grounds (DMARC, reputation, content; RFC 3463 x.7.x) says
nothing about the member's address, so it must never count towards disabling
them. The same rule classifies a relay's reply during our own delivery.
"""

from __future__ import annotations

import re
from dataclasses import replace

from listserv.dsn.report import BouncedRecipient, BounceKind
from listserv.dsn.text import (
    ENHANCED_ANYWHERE,
    REPLY_CODE,
    squash,
    status_anywhere,
    status_at_start,
)

# Security or policy status (RFC 3463 subject 7), in either class.
_POLICY_STATUS = re.compile(r"[45]\.7\.\d{1,3}$")
_POLICY_WORDS = re.compile(
    r"dmarc|\bdkim\b|\bspf\b|polic(?:y|ies)|spam|blocked|block ?list|black ?list"
    r"|reputation|content rejected|message content|unauthenticated",
    re.IGNORECASE,
)

# Statuses that name the recipient's own mailbox as the problem (bad mailbox, bad domain, not
# found, moved, disabled, full). Prose does not overrule them: a gateway called
# "spamfilter.agency.gov" saying 5.1.1 still means the address is dead.
_RECIPIENT_FAULT_DETAILS = frozenset({"1.1", "1.2", "1.3", "1.6", "1.10", "2.1", "2.2"})


def classify_smtp_reply(code: int, message: str) -> BounceKind | None:
    """Classify a relay's reply to one recipient during our own delivery.

    5xx is PERMANENT, or POLICY by the same rule bounces use; 2xx is None (accepted);
    anything else (4xx, or a code no relay should send) is TEMPORARY, so it is retried.
    """
    if 200 <= code < 300:
        return None
    if 500 <= code < 600:
        text = squash(message)
        status = status_at_start(text) or status_anywhere(text)
        return BounceKind.POLICY if is_policy(status, text) else BounceKind.PERMANENT
    return BounceKind.TEMPORARY


def apply_policy(recipient: BouncedRecipient) -> BouncedRecipient:
    """Failures caused by our mail rather than the member's mailbox become POLICY."""
    if recipient.kind not in (BounceKind.PERMANENT, BounceKind.TEMPORARY):
        return recipient
    if is_policy(recipient.status, recipient.diagnostic):
        return replace(recipient, kind=BounceKind.POLICY)
    return recipient


def is_policy(status: str | None, text: str) -> bool:
    """A security/policy status (x.7.x), or policy words unless the status blames the mailbox."""
    codes = [status] if status else []
    codes += ENHANCED_ANYWHERE.findall(text)
    if any(_POLICY_STATUS.match(code) for code in codes):
        return True
    if any(code.partition(".")[2] in _RECIPIENT_FAULT_DETAILS for code in codes):
        return False
    return bool(_POLICY_WORDS.search(text))


def is_transient(status: str | None, text: str) -> bool:
    if status is not None:
        return status.startswith("4")
    match = REPLY_CODE.search(text)
    return match is not None and match.group(1) == "4"
