# SPDX-License-Identifier: Apache-2.0
"""Intake: mail from the MTA is stored before it is accepted, and nothing else happens here.

`smtp.py` is the aiosmtpd handler (SMTP or LMTP): it answers RCPT from the
address syntax and the known list names, and says 250 only once
`inbound.py`'s writer has committed the message to `inbound_messages`.
Intake decides no policy and holds no credentials; processing (`routing/`)
takes it from there.
"""

from listserv.intake.inbound import InboundWriter, unprocessed_ids
from listserv.intake.smtp import Doors, IntakeHandler, KnownLists, server_factory

__all__ = [
    "Doors",
    "InboundWriter",
    "IntakeHandler",
    "KnownLists",
    "server_factory",
    "unprocessed_ids",
]
