# SPDX-License-Identifier: Apache-2.0
"""Standard delivery status notifications (RFC 3464), read field by field.

Read here rather than by flufl.bounce, whose DSN detector calls every
``Action: failed`` permanent, even ``Status: 4.2.2``, and drops the status and
diagnostic the bounce score and the owner's report need.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from listserv.dsn.policy import is_transient
from listserv.dsn.report import BouncedRecipient, BounceKind
from listserv.dsn.text import (
    DELIVERY_STATUS_TYPES,
    clean_diagnostic,
    explain,
    header,
    normalise,
    part_text,
    parts,
    status_anywhere,
    status_at_start,
)


def from_delivery_status(msg: Message, lines: list[str]) -> tuple[bool, list[BouncedRecipient]]:
    """Read every per-recipient block of every delivery-status part.

    Returns whether any block was understood (a DSN reporting only successes is still a DSN,
    just not a bounce) and the recipients that failed or were delayed.
    """
    understood = False
    recipients: list[BouncedRecipient] = []
    for part in parts(msg):
        if part.get_content_type() not in DELIVERY_STATUS_TYPES:
            continue
        for block in _status_blocks(part):
            address = _block_address(block)
            if address is None:
                continue
            action = header(block, "action").lower()
            diagnostic = clean_diagnostic(header(block, "diagnostic-code"))
            status = status_at_start(header(block, "status")) or status_anywhere(diagnostic)
            kind = _kind_from_action(action, status, diagnostic)
            if kind is None:
                understood = understood or action.startswith(("delivered", "relayed", "expanded"))
                continue
            understood = True
            recipients.append(
                BouncedRecipient(
                    address=address,
                    kind=kind,
                    status=status,
                    diagnostic=diagnostic or explain(lines, address),
                )
            )
    return understood, recipients


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status part, however the email package left it.

    The parser splits message/delivery-status into a list of header blocks itself; other
    types (message/global-delivery-status) or encoded bodies arrive as one string.
    """
    if part.is_multipart():
        return [block for block in part.get_payload() if isinstance(block, Message)]
    text = part_text(part)
    if text is None:
        return []
    parser = HeaderParser(policy=compat32)
    return [
        parser.parsestr(chunk.strip() + "\n")
        for chunk in re.split(r"\r?\n[ \t]*\r?\n", text)
        if chunk.strip()
    ]


def _block_address(block: Message) -> str | None:
    """Original-Recipient when usable (it is the address we sent to), else Final-Recipient.

    Final-Recipient is where the failure happened, which after aliasing or forwarding
    may be an address the list has never heard of.
    """
    for field in ("original-recipient", "final-recipient"):
        address = _address_from_field(header(block, field))
        if address is not None:
            return address
    return None


def _address_from_field(value: str) -> str | None:
    if not value:
        return None
    addr_type, sep, rest = value.partition(";")
    if sep:
        if addr_type.strip().lower() not in ("rfc822", "utf-8"):
            return None
    else:
        rest = value  # seen in the wild: "Final-Recipient: <user@example.com>" with no type
    address = normalise(rest)
    # Exchange's encapsulated X.500 addresses look like mail addresses but are nobody's.
    if address is None or address.upper().startswith(("IMCEAEX-", "IMCEAX400-")):
        return None
    return address


def _kind_from_action(action: str, status: str | None, diagnostic: str) -> BounceKind | None:
    """Action says whether it failed; only the status says whether it failed for good."""
    if action.startswith("delayed"):
        return BounceKind.DELAYED
    # "error" is opensmtpd's non-standard spelling of "failed".
    if action.startswith(("fail", "error")):
        return BounceKind.TEMPORARY if is_transient(status, diagnostic) else BounceKind.PERMANENT
    if action:
        return None  # delivered, relayed, expanded: success, not a bounce
    # No Action at all (it is mandatory): fall back on the status class.
    if status is None:
        return None
    return BounceKind.TEMPORARY if status.startswith("4") else BounceKind.PERMANENT
