# SPDX-License-Identifier: Apache-2.0
"""Bounces that are not RFC 3464 reports (Exim, qmail, old Sendmail, Exchange...).

flufl.bounce's detectors find the failed addresses; this module shows them only
the notice itself, within a budget, and adds what flufl does not say: whether
each failure was temporary, from the status found next to the address.
"""

from __future__ import annotations

from email.message import Message
from email.utils import getaddresses

from flufl.bounce import all_failures

from listserv.dsn.policy import is_transient
from listserv.dsn.report import BouncedRecipient, BounceKind
from listserv.dsn.text import (
    DELIVERY_STATUS_TYPES,
    MAX_DEPTH,
    RETURNED_MESSAGE_TYPES,
    explain,
    header,
    normalise,
    squash,
    status_anywhere,
)

# What flufl.bounce is shown of one message, so a huge one costs no more than it is worth.
_MAX_FLUFL_PARTS = 100  # per multipart shown to flufl.bounce
_MAX_FLUFL_CHARS = 512 * 1024  # of body text shown to flufl.bounce, all parts together


def from_flufl(msg: Message, lines: list[str]) -> list[BouncedRecipient]:
    """Non-DSN formats, by flufl.bounce's detectors.

    flufl only says which addresses failed: its "temporary" set comes only from delay warnings,
    so it maps to DELAYED; for its permanent set the status, when one can be found next to
    the address in the text, separates 5.x.x from a 4.x.x that was finally given up on.
    """
    try:
        _prepare_for_flufl(msg)
        temporary, permanent = all_failures(msg)
    except Exception:
        # flufl logs a detector's exception and re-raises it; the email package itself raises
        # ValueError reading a body whose charset parameter holds a NUL.
        return []
    found: list[tuple[bytes, bool]] = [(a, False) for a in sorted(permanent)]
    found += [(a, True) for a in sorted(temporary - permanent)]
    recipients: list[BouncedRecipient] = []
    for raw_address, delayed in found:
        address = normalise(raw_address.decode("ascii", errors="replace"))
        if address is None:
            continue
        diagnostic = explain(lines, address)
        status = status_anywhere(diagnostic)
        if delayed:
            kind = BounceKind.DELAYED
        elif is_transient(status, diagnostic):
            kind = BounceKind.TEMPORARY
        else:
            kind = BounceKind.PERMANENT
        recipients.append(BouncedRecipient(address, kind, status, diagnostic))
    return recipients


def _prepare_for_flufl(msg: Message) -> None:
    """Show flufl only the notice: no returned original, no megabytes of text, a usable From."""
    _trim_for_flufl(msg, 0, [_MAX_FLUFL_CHARS])
    if not getaddresses([header(msg, "from")]):
        # flufl's Yale detector indexes getaddresses(...)[0], which is [] for a missing From on
        # Pythons with the CVE-2023-27043 fix: it raises and no later detector runs.
        del msg["from"]
        msg["From"] = "<>"


def _trim_for_flufl(part: Message, depth: int, budget: list[int]) -> None:
    """Drop returned originals (a list post quoting a bounce is not one) and cap the text.

    flufl's SimpleMatch runs some forty patterns over every body line, which costs seconds
    on a multi-megabyte message; the notice it is looking for always comes first.
    """
    if depth > MAX_DEPTH:
        return
    _plain_headers(part)
    payload = part.get_payload()
    if part.get_content_type() in DELIVERY_STATUS_TYPES:
        for block in payload if isinstance(payload, list) else []:
            if isinstance(block, Message):
                _plain_headers(block)
        return
    if isinstance(payload, str):
        if len(payload) > budget[0]:
            part.set_payload(payload[: budget[0]])
        budget[0] = max(0, budget[0] - len(payload))
        return
    if not isinstance(payload, list):
        return
    kept: list[Message | str] = []
    for sub in payload[:_MAX_FLUFL_PARTS]:
        if budget[0] <= 0:
            break
        if isinstance(sub, Message) and sub.get_content_type() not in RETURNED_MESSAGE_TYPES:
            _trim_for_flufl(sub, depth + 1, budget)
            kept.append(sub)
    part.set_payload(kept)


def _plain_headers(part: Message) -> None:
    """Make every header a str: flufl calls .lower() on headers, which for 8-bit bytes are Header."""
    items = part.items()
    if all(isinstance(value, str) for _, value in items):
        return
    for name in {name.lower() for name, _ in items}:
        del part[name]
    for name, value in items:
        part[name] = value if isinstance(value, str) else squash(str(value))
