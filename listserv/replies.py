# SPDX-License-Identifier: Apache-2.0
"""SMTP/LMTP replies intake gives, as named constants (aiosmtpd's statuscodes style)."""

from __future__ import annotations

from typing import NamedTuple


class Reply(NamedTuple):
    code: int
    enhanced: str
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


OK = Reply(250, "2.0.0", "OK")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
QUEUED = Reply(250, "2.0.0", "Message accepted for delivery")
NO_SUCH_USER = Reply(550, "5.1.1", "No such list or address here")
TOO_BIG = Reply(552, "5.3.4", "Message too big for this list server")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
TOO_MANY_CONNECTIONS = Reply(
    421, "4.7.0", "Too many connections from your address; try again later"
)
TOO_MANY_MESSAGES = Reply(451, "4.7.1", "Too many messages from your address; try again later")
STORAGE_FAILED = Reply(451, "4.3.0", "Temporary storage failure, try again later")
BAD_ADDRESS = Reply(553, "5.1.3", "Malformed address")
