# SPDX-License-Identifier: Apache-2.0
"""One message at a list's ``-bounces`` address, read into a :class:`BounceReport`.

Order of work: auto-reply detection; our own RFC 3464 reading of any
delivery-status part; flufl.bounce's heuristic detectors for everything that is
not a DSN; finally the policy rule for every failure.
"""

from __future__ import annotations

import email
from email.policy import compat32

from listserv.dsn.autoreply import is_auto_reply
from listserv.dsn.heuristics import from_flufl
from listserv.dsn.policy import apply_policy
from listserv.dsn.report import BouncedRecipient, BounceKind, BounceReport
from listserv.dsn.rfc3464 import from_delivery_status
from listserv.dsn.text import explanatory_lines

_UNRECOGNISED = BounceReport(recipients=(), is_auto_reply=False, recognised=False)
_AUTO_REPLY = BounceReport(recipients=(), is_auto_reply=True, recognised=True)


def parse_bounce(raw: bytes) -> BounceReport:
    """Read one message from the bounces address; never raises for any input.

    Order: auto-reply detection (a DSN is a bounce whatever its Auto-Submitted
    says); RFC 3464 delivery-status parts, read here (``Action: delayed`` gives
    DELAYED, ``relayed``/``delivered``/``expanded`` are ignored); flufl.bounce's
    detectors for non-standard formats; then the policy rule for every failure.
    """
    try:
        return _parse_bounce(raw)
    except Exception:
        # Anything the email package or a heuristic chokes on is, by definition, not understood.
        return _UNRECOGNISED


def _parse_bounce(raw: bytes) -> BounceReport:
    if not isinstance(raw, bytes | bytearray | memoryview):
        return _UNRECOGNISED
    msg = email.message_from_bytes(bytes(raw), policy=compat32)
    if is_auto_reply(msg):
        return _AUTO_REPLY
    lines = explanatory_lines(msg)
    understood, recipients = from_delivery_status(msg, lines)
    if not understood:
        recipients = from_flufl(msg, lines)
        understood = bool(recipients)
    if not understood:
        return _UNRECOGNISED
    return BounceReport(
        recipients=tuple(apply_policy(r) for r in _dedupe(recipients)),
        is_auto_reply=False,
        recognised=True,
    )


def _dedupe(recipients: list[BouncedRecipient]) -> list[BouncedRecipient]:
    """One entry per address; a failure outranks a delay notice for the same address."""
    rank = {BounceKind.DELAYED: 0, BounceKind.TEMPORARY: 1}
    chosen: dict[str, BouncedRecipient] = {}
    for recipient in recipients:
        key = recipient.address.lower()
        current = chosen.get(key)
        if current is None or rank.get(recipient.kind, 2) > rank.get(current.kind, 2):
            chosen[key] = recipient
    return list(chosen.values())
