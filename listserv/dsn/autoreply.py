# SPDX-License-Identifier: Apache-2.0
"""Out-of-office replies and read receipts at the bounces address.

They are not bounces and nothing for the owner to do, so they are recognised
first and dropped. The difficulty is that MTAs mark their own bounces
``Auto-Submitted: auto-replied`` too, so anything bounce-shaped wins.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import parseaddr

from listserv.dsn.text import DELIVERY_STATUS_TYPES, header, parts, subject
from listserv.message import ROBOT_LOCAL_PARTS

_AUTO_REPLY_SUBJECT = re.compile(
    r"\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)"
    r"|auto:|autoresponse|vacation|on leave|away from (?:the |my )?(?:office|desk)"
    r"|abwesen|réponse automatique|respuesta automática|risposta automatica)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"\s*(?:undeliver|undelivered|delivery status notification|mail delivery fail"
    r"|returned mail|failure notice|delivery failure|non-?deliver|delayed mail"
    r"|warning: message|mail system error)",
    re.IGNORECASE,
)


def is_auto_reply(msg: Message) -> bool:
    """Out-of-office and other responders: not bounces, and never held for the owner.

    Postfix, Exim and Gmail all put ``Auto-Submitted: auto-replied`` on their bounces,
    so the header alone cannot decide: anything that looks like a bounce is not an auto-reply.
    """
    if _report_type(msg) == "disposition-notification":
        return True  # a read receipt (RFC 8098): automatic, and nothing for the owner to do
    if _looks_like_bounce(msg):
        return False
    auto_submitted = header(msg, "auto-submitted").lower()
    if auto_submitted.startswith(("auto-replied", "auto-notified")):
        return True
    if any(msg.get(name) is not None for name in ("x-autoreply", "x-autorespond")):
        return True
    if header(msg, "precedence").lower() == "auto_reply":
        return True
    return bool(_AUTO_REPLY_SUBJECT.match(subject(msg)))


def _looks_like_bounce(msg: Message) -> bool:
    """Cheap structural signs of a delivery report, checked before any auto-reply signal."""
    if msg.get("x-failed-recipients") is not None:
        return True
    if _report_type(msg) == "delivery-status":
        return True
    if any(part.get_content_type() in DELIVERY_STATUS_TYPES for part in parts(msg)):
        return True
    sender = parseaddr(header(msg, "from"))[1].lower()
    if sender.partition("@")[0] in ROBOT_LOCAL_PARTS:
        return True
    return bool(_BOUNCE_SUBJECT.match(subject(msg)))


def _report_type(msg: Message) -> str | None:
    """The report-type of a multipart/report ("delivery-status" if it omits one), else None."""
    if msg.get_content_type() != "multipart/report":
        return None
    report_type = msg.get_param("report-type", "delivery-status")
    return report_type.lower() if isinstance(report_type, str) else "delivery-status"
