# SPDX-License-Identifier: Apache-2.0
"""What a stage receives: one stored message for one of our addresses.

This module imports no stage, so every stage can name the type without
importing the router that imports every stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

from listserv.addresses import Recipient
from listserv.models import InboundMessage, MailingList


@dataclass(frozen=True)
class Delivery:
    """One message for one of our addresses, as the stages receive it."""

    inbound: InboundMessage
    message: EmailMessage
    recipient: Recipient
    mlist: MailingList | None
    envelope_from: str
