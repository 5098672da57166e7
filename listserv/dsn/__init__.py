# SPDX-License-Identifier: Apache-2.0
"""Recognise bounce messages: who failed, how badly, and whether it was our fault.

Job: turn one message that arrived at a list's ``-bounces`` address into a
:class:`BounceReport` the bounce-processing stage can act on: which recipients
failed, whether each failure is permanent, temporary, merely a delay notice, or
a rejection of *our* mail on policy grounds (DMARC, reputation, content), and
whether the message was an out-of-office reply rather than a bounce at all.

Input: the raw bytes as received, any bytes at all. Nothing here does I/O,
touches the database or knows about asyncio; :func:`parse_bounce` never raises.

Output: a frozen :class:`BounceReport`. ``recognised`` is False only when
nothing could be made of the message, so the caller can keep it for the owner.

Order of work (`parse`): auto-reply detection (`autoreply`); our own RFC 3464
reading of any ``message/delivery-status`` part (`rfc3464`); flufl.bounce's
heuristic detectors for everything that is not a DSN (`heuristics`); finally
the policy rule (`policy`), which also classifies our relay's replies.

What it trusts: nothing. Anyone can mail the bounces address, so every header,
address and status here may be forged. The addresses are only what the message
claims; the caller ties a report to a member through the VERP address the
bounce was delivered to, and uses these addresses at most to confirm it.
"""

from listserv.dsn.parse import _parse_bounce as _parse_bounce  # raises: for fuzzing tests
from listserv.dsn.parse import parse_bounce
from listserv.dsn.policy import classify_smtp_reply
from listserv.dsn.report import BouncedRecipient, BounceKind, BounceReport

__all__ = [
    "BounceKind",
    "BounceReport",
    "BouncedRecipient",
    "classify_smtp_reply",
    "parse_bounce",
]
